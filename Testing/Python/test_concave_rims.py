"""The rims of concave endplates beyond the marked points, for a body no shell encloses
(concave_rims), on a frame grid built by hand: exact pixel counts and reaches."""

from __future__ import annotations

import numpy as np
import pytest

from CementLeakageLib.body_settings import BodySegmentationSettings
from CementLeakageLib.concave_rims import add_concave_endplate_rims

SPACING_MM = 0.5
HEIGHT_MM = 10.0
SHAPE = (40, 81, 81)
CENTRE = (40, 40)
RADII_PX = (24.0, 30.0)  # rows (anterior-posterior), columns (left-right)
SETTINGS = BodySegmentationSettings()


def _radius():
    """Each pixel's elliptic radius: 1 on the body's outline."""
    rows, cols = np.indices(SHAPE[1:])
    return np.hypot((rows - CENTRE[0]) / RADII_PX[0], (cols - CENTRE[1]) / RADII_PX[1])


def _scene():
    """A body filling its outline between the points (frame slices 11-30, 0.25-9.75 mm along
    the axis: the lower point lies between slices 10 and 11, the upper between 30 and 31) and
    no bone beyond them."""
    axial_mm = (np.arange(SHAPE[0]) - 10.5) * SPACING_MM
    slab = np.flatnonzero((axial_mm > 0.0) & (axial_mm < HEIGHT_MM))
    outline = _radius() <= 1.0
    body = np.zeros(SHAPE, dtype=bool)
    body[slab] = outline
    bone = np.zeros(SHAPE, dtype=bool)
    return body, bone, slab, axial_mm, outline


def test_a_wide_rim_around_a_free_axis_extends_the_body():
    """A shallow dish's rim beyond the upper point is a wide annulus that reaches into the core
    of the outline (bone on 23% of the outline eroded by 3 mm in its first slice): it is rim,
    slice by slice, until the disc."""
    body, bone, slab, axial_mm, outline = _scene()
    radius = _radius()
    bone[31] = outline & (radius >= 0.7)
    bone[32] = outline & (radius >= 0.85)
    before = int(body.sum())

    below, above = add_concave_endplate_rims(body, bone, slab, axial_mm, HEIGHT_MM, SETTINGS)

    assert below == 0.0
    # Slice 32 is centred 0.75 mm above the point and ends 1.0 mm above it.
    assert above == pytest.approx(1.0, abs=1e-9)
    assert np.array_equal(body[31], bone[31]) and np.array_equal(body[32], bone[32])
    assert not body[33:].any()
    assert int(body.sum()) == before + int(bone[31].sum()) + int(bone[32].sum())


def test_the_bone_under_a_rim_is_body_out_to_the_rim():
    """Where a column's rim bone lies two slices beyond the point and only marrow (under 226 HU)
    one slice beyond it, the marrow is body: the rim's bone caps it."""
    body, bone, slab, axial_mm, outline = _scene()
    radius = _radius()
    bone[31] = outline & (radius >= 0.9)
    bone[32] = outline & (radius >= 0.8)

    _, above = add_concave_endplate_rims(body, bone, slab, axial_mm, HEIGHT_MM, SETTINGS)

    assert above == pytest.approx(1.0, abs=1e-9)
    assert np.array_equal(body[31], outline & (radius >= 0.8))
    assert np.array_equal(body[32], bone[32])
    assert not body[33:].any()


def test_a_plate_over_the_axis_is_no_rim():
    """A flat endplate seen through partial volume beyond the lower point covers the axis: the
    body keeps its face at the point."""
    body, bone, slab, axial_mm, outline = _scene()
    radius = _radius()
    bone[10] = outline & ((radius >= 0.7) | (radius <= 0.25))
    before = body.copy()

    below, above = add_concave_endplate_rims(body, bone, slab, axial_mm, HEIGHT_MM, SETTINGS)

    assert (below, above) == (0.0, 0.0)
    assert np.array_equal(body, before)


def test_a_wedged_face_on_one_side_is_no_rim():
    """Bone beyond the point on the anterior half only (a wedged face) does not go round the
    axis: nothing is added."""
    body, bone, slab, axial_mm, outline = _scene()
    rows, _ = np.indices(SHAPE[1:])
    bone[31] = outline & (_radius() >= 0.6) & (rows > CENTRE[0])
    before = body.copy()

    below, above = add_concave_endplate_rims(body, bone, slab, axial_mm, HEIGHT_MM, SETTINGS)

    assert (below, above) == (0.0, 0.0)
    assert np.array_equal(body, before)


def test_cement_beside_the_axis_beyond_the_point_is_a_leak_not_rim():
    """A leak into the disc 5 mm beside the axis, bright enough to be bone, lies over the dish's
    floor: the body stops at the point, the leak stays out of it."""
    body, bone, slab, axial_mm, outline = _scene()
    rows, cols = np.indices(SHAPE[1:])
    leak = np.hypot(rows - CENTRE[0], cols - (CENTRE[1] + 10)) <= 3.0
    bone[31] = (outline & (_radius() >= 0.7)) | leak
    cement = np.zeros(SHAPE, dtype=bool)
    cement[31] = leak
    before = body.copy()

    below, above = add_concave_endplate_rims(body, bone, slab, axial_mm, HEIGHT_MM, SETTINGS, cement=cement)

    assert (below, above) == (0.0, 0.0)
    assert np.array_equal(body, before)


def test_cement_filling_the_rim_near_the_outline_is_rim():
    """A bolus that fills the rim within 3 mm of the outline (here 1.5 mm of it, on the right)
    counts as the rim's bone: the slice is taken whole, cement included."""
    body, bone, slab, axial_mm, outline = _scene()
    rows, cols = np.indices(SHAPE[1:])
    ring = outline & (_radius() >= 0.7)
    bolus = ring & (np.hypot(rows - CENTRE[0], cols - (CENTRE[1] + 27)) <= 2.5)
    bone[31] = ring
    cement = np.zeros(SHAPE, dtype=bool)
    cement[31] = bolus

    _, above = add_concave_endplate_rims(body, bone, slab, axial_mm, HEIGHT_MM, SETTINGS, cement=cement)

    assert bolus.sum() > 20
    assert above == pytest.approx(0.5, abs=1e-9)
    assert np.array_equal(body[31], ring)
