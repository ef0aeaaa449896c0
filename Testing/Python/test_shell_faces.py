"""Whether an enclosed body's faces around the axis meet the marked endplate points (frame grid,
0.5 mm slices along the axis; the points at 0 and ``HEIGHT_MM``)."""

from __future__ import annotations

import numpy as np
import pytest

from CementLeakageLib.endplate_faces import MAX_ENDPLATE_OVERSHOOT_MM, faces_meet_the_points

SPACING_MM = 0.5
HEIGHT_MM = 20.0
SLICES = 80  # from -10 mm to +29.5 mm along the axis
AXIAL_MM = np.arange(SLICES) * SPACING_MM - 10.0


def enclosed(lower_mm: float, upper_mm: float, pit: bool = False) -> np.ndarray:
    """A cylinder of radius 15 mm between ``lower_mm`` and ``upper_mm`` (faces, mm along the axis)
    on a 61 x 61 grid; with ``pit``, one column on the axis reaches 5 mm further down."""
    rows, cols = np.mgrid[:61, :61]
    disk = np.hypot(rows - 30, cols - 30) * SPACING_MM <= 15.0
    centres = AXIAL_MM[:, None, None]
    mask = (
        disk[None]
        & (centres - 0.5 * SPACING_MM >= lower_mm - 1e-9)
        & (centres + 0.5 * SPACING_MM <= upper_mm + 1e-9)
    )
    if pit:
        mask[(centres[:, 0, 0] >= lower_mm - 5.0) & (centres[:, 0, 0] < lower_mm), 30, 30] = True
    return mask


@pytest.mark.parametrize("overshoot_mm", [0.0, 1.0, MAX_ENDPLATE_OVERSHOOT_MM])
def test_faces_at_or_near_the_points_meet_them(overshoot_mm):
    mask = enclosed(-overshoot_mm, HEIGHT_MM + overshoot_mm)
    assert faces_meet_the_points(mask, AXIAL_MM, HEIGHT_MM)


def test_a_face_that_ran_into_the_disc_does_not():
    # A hole in the lower endplate lets the enclosure run 5 mm into the disc below.
    assert not faces_meet_the_points(enclosed(-5.0, HEIGHT_MM), AXIAL_MM, HEIGHT_MM)
    # An enclosure that stopped 4 mm inside the body, under the upper point.
    assert not faces_meet_the_points(enclosed(0.0, HEIGHT_MM - 4.0), AXIAL_MM, HEIGHT_MM)


def test_one_column_through_a_pit_does_not_decide():
    assert faces_meet_the_points(enclosed(0.0, HEIGHT_MM, pit=True), AXIAL_MM, HEIGHT_MM)


def test_an_axis_left_mostly_empty_does_not_meet_the_points():
    mask = enclosed(0.0, HEIGHT_MM)
    mask[:, 24:37, 24:37] = False
    assert not faces_meet_the_points(mask, AXIAL_MM, HEIGHT_MM)
