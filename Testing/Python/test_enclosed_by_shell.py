"""The body as the region its cortical shell encloses in 3D (frame grid, 0.5 mm voxels; the
endplate points at 0 and 20 mm along the axis, on slice faces).

A cylinder of radius 15 mm: a 1 mm cortex at 400 HU around trabecular bone at 150 HU, in
disc and soft tissue at 80 HU. Exact voxel counts say what is enclosed.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from CementLeakageLib.body_settings import BodySegmentationSettings
from CementLeakageLib.endplate_faces import FaceFill
from CementLeakageLib.shell_enclosure import (
    Enclosure,
    enclosed_by_shell,
    holds_only_rims,
    reaches_the_limit_through_a_neck,
)

SPACING_MM = 0.5
HEIGHT_MM = 20.0
AXIAL_MM = np.arange(80) * SPACING_MM - 9.75
ROWS, COLS = np.mgrid[:81, :81]
RADIUS_MM = np.hypot(ROWS - 40, COLS - 40) * SPACING_MM
OUTLINE = RADIUS_MM <= 15.0
MARROW = RADIUS_MM <= 14.0
Z = AXIAL_MM[:, None, None]
BODY = OUTLINE[None] & (Z > 0.0) & (Z < HEIGHT_MM)
SLAB = np.flatnonzero((AXIAL_MM > 0.0) & (AXIAL_MM < HEIGHT_MM))
SHELL_LEVELS = [226.0, 190.0, 160.0, 130.0]


def ct(endplates: bool = True) -> np.ndarray:
    hu = np.full(BODY.shape, 80.0)
    hu[BODY] = 400.0
    plates_mm = 1.0 if endplates else 0.0
    hu[MARROW[None] & (Z > plates_mm) & (Z < HEIGHT_MM - plates_mm)] = 150.0
    return hu


def enclosed(hu: np.ndarray, ct_voxel_mm: float = 0.5, own_slices: np.ndarray | None = None):
    """The enclosure with the outline as the cross-section of every slab slice (``BODY``)."""
    settings = BodySegmentationSettings()
    return enclosed_by_shell(
        hu,
        BODY,
        SLAB,
        AXIAL_MM,
        HEIGHT_MM,
        SHELL_LEVELS,
        settings,
        ct_voxel_mm=ct_voxel_mm,
        own_slices=own_slices,
    )


def test_a_closed_shell_encloses_the_body_between_the_points():
    result = enclosed(ct())
    assert result is not None
    mask, fill = result.mask, result.fill
    assert np.array_equal(mask, BODY)
    assert mask.sum() == OUTLINE.sum() * 40  # 40 slices of 0.5 mm between the points
    assert fill == FaceFill(1.0, 1.0)  # the faces lie on slice faces: whole end voxels
    assert result.whole


def test_a_shell_open_to_the_disc_encloses_nothing():
    # A hole through a quarter of the lower endplate lets the disc in: no shell level closes,
    # and the body found slice by slice is kept (None).
    hu = ct()
    hole = ((ROWS >= 40) & (COLS >= 40) & MARROW)[None] & (Z > 0.0) & (Z < 1.0)
    hu[hole] = 80.0
    assert enclosed(hu) is None


def test_a_tube_without_endplates_encloses_nothing():
    assert enclosed(ct(endplates=False)) is None


def test_cement_filling_the_middle_up_to_the_cortex_still_encloses_the_body():
    # No trabecular core is left between the cement and the cortex in the middle slices: the
    # core the shell encloses lies nearer the endplates.
    hu = ct()
    hu[MARROW[None] & (Z > 5.0) & (Z < 15.0)] = 2700.0
    result = enclosed(hu)
    assert result is not None
    assert np.array_equal(result.mask, BODY)


def test_a_gap_in_an_endplate_wider_than_the_usual_closing_is_bridged():
    # A lid that no thick slice sampled over a 5 mm wide patch: a 2 mm closing leaves it open,
    # the wider closing, tried only then, bridges it and the lid lies where the plate is.
    hu = ct()
    gap = (np.hypot(ROWS - 40, COLS - 46) * SPACING_MM <= 2.5)[None] & (Z > 0.0) & (Z < 1.0)
    hu[gap] = 150.0
    result = enclosed(hu)
    assert result is not None
    assert np.array_equal(result.mask, BODY)


def ct_with_blurred_leak_in_the_disc(blur_reach_mm: float) -> np.ndarray:
    """The body under a disc (20-24 mm) and the next vertebra (closed from 24 to 28 mm), with a
    lens of cement (2700 HU) in the disc and 300 HU, its blur, within ``blur_reach_mm`` of it."""
    hu = ct()
    hu[OUTLINE[None] & (Z > 24.0)] = 400.0
    hu[MARROW[None] & (Z > 25.0) & (Z < 28.0)] = 150.0
    lens = (RADIUS_MM <= 6.0)[None] & (Z > 21.5) & (Z < 22.5)
    blur = ndimage.distance_transform_edt(~lens, sampling=SPACING_MM) <= blur_reach_mm
    hu[blur & (Z > 20.0) & (Z < 24.0)] = 300.0
    hu[lens] = 2700.0
    return hu


def test_the_blur_of_a_leak_on_thick_slices_does_not_join_the_next_vertebra():
    # A lens of cement in the disc above the body (20-24 mm), under the next vertebra (closed
    # from 24 to 28 mm). On 2 mm slices the lens's blur reads over the shell levels up to about
    # 2.5 mm from the cement (here 300 HU within 2.5 mm of it, in the disc): beyond the frame
    # voxel's 1.5 mm halo that ring bridges the disc, the two shells close as one and no shell
    # encloses the body alone. The halo of the CT's 2 mm voxels (3 mm) hides it.
    hu = ct_with_blurred_leak_in_the_disc(blur_reach_mm=2.5)
    assert enclosed(hu, ct_voxel_mm=0.5) is None
    result = enclosed(hu, ct_voxel_mm=2.0)
    assert result is not None and np.array_equal(result.mask, BODY)
    assert result.fill == FaceFill(1.0, 1.0)


def test_voxels_finer_than_the_frame_grid_keep_the_frame_voxels_halo():
    # The blur within 1.5 mm of the lens is hidden by a frame voxel's halo (1.5 mm): the body is
    # enclosed exactly. A CT of 0.2 mm voxels must not try a narrower halo first (1.2 mm, which
    # leaves a lid of blur on the body: upper face 0.8 of a voxel too high, 441 voxels too many).
    hu = ct_with_blurred_leak_in_the_disc(blur_reach_mm=1.5)
    for ct_voxel_mm in (0.2, 0.5):
        result = enclosed(hu, ct_voxel_mm=ct_voxel_mm)
        assert result is not None and np.array_equal(result.mask, BODY)
        assert result.fill == FaceFill(1.0, 1.0)


DISH_DEPTH_MM = 3.0
"""Depth of both dished endplates of a biconcave body: the faces lie at the points on the axis
and 3 mm beyond them at the outline (a paraboloid)."""


def dish_mm(depth_mm: float) -> np.ndarray:
    """How far (mm, ``[y, x]``) a dish ``depth_mm`` deep at the outline lies beyond its point: a
    paraboloid, 0 on the axis."""
    return depth_mm * (RADIUS_MM / 15.0) ** 2


def biconcave_body(depth_mm: float) -> np.ndarray:
    """The body with both endplates dished ``depth_mm`` deep at the outline."""
    dish = dish_mm(depth_mm)
    return OUTLINE[None] & (Z > -dish[None]) & (Z < HEIGHT_MM + dish[None])


BICONCAVE_BODY = biconcave_body(DISH_DEPTH_MM)


def biconcave_ct_with_leak_above(
    lens_hu: float, edge: np.ndarray | None = None, depth_mm: float = DISH_DEPTH_MM
) -> np.ndarray:
    """The biconcave body (dishes ``depth_mm`` deep, 1 mm cortex at 400 HU following them) under a
    disc 5 mm thick on the axis and the next vertebra (solid, 400 HU, from 25 mm up), with a lens
    of cement in the disc (within 2 mm of the axis, 22-23 mm, ``lens_hu``) whose blur reads 300 HU
    over the disc's height within 4 mm of the axis, or, with ``edge`` given (bool ``[y, x]``), over
    ``edge`` (the blur of a lens's thinner edge)."""
    dish = dish_mm(depth_mm)
    hu = np.full(BODY.shape, 80.0)
    hu[biconcave_body(depth_mm)] = 400.0
    hu[MARROW[None] & (Z > 1.0 - dish[None]) & (Z < HEIGHT_MM - 1.0 + dish[None])] = 150.0
    hu[OUTLINE[None] & (Z > 25.0)] = 400.0
    disc = (Z > HEIGHT_MM + dish[None]) & (Z < 25.0)
    hu[(RADIUS_MM <= 4.0 if edge is None else edge)[None] & disc] = 300.0
    hu[(RADIUS_MM <= 2.0)[None] & (Z > 22.0) & (Z < 23.0)] = lens_hu
    return hu


def test_a_faint_leak_in_a_dished_disc_is_not_shell_either():
    # A lens thinner than a 2 mm slice reads under the cement threshold (here 1200 HU) and its
    # blur bridges the disc to the next vertebra: no shell closes while only cement (1500 HU and
    # up) is left out, and the faces would lie flat on the points, without the dishes' rims (15%
    # of the body). Tried again with the lens (1000 HU and up) and a CT voxel's halo left out,
    # the body is enclosed with its rims.
    rims_mm3 = float((BICONCAVE_BODY & ~BODY).sum()) * SPACING_MM**3
    assert rims_mm3 == pytest.approx(2.0 * 0.5 * DISH_DEPTH_MM * np.pi * 15.0**2, rel=0.03)
    faint = enclosed(biconcave_ct_with_leak_above(1200.0), ct_voxel_mm=2.0)
    assert faint is not None and faint.whole
    # As bright as cement, the lens is left out in the first place: the same body, which differs
    # from the truth by 20 voxels where the dishes' rims meet the side wall on the grid.
    bright = enclosed(biconcave_ct_with_leak_above(2700.0), ct_voxel_mm=2.0)
    assert bright is not None and np.array_equal(faint.mask, bright.mask)
    assert np.count_nonzero(faint.mask ^ BICONCAVE_BODY) == 20


def test_the_thin_edge_of_a_faint_leak_does_not_bridge_the_disc():
    # Past the halo of the lens's bright core, the blur of its thinner edge can still read over
    # the shell levels: here a wall 0.8 mm thick, open on one side, from the dish to the next
    # vertebra, 5.6-6.4 mm from the axis. The enclosed region's cross-sections beyond the points
    # are opened by 1 mm, which takes the wall off, and the body is enclosed with its rims; only
    # the wall's foot, where it meets the dish, stays (0.3% of the body).
    edge = (RADIUS_MM >= 5.6) & (RADIUS_MM <= 6.4) & (COLS >= 38)
    result = enclosed(biconcave_ct_with_leak_above(1200.0, edge), ct_voxel_mm=2.0)
    assert result is not None and result.whole
    assert not (BICONCAVE_BODY & ~result.mask).any()
    assert np.count_nonzero(result.mask & ~BICONCAVE_BODY) <= 0.004 * BICONCAVE_BODY.sum()


def test_shallow_dishes_are_kept_with_a_faint_leak_left_out():
    # Dishes 0.8 mm deep: what the shell found with a faint leak left out holds beyond the points
    # (the rims, 4% of the body, and the end voxels its faces fill in part) is 8.8% of the body,
    # under the 10% such a shell must hold there (past flat endplates they stray by up to 6%). It
    # lies as dishes' rims do, deepest along the outline and nothing at the axis: the body is
    # enclosed with them. Its volume, the end voxels of its columns counted by the share they
    # fill, is the analytic one: a cylinder 20 mm high and half of one 0.8 mm high for each dish
    # (pi 15^2 20.8 mm3), within 0.5% (-0.25%: dishes 0.8 mm deep on 0.5 mm voxels).
    depth_mm = 0.8
    body = biconcave_body(depth_mm)
    result = enclosed(biconcave_ct_with_leak_above(1200.0, depth_mm=depth_mm), ct_voxel_mm=2.0)
    assert result is not None and result.whole
    assert not (body & ~result.mask).any()
    columns = result.mask.any(axis=0)
    lower, upper = result.fill.per_column(columns.shape)
    unfilled = (2.0 - lower[columns] - upper[columns]).sum()
    volume_mm3 = (result.mask.sum() - unfilled) * SPACING_MM**3
    assert volume_mm3 == pytest.approx(np.pi * 15.0**2 * (HEIGHT_MM + depth_mm), rel=0.005)


def test_only_dishes_rims_count_as_rims():
    # Beyond each point, the columns of the outer quarter of the outline's depth must reach 0.5 mm
    # or more on average, and those of its inner half less than 0.3 of that; a point beyond which
    # nothing lies is neither, and one of the two must hold rims.
    def rims(mask: np.ndarray, fill: FaceFill | None = None) -> bool:
        enclosure = Enclosure(mask, fill or FaceFill(), whole=True)
        return holds_only_rims(enclosure, BODY, SLAB, AXIAL_MM, HEIGHT_MM)

    dished = biconcave_body(1.0)
    assert rims(dished)
    assert rims(dished & (Z > 0.0))
    assert not rims(BODY)
    # A layer one frame slice thick across the upper face (a face strayed past a flat endplate),
    # and dishes whose rims are shallower than 0.5 mm.
    layer = BODY | (OUTLINE[None] & (Z > 0.0) & (Z < HEIGHT_MM + 0.5))
    assert not rims(layer | dished & (Z < 0.0))
    assert not rims(biconcave_body(0.4))
    # The same layer filling a tenth of its voxels reaches 0.05 mm: nothing, beside the lower
    # dish's rims.
    assert rims(layer | dished & (Z < 0.0), FaceFill(1.0, 0.1))


def test_a_faint_spot_beyond_flat_endplates_leaves_the_faces_on_the_points():
    # Over flat endplates the shell found with a faint leak left out holds nothing beyond the
    # points, where the faces on the points are right: it is not used (no shell, None, as before).
    hu = ct_with_blurred_leak_in_the_disc(blur_reach_mm=2.5)
    hu[hu == 2700.0] = 1200.0
    assert enclosed(hu, ct_voxel_mm=2.0) is None


WEDGE_SLOPE_MM_PER_MM = 0.4
"""Fall of the tilted upper face (mm along the axis per mm along the rows): 20 mm (the upper
point) on the axis, 14 mm at the outline's last row, 26 mm at its first."""
TILTED_TOP_MM = HEIGHT_MM - WEDGE_SLOPE_MM_PER_MM * (ROWS - 40) * SPACING_MM
TILTED_BODY = OUTLINE[None] & (Z > 0.0) & (Z < TILTED_TOP_MM[None])


def test_slices_without_a_ring_of_their_own_do_not_fill_a_shell_with_holes():
    # A wedged body: its upper face falls 6 mm from the axis to one side. The slices between 14
    # mm and the upper point cross the face, close no ring of their own and take the whole
    # cross-section of the nearest slice that did. The enclosure, which follows the face, covers
    # 94% of that slab, under 95%, so it counts as a shell with holes and the slices fill what it
    # leaves out: a flat top at the point over the low side, 900 mm3 too much. Only the slices
    # with a ring of their own fill it now, and those it covers whole.
    hu = np.full(BODY.shape, 80.0)
    hu[TILTED_BODY] = 400.0
    hu[MARROW[None] & (Z > 1.0) & (Z < TILTED_TOP_MM[None] - 1.0)] = 150.0
    own_slices = SLAB[AXIAL_MM[SLAB] < HEIGHT_MM - 15.0 * WEDGE_SLOPE_MM_PER_MM]
    merged = enclosed(hu)
    kept = enclosed(hu, own_slices=own_slices)
    beyond_face_mm3 = float((BODY & ~TILTED_BODY).sum()) * SPACING_MM**3
    assert beyond_face_mm3 == pytest.approx(900.0, rel=0.02)  # 0.4 x (2/3) x 15^3 mm3
    assert merged is not None and np.array_equal(merged.mask, TILTED_BODY | BODY)
    assert kept is not None and np.array_equal(kept.mask, TILTED_BODY)
    assert not merged.whole and not kept.whole  # shells with holes, filled slice by slice


LIMIT_MM = 0.45 * HEIGHT_MM
"""How far beyond each point the search reaches (``endplate_extension`` of the height)."""
ALLOWED = (AXIAL_MM >= -LIMIT_MM) & (AXIAL_MM <= HEIGHT_MM + LIMIT_MM)


def test_a_rim_that_narrows_up_to_the_search_limit_is_the_body():
    # A dish's rim beyond the upper point, narrowing from the outline to a ring 1 mm wide at the
    # last slice the search allows (28.75 mm): the body, however far it reaches.
    region = BODY.copy()
    for z in np.flatnonzero(ALLOWED & (AXIAL_MM > HEIGHT_MM)):
        inner_mm = 14.0 * (AXIAL_MM[z] - HEIGHT_MM) / LIMIT_MM
        region[z] = OUTLINE & (RADIUS_MM > inner_mm)
    assert region[np.flatnonzero(ALLOWED)[-1]].sum() > 0.1 * OUTLINE.sum()
    assert not reaches_the_limit_through_a_neck(region, ALLOWED, AXIAL_MM, HEIGHT_MM, float(OUTLINE.sum()))


@pytest.mark.parametrize("top_mm, expected", [(29.5, True), (27.0, False)])
def test_the_next_vertebra_reached_through_a_neck_is_closed_by_the_limit(top_mm, expected):
    # Beyond the upper point a tube 3 mm across crosses the disc (20-24 mm) into the next
    # vertebra's whole cross-section: up to the search's limit, it was closed there (True);
    # stopping 2 mm short of it, the shell closed it (False, judged by the other checks).
    region = BODY.copy()
    tube = np.hypot(ROWS - 40, COLS - 50) * SPACING_MM <= 1.5
    region[(Z > HEIGHT_MM) & (Z < 24.0) & tube[None]] = True
    region[(Z > 24.0) & (Z < top_mm) & OUTLINE[None]] = True
    region &= ALLOWED[:, None, None]
    closed = reaches_the_limit_through_a_neck(region, ALLOWED, AXIAL_MM, HEIGHT_MM, float(OUTLINE.sum()))
    assert closed is expected


def test_the_first_shell_that_closes_is_kept_whole_or_with_holes():
    """With ``first_closed`` (a probe of the faces' tilt) the first shell that closes is kept: a
    whole one as without it, the wedged body's shell with holes as its best one (the same voxels),
    and nothing where no shell closes."""
    settings = BodySegmentationSettings()

    def first_closed(hu: np.ndarray, own_slices: np.ndarray | None = None):
        arguments = (hu, BODY, SLAB, AXIAL_MM, HEIGHT_MM, SHELL_LEVELS, settings)
        return enclosed_by_shell(*arguments, own_slices=own_slices, first_closed=True)

    whole = first_closed(ct())
    assert whole is not None and whole.whole and np.array_equal(whole.mask, BODY)
    hu = np.full(BODY.shape, 80.0)
    hu[TILTED_BODY] = 400.0
    hu[MARROW[None] & (Z > 1.0) & (Z < TILTED_TOP_MM[None] - 1.0)] = 150.0
    own_slices = SLAB[AXIAL_MM[SLAB] < HEIGHT_MM - 15.0 * WEDGE_SLOPE_MM_PER_MM]
    with_holes = first_closed(hu, own_slices)
    assert with_holes is not None and not with_holes.whole
    assert np.array_equal(with_holes.mask, TILTED_BODY)
    assert first_closed(ct(endplates=False)) is None
