"""A dish's depth read from the ring its rim draws in the CT's slices beyond an endplate point.

A frame grid of 0.5 mm voxels along the axis (RAS z; the lower endplate point at z = 0, frame
slice position 20) and a CT of 0.5 mm pixels and 2 mm slices, sampled at its voxel centres
without blur (400 HU bone, 80 HU disc): the ring lies exactly where the dish's surface crosses
a slice, up to the pixels. The body's outline is an ellipse of semi-axes 14 mm (x) and 12 mm
(y); its lower face a paraboloid ``-depth * rho**2`` below the point.
"""

from __future__ import annotations

import numpy as np
import pytest

from CementLeakageLib import slicewise
from CementLeakageLib.endplate_contours import CtSlicePositions
from CementLeakageLib.endplate_faces import FaceFill, body_from_face_positions, column_faces, face_positions
from CementLeakageLib.endplate_rings import (
    CtPlanes,
    averaged_edge_shift_mm,
    depth_from_partial_volume,
    dish_depth_mm,
    faces_on_rings,
    normalised_radius_sq,
)
from CementLeakageLib.geometry import VolumeGeometry

SPACING_MM = 0.5
SEMI_AXES_MM = (14.0, 12.0)
LEVEL_HU = 240.0


def frame_grid() -> VolumeGeometry:
    """Frame slice k at z = -10 + 0.5 k mm (the lower point at k = 20), the axis at row and
    column 40."""
    matrix = np.diag([SPACING_MM, SPACING_MM, SPACING_MM, 1.0])
    matrix[:3, 3] = (-20.0, -20.0, -10.0)
    return VolumeGeometry(matrix, (60, 81, 81))


def ct_grid(first_slice_mm: float) -> VolumeGeometry:
    """2 mm slices from ``first_slice_mm`` (RAS z of slice 0) on, 0.5 mm pixels."""
    matrix = np.diag([SPACING_MM, SPACING_MM, 2.0, 1.0])
    matrix[:3, 3] = (-20.0, -20.0, first_slice_mm)
    return VolumeGeometry(matrix, (14, 81, 81))


def lower_dish_ct(grid: VolumeGeometry, depth_mm: float, tilt: float = 0.0) -> np.ndarray:
    """HU on ``grid``: bone above the lower face ``-depth * rho**2 + tilt * x`` (mm) within the
    elliptic outline, disc elsewhere."""
    k, j, i = np.indices(grid.shape)
    x, y, z = grid.ijk_to_ras_points(np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)).T
    rho_sq = (x / SEMI_AXES_MM[0]) ** 2 + (y / SEMI_AXES_MM[1]) ** 2
    bone = (rho_sq <= 1.0) & (z >= -depth_mm * rho_sq + tilt * x)
    return np.where(bone, 400.0, 80.0).reshape(grid.shape)


def outline() -> np.ndarray:
    rows, cols = np.indices((81, 81))
    return ((cols - 40) * SPACING_MM / SEMI_AXES_MM[0]) ** 2 + (
        (rows - 40) * SPACING_MM / SEMI_AXES_MM[1]
    ) ** 2 <= 1.0


def planes_for(hu: np.ndarray, ct: VolumeGeometry, profile_share: float = 1.0) -> CtPlanes:
    frame = frame_grid()
    return CtPlanes(hu, ct, frame, CtSlicePositions.between(frame, ct), profile_share)


def lower_depth(planes: CtPlanes, tilt: float = 0.0) -> float | None:
    """The lower face's dish depth (mm), the face's own plane ``tilt * x`` (mm) given as the shell
    would have it."""
    columns = outline()
    inner = slicewise.binary_erode(columns[None], 3)[0]  # 1.5 mm from the side wall
    radius_sq = np.minimum(normalised_radius_sq(columns, (40, 40)), 1.0)
    x_mm = (np.indices(columns.shape)[1] - 40) * SPACING_MM
    beyond_point_mm = -tilt * x_mm  # below the lower point
    return dish_depth_mm(planes, columns, inner, radius_sq, beyond_point_mm, 20.0, -1, LEVEL_HU, SPACING_MM)


def test_the_normalised_radius_is_one_on_an_elliptic_outline():
    radius_sq = normalised_radius_sq(outline(), (40, 40))
    assert radius_sq[40, 40] == 0.0
    assert radius_sq[40, 40 + 28] == pytest.approx(1.0, abs=0.03)  # 14 mm along x
    assert radius_sq[40 + 24, 40] == pytest.approx(1.0, abs=0.03)  # 12 mm along y


@pytest.mark.parametrize(
    ("depth_mm", "first_slice_mm"), [(1.6, -11.0), (2.5, -11.0), (2.5, -11.8), (2.5, -12.0)]
)
def test_a_ring_beyond_the_point_gives_the_dish_depth(depth_mm, first_slice_mm):
    # Slices at -1 and -3 mm (or -1.8 and -3.8 mm) beyond the point: the nearer cuts the dish
    # in a ring at rho**2 = beyond / depth, the further one too when the dish is deeper. At
    # -2 mm the 2.5 mm dish's ring runs 1.3 mm from the side wall on the short axis.
    ct = ct_grid(first_slice_mm)
    depth = lower_depth(planes_for(lower_dish_ct(ct, depth_mm), ct))
    assert depth == pytest.approx(depth_mm, rel=0.05)


def test_a_slice_at_the_point_is_passed_over():
    # A slice 0.3 mm beyond the point shows the cortex's blur over the axis; the next, 2.3 mm
    # beyond, cuts the 3 mm dish in a ring at rho**2 = 0.77.
    ct = ct_grid(-10.3)
    hu = lower_dish_ct(ct, 3.0)
    hu[5, 34:47, 34:47] = 400.0  # the slice at -0.3 mm, around the axis
    assert lower_depth(planes_for(hu, ct)) == pytest.approx(3.0, rel=0.05)


def test_bone_over_the_axis_further_from_the_point_leaves_the_face_alone():
    # 1 mm beyond the point bone over the axis is no blur of the floor's cortex: nothing is read.
    ct = ct_grid(-11.0)
    hu = lower_dish_ct(ct, 1.6)
    hu[5, 34:47, 34:47] = 400.0  # the slice at -1 mm
    assert lower_depth(planes_for(hu, ct)) is None


def test_a_slice_beyond_the_rim_lies_open_and_the_face_is_flat():
    # The dish (0.8 mm) ends before the first slice beyond the point (1 mm): depth 0.
    ct = ct_grid(-11.0)
    assert lower_depth(planes_for(lower_dish_ct(ct, 0.8), ct)) == 0.0


def test_cement_over_the_axis_beyond_the_point_leaves_the_face_alone():
    ct = ct_grid(-11.0)
    hu = lower_dish_ct(ct, 1.6)
    hu[5, 36:45, 36:45] = 2500.0  # the slice at -1 mm, over the axis
    assert lower_depth(planes_for(hu, ct)) is None


def test_cement_in_the_pocket_leaves_the_face_alone():
    # A leak into the disc beside the axis, in the slice at -1 mm: it and its blur would shrink
    # the pocket, so the slice is not read.
    ct = ct_grid(-11.0)
    hu = lower_dish_ct(ct, 1.6)
    hu[5, 44:48, 44:48] = 2500.0
    assert lower_depth(planes_for(hu, ct)) is None


def tilted_ct_grid(tilt_deg: float) -> VolumeGeometry:
    """2 mm slices tilted ``tilt_deg`` about the y axis against the frame's, 0.5 mm pixels,
    centred on (0, 0, 2) mm."""
    angle = np.radians(tilt_deg)
    rotation = np.array(
        [[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0], [-np.sin(angle), 0.0, np.cos(angle)]]
    )
    shape = (16, 101, 101)
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag([SPACING_MM, SPACING_MM, 2.0])
    half_extent = matrix[:3, :3] @ ((np.array(shape[::-1]) - 1) / 2.0)
    matrix[:3, 3] = np.array([0.0, 0.0, 2.0]) - half_extent
    return VolumeGeometry(matrix, shape)


@pytest.mark.parametrize("tilt_deg", [4.0, -4.0])
def test_a_dish_seen_through_tilted_slices_keeps_its_depth(tilt_deg):
    # Tilted slices cross the columns at different heights: the pocket is the part of the
    # outline where the slice lies beyond the paraboloid, column by column.
    ct = tilted_ct_grid(tilt_deg)
    depth = lower_depth(planes_for(lower_dish_ct(ct, 2.5), ct))
    assert depth == pytest.approx(2.5, rel=0.05)


def test_a_tilted_flat_face_draws_no_ring():
    # A flat face tilted 0.15 mm/mm across x crosses the slice at -1 mm on one side only: no
    # ring surrounds the axis, and the slice is not open either.
    ct = ct_grid(-11.0)
    assert lower_depth(planes_for(lower_dish_ct(ct, 0.0, tilt=0.15), ct)) is None


def test_a_flat_face_tilted_across_a_slice_is_flat():
    # Given its tilt (4.2 mm over the outline, more than the 2 mm slice), the pocket the slice at
    # -1 mm cuts, which runs to the side wall, is what the tilted plane leaves: no dish.
    ct = ct_grid(-11.0)
    assert lower_depth(planes_for(lower_dish_ct(ct, 0.0, tilt=0.15), ct), tilt=0.15) == 0.0


@pytest.mark.parametrize("depth_mm", [1.6, 2.5])
def test_a_dish_tilted_across_a_slice_is_not_taken_flat(depth_mm):
    # The same tilt on a dish: the pocket, cut by the outline, is smaller than the plane leaves,
    # and the face stays as the shell has it.
    ct = ct_grid(-11.0)
    planes = planes_for(lower_dish_ct(ct, depth_mm, tilt=0.15), ct)
    assert lower_depth(planes, tilt=0.15) is None


def test_the_faces_take_the_paraboloid_through_the_point():
    ct = ct_grid(-11.0)
    planes = planes_for(lower_dish_ct(ct, 1.6), ct)
    z = np.arange(60)[:, None, None]
    body = outline()[None] & (z >= 20) & (z <= 49)  # a flat box from the lower point up
    result = faces_on_rings(body, FaceFill(0.5, 0.5), planes, (20.0, 50.0), LEVEL_HU, SPACING_MM)
    assert result is not None
    mask, fill, placed = result
    present, first, _ = column_faces(mask)
    lower = np.where(present, first + 0.5 - np.broadcast_to(fill.lower, present.shape), np.nan)
    # Volume beyond the point: a paraboloid dish holds half its cylinder, area x depth / 2.
    area_mm2 = float(outline().sum()) * SPACING_MM**2
    beyond_mm3 = float(np.nansum(20.0 - lower[present])) * SPACING_MM**3
    assert beyond_mm3 == pytest.approx(area_mm2 * 1.6 / 2.0, rel=0.06)
    # The slices placed the lower face only: beyond the upper point the CT holds no slice.
    assert placed == (True, False)


def test_a_face_within_the_slice_gap_keeps_its_tilt_through_the_point():
    # A flat lower face sloping 0.03 mm/mm across x (within 0.42 mm of the point over the
    # outline) and the first slice beyond it 1 mm out, open: the face is the plane through the
    # point with the shell's tilt, not one square to the axis.
    ct = ct_grid(-11.0)
    planes = planes_for(lower_dish_ct(ct, 0.0, tilt=0.03), ct)
    rows, cols = np.indices((81, 81))
    slope_px = 0.03 * (cols - 40)  # frame slices per column, 0.5 mm each way
    z = np.arange(60)[:, None, None]
    shell_face = 20.0 + slope_px + 0.6  # the shell's face, half a millimetre further in
    body = outline()[None] & (z >= np.floor(shell_face + 0.5)[None]) & (z <= 49)
    result = faces_on_rings(body, FaceFill(), planes, (20.0, 50.0), LEVEL_HU, SPACING_MM)
    assert result is not None
    mask, fill, _ = result
    present, first, _ = column_faces(mask)
    lower = first + 0.5 - np.broadcast_to(fill.lower, present.shape)
    expected = 20.0 + slope_px
    inner = slicewise.binary_erode(outline()[None], 6)[0]
    # Within 0.1 mm of the tilted plane (the shell had it in whole slices); square to the axis
    # the face would be up to 0.42 mm off.
    assert np.abs(lower - expected)[inner].max() < 0.2


def dished_body(depth_mm: float) -> tuple[np.ndarray, FaceFill]:
    """The body on the frame grid with a lower face dished ``depth_mm`` below the point on the
    outline's paraboloid (as the contour fit leaves it), its upper face flat at position 50."""
    columns = outline()
    radius_sq = np.minimum(normalised_radius_sq(columns, (40, 40)), 1.0)
    lower = 20.0 - depth_mm / SPACING_MM * radius_sq
    return body_from_face_positions(columns, lower, np.full(columns.shape, 50.0), 60)


def held_below_the_point_mm3(mask: np.ndarray, fill: FaceFill) -> float:
    present, lower, _ = face_positions(mask, fill)
    return float(np.sum(20.0 - lower[present])) * SPACING_MM**3


@pytest.mark.parametrize(("fitted_mm", "expected_mm"), [(2.5, 1.6), (1.0, None)])
def test_a_fitted_face_takes_only_a_shallower_dish_from_the_rings(fitted_mm, expected_mm):
    # The contour fit's dish and the rings' (1.6 mm) both tend to err deep: the shallower holds.
    ct = ct_grid(-11.0)
    planes = planes_for(lower_dish_ct(ct, 1.6), ct)
    body, fill = dished_body(fitted_mm)
    result = faces_on_rings(body, fill, planes, (20.0, 50.0), LEVEL_HU, SPACING_MM, fitted=(True, False))
    if expected_mm is None:
        assert result is None
        return
    assert result is not None
    area_mm2 = float(outline().sum()) * SPACING_MM**2
    assert held_below_the_point_mm3(*result[:2]) == pytest.approx(area_mm2 * expected_mm / 2.0, rel=0.06)


def test_an_open_first_slice_leaves_a_fitted_dish():
    # The 0.8 mm dish ends before the slice 1 mm beyond the point: that bounds the depth but does
    # not give it, and the fitted 1.5 mm dish is kept.
    ct = ct_grid(-11.0)
    planes = planes_for(lower_dish_ct(ct, 0.8), ct)
    body, fill = dished_body(1.5)
    assert (
        faces_on_rings(body, fill, planes, (20.0, 50.0), LEVEL_HU, SPACING_MM, fitted=(True, False)) is None
    )


CORTEX_HU, MARROW_HU, DISC_HU = 750.0, 110.0, 80.0
CORTEX_MM = 1.0


def averaged_lower_dish_ct(
    grid: VolumeGeometry,
    depth_mm: float,
    noise_sd_hu: float = 0.0,
    profile_mm: float = 2.0,
    cortex_hu: float = CORTEX_HU,
) -> np.ndarray:
    """HU on ``grid`` averaged over ``profile_mm`` around each slice's centre (40 samples across
    it, a box-shaped slice profile; the whole 2 mm slice by default): a 1 mm cortex (750 HU by
    default) on the lower face ``-depth * rho**2`` under marrow (110 HU), disc (80 HU) beyond the
    face and outside the outline, and Gaussian noise of ``noise_sd_hu``."""
    k, j, i = np.indices(grid.shape)
    x, y, z = grid.ijk_to_ras_points(np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)).T
    rho_sq = (x / SEMI_AXES_MM[0]) ** 2 + (y / SEMI_AXES_MM[1]) ** 2
    half_step = 0.5 * profile_mm / 40
    samples = np.linspace(-0.5 * profile_mm + half_step, 0.5 * profile_mm - half_step, 40)
    into_body = z[:, None] + samples[None] + depth_mm * rho_sq[:, None]
    hu = np.where(into_body < 0.0, DISC_HU, np.where(into_body < CORTEX_MM, cortex_hu, MARROW_HU))
    hu = np.where((rho_sq <= 1.0)[:, None], hu, DISC_HU).mean(axis=1)
    noise = np.random.default_rng(3).normal(0.0, noise_sd_hu, hu.size) if noise_sd_hu else 0.0
    return (hu + noise).reshape(grid.shape)


@pytest.mark.parametrize(("depth_mm", "noise_sd_hu"), [(1.1, 0.0), (1.0, 0.0), (1.1, 20.0)])
def test_an_open_averaged_slice_gives_the_dish_its_partial_volume_holds(depth_mm, noise_sd_hu):
    # The slice centred 1.6 mm beyond the point starts 0.6 mm beyond it: the 1.1 mm dish's rim
    # reaches 0.5 mm into it (the 1.0 mm dish's 0.4 mm), and its columns beyond
    # rho**2 = 0.6 / depth rise over the disc with the cortex they hold; the columns read, 1.5 mm
    # from the side wall and in, up to rho**2 = 0.8, with 0.28 mm (0.2 mm) of it. No ring closes
    # there: the slice lies open.
    ct = ct_grid(-11.6)
    depth = lower_depth(planes_for(averaged_lower_dish_ct(ct, depth_mm, noise_sd_hu), ct))
    assert depth == pytest.approx(depth_mm, rel=0.05)


@pytest.mark.parametrize("depth_mm", [0.0, 0.4])
def test_an_averaged_slice_the_dish_does_not_reach_leaves_the_face_flat(depth_mm):
    # A flat face, and a 0.4 mm dish that ends short of the slice starting 0.6 mm beyond it.
    ct = ct_grid(-11.6)
    assert lower_depth(planes_for(averaged_lower_dish_ct(ct, depth_mm), ct)) == 0.0


def test_the_partial_volume_hinge_bends_where_the_rim_enters_the_slice():
    # Columns rising 300 HU per mm of cortex beyond rho**2 = 0.5 (a 1.2 mm dish, the slice
    # starting 0.6 mm beyond the point); those at the edge level (240 HU) and up are left out.
    columns = outline()
    radius_sq = np.minimum(normalised_radius_sq(columns, (40, 40)), 1.0)
    start_mm = np.full(columns.shape, 0.6)
    values = DISC_HU + 300.0 * np.maximum(1.2 * radius_sq - 0.6, 0.0)
    depth = depth_from_partial_volume(values, columns, radius_sq, start_mm, LEVEL_HU)
    assert depth == pytest.approx(1.2, abs=0.011)
    flat = np.full(columns.shape, DISC_HU)
    assert depth_from_partial_volume(flat, columns, radius_sq, start_mm, LEVEL_HU) == 0.0


@pytest.mark.parametrize("quadrants", [1, 2])
def test_a_rise_on_one_side_of_the_axis_is_no_dish(quadrants):
    # The same rise over a quarter (or half) of the outline only: bone beyond the rim on one side
    # (osteophytes) or a tilt, not a dish's rim, which rises all round the axis.
    columns = outline()
    radius_sq = np.minimum(normalised_radius_sq(columns, (40, 40)), 1.0)
    rows, cols = np.indices(columns.shape)
    side = (cols > 40) & ((rows > 40) if quadrants == 1 else True)
    values = DISC_HU + np.where(side, 300.0 * np.maximum(1.2 * radius_sq - 0.6, 0.0), 0.0)
    start_mm = np.full(columns.shape, 0.6)
    assert depth_from_partial_volume(values, columns, radius_sq, start_mm, LEVEL_HU) == 0.0


@pytest.mark.parametrize("depth_mm", [1.3, 1.6, 2.0])
def test_a_ring_in_an_averaged_slice_that_holds_the_point_has_its_edge_nearer(depth_mm):
    # The slice centred 0.8 mm beyond the point starts 0.2 mm short of it: a column holds
    # h + 0.2 mm of cortex, 335 HU per mm over the disc, and the pocket ends at 240 HU, where
    # h = 0.28 mm, not at the slice's centre (read there, the 1.6 mm dish would come out 4.6 mm).
    ct = ct_grid(-10.8)
    depth = lower_depth(planes_for(averaged_lower_dish_ct(ct, depth_mm), ct))
    assert depth == pytest.approx(depth_mm, rel=0.05)


@pytest.mark.parametrize(("depth_mm", "noise_sd_hu"), [(0.84, 0.0), (0.84, 20.0), (1.2, 0.0)])
def test_an_open_slice_thinner_than_its_spacing_shows_the_dish_in_partial_volume(depth_mm, noise_sd_hu):
    # 1 mm thick slices every 2 mm, one centred 0.91 mm beyond the point: it starts 0.41 mm
    # beyond it, and a 0.84 mm dish's rim reaches 0.43 mm into it. A faint cortex (300 HU) keeps
    # its partial volume under the edge level: the slice lies open. Taken as averaged over the
    # whole 2 mm spacing it would start short of the point: no hinge fits its rise, the face stays flat.
    ct = ct_grid(-10.91)
    hu = averaged_lower_dish_ct(ct, depth_mm, noise_sd_hu, profile_mm=1.0, cortex_hu=300.0)
    assert lower_depth(planes_for(hu, ct, profile_share=0.5)) == pytest.approx(depth_mm, rel=0.05)
    assert lower_depth(planes_for(hu, ct)) == 0.0


def test_the_slice_profile_sets_how_far_a_slice_reaches_along_the_columns():
    ct = ct_grid(-10.91)
    hu = lower_dish_ct(ct, 0.0)
    averaged, thin = planes_for(hu, ct), planes_for(hu, ct, profile_share=0.5)
    assert averaged.thickness_along_columns(SPACING_MM) == pytest.approx(np.full((81, 81), 2.0))
    assert thin.thickness_along_columns(SPACING_MM) == pytest.approx(np.full((81, 81), 1.0))


def test_a_ring_sampled_at_the_slice_centre_keeps_its_edge_there():
    ct = ct_grid(-10.8)
    assert lower_depth(planes_for(lower_dish_ct(ct, 1.6), ct)) == pytest.approx(1.6, rel=0.05)


def test_the_edge_shift_follows_the_rise_per_mm_of_cortex():
    # A pocket over rho**2 < 0.3 rising 300 HU per mm of cortex (a 1.2 mm dish, the slice
    # starting 0.5 mm short of the plane and centred 0.5 mm beyond it): the 240 HU edge lies
    # where the column holds 0.533 mm, 0.033 mm beyond the plane, 0.467 mm nearer than the centre.
    columns = outline()
    radius_sq = np.minimum(normalised_radius_sq(columns, (40, 40)), 1.0)
    start_mm = np.full(columns.shape, -0.5)
    values = DISC_HU + 300.0 * (1.2 * radius_sq + 0.5)
    pocket_core = slicewise.binary_erode((columns & (radius_sq < 0.3))[None], 1)[0]
    shift = averaged_edge_shift_mm(values, pocket_core, columns, radius_sq, start_mm, 0.5, DISC_HU, LEVEL_HU)
    assert shift == pytest.approx(0.5 - (-0.5 + 160.0 / 300.0), abs=1e-6)
    # Sampled at its centre, the pocket is disc throughout: the edge stays at the centre.
    flat = np.full(columns.shape, DISC_HU)
    arguments = (columns, radius_sq, start_mm, 0.5, DISC_HU, LEVEL_HU)
    assert averaged_edge_shift_mm(flat, pocket_core, *arguments) == 0.0


def test_a_slice_holding_too_little_cortex_over_the_axis_keeps_its_edge_at_the_centre():
    # The slice, centred 0.5 mm beyond the point, starts 0.04 mm short of the plane and rises
    # 16 HU over the disc on the axis, under the 40 HU a partial volume must reach to be read:
    # taken as 400 HU per mm, the 240 HU edge would lie 0.36 mm beyond the plane, 0.14 mm nearer
    # than the centre. Holding 0.3 mm, rising 120 HU, the same rise per mm puts the edge 0.1 mm
    # beyond the plane.
    columns = outline()
    radius_sq = np.minimum(normalised_radius_sq(columns, (40, 40)), 1.0)
    pocket_core = slicewise.binary_erode((columns & (radius_sq < 0.3))[None], 1)[0]
    for held_mm, expected_mm in ((0.04, 0.0), (0.3, 0.5 - (-0.3 + 160.0 / 400.0))):
        start_mm = np.full(columns.shape, -held_mm)
        values = DISC_HU + 400.0 * (1.2 * radius_sq + held_mm)
        arguments = (columns, radius_sq, start_mm, 0.5, DISC_HU, LEVEL_HU)
        assert averaged_edge_shift_mm(values, pocket_core, *arguments) == pytest.approx(expected_mm, abs=1e-6)
