"""The endplate faces of an enclosed body (frame grid, 0.5 mm slices along the axis, faces as
slice indices per column): inward outliers raised to the fitted endplate surface, the faces
calibrated to the marked points, and the body rebuilt from its faces within its outline.

Every expected value is an exact slice index or voxel count worked out from the construction."""

from __future__ import annotations

import numpy as np
import pytest

from CementLeakageLib.endplate_faces import (
    BROKEN_FACE_FRACTION,
    MAX_ENDPLATE_OVERSHOOT_MM,
    FaceFill,
    calibrate_to_endplate_points,
    column_faces,
    columns_within_outline,
    face_crossings,
    face_occupancy,
    face_positions,
    fill_beyond,
    filled_voxels,
    fitted_faces,
    smooth_face,
)

SPACING_MM = 0.5
GRID = 61
ROWS, COLS = np.mgrid[:GRID, :GRID]
DISK = np.hypot(ROWS - 30, COLS - 30) <= 24  # 12 mm radius, 1793 columns
TOLERANCE_PX = 3.0  # 1.5 mm
INSET_PX = 6  # 3 mm: columns nearer the outline stay out of the face fit


def tilted_lower_face() -> np.ndarray:
    """A lower face rising one slice per column to the right: a plane the quadratic fit holds exactly."""
    return (20 + (COLS - 30)).astype(np.int64)


def holes(fraction: float) -> np.ndarray:
    """About ``fraction`` of the disk's columns, scattered over the face (a faint, porous shell)."""
    return DISK & (np.random.default_rng(7).random(DISK.shape) < fraction)


def test_a_face_broken_in_many_columns_is_raised_to_the_plane_exactly():
    face = tilted_lower_face()
    broken = holes(0.2)
    damaged = np.where(broken, face + 10, face)  # the enclosure stopped 5 mm inside the body
    smoothed = smooth_face(damaged, DISK, inward=1, tolerance_px=TOLERANCE_PX, bound=-100)
    assert np.array_equal(smoothed[DISK], face[DISK])
    assert np.array_equal(smoothed[~DISK], damaged[~DISK])


def test_a_few_short_columns_are_kept_as_they_are():
    # A pit (a Schmorl node) deeper than the tolerance in fewer than BROKEN_FACE_FRACTION of the
    # columns is the endplate's own shape, not a hole.
    face = tilted_lower_face()
    pit = DISK & (np.hypot(ROWS - 30, COLS - 30) <= 5)  # 81 columns, 4.5% of the face
    assert pit.sum() / DISK.sum() < BROKEN_FACE_FRACTION
    damaged = np.where(pit, face + 10, face)
    smoothed = smooth_face(damaged, DISK, inward=1, tolerance_px=TOLERANCE_PX, bound=-100)
    assert np.array_equal(smoothed, damaged)


def test_short_columns_inside_the_outline_are_raised_and_those_along_it_kept():
    # Given the interior (the outline less INSET_PX), a few columns there stopping short of the
    # surface are a hole the enclosure ran through (a Schmorl node's pit opens the endplate, and
    # the region below it is lost), while along the outline they are the grid's steps.
    face = tilted_lower_face()
    radius = np.hypot(ROWS - 30, COLS - 30)
    interior = radius <= 24 - INSET_PX
    pit = DISK & (radius <= 5)  # 81 columns
    steps = DISK & (radius > 23) & (COLS > 30)  # along the outline, on the right
    assert (pit | steps).sum() / DISK.sum() < BROKEN_FACE_FRACTION
    damaged = np.where(pit | steps, face + 10, face)
    smoothed = smooth_face(damaged, DISK, 1, TOLERANCE_PX, -100, interior)
    assert np.array_equal(smoothed[pit], face[pit])
    assert np.array_equal(smoothed[steps], damaged[steps])
    assert np.array_equal(smoothed[DISK & ~pit], damaged[DISK & ~pit])


def test_columns_beyond_the_surface_are_never_moved():
    # Outward of the fit (a concave endplate's rim reaching 3 mm into the disc all round the
    # outline) stays; only the broken, inward columns are raised.
    face = tilted_lower_face()
    rim = DISK & (np.hypot(ROWS - 30, COLS - 30) > 22)
    broken = holes(0.2) & ~rim
    damaged = np.where(broken, face + 10, np.where(rim, face - 6, face))
    smoothed = smooth_face(damaged, DISK, inward=1, tolerance_px=TOLERANCE_PX, bound=-100)
    assert np.array_equal(smoothed[rim], face[rim] - 6)
    assert np.array_equal(smoothed[broken], face[broken])


def test_the_upper_face_is_lowered_from_above():
    upper = (60 - (COLS - 30)).astype(np.int64)
    broken = holes(0.2)
    damaged = np.where(broken, upper - 10, upper)
    smoothed = smooth_face(damaged, DISK, inward=-1, tolerance_px=TOLERANCE_PX, bound=1000)
    assert np.array_equal(smoothed[DISK], upper[DISK])


def test_raised_faces_stay_within_the_slab():
    face = tilted_lower_face()
    broken = holes(0.2)
    damaged = np.where(broken, face + 10, face)
    bound = 5  # the slab starts at slice 5; the plane lies below it on the left
    smoothed = smooth_face(damaged, DISK, inward=1, tolerance_px=TOLERANCE_PX, bound=bound)
    assert np.array_equal(smoothed[broken], np.maximum(face[broken], bound))
    assert (face[broken] < bound).any()


def test_too_few_columns_leave_the_face_alone():
    face = tilted_lower_face()
    few = np.zeros_like(DISK)
    few[30, 20:31] = True  # 11 columns
    damaged = np.where(few & (COLS < 25), face + 10, face)
    assert np.array_equal(smooth_face(damaged, few, 1, TOLERANCE_PX, -100), damaged)


AXIAL_MM = np.arange(80) * SPACING_MM - 10.25  # slice centres from -10.25 mm; faces on whole mm
HEIGHT_MM = 20.0


def cylinder(lower_mm: float, upper_mm: float, tilted: bool = False) -> np.ndarray:
    """The disk between faces at ``lower_mm`` and ``upper_mm`` on the axis (slice faces, mm);
    ``tilted`` faces rise one slice every three columns to the right (about 8 mm across the
    disk), in steps centred on the axis, so that the plane fitted to them passes through it."""
    centres = AXIAL_MM[:, None, None]
    shift = ((COLS - 29) // 3 * SPACING_MM * tilted)[None]
    return (
        DISK[None] & (centres - 0.25 >= lower_mm + shift - 1e-9) & (centres + 0.25 <= upper_mm + shift + 1e-9)
    )


@pytest.mark.parametrize("overshoot_mm", [0.5, 1.0, 2.0])
def test_faces_overshooting_on_the_axis_are_brought_onto_the_points(overshoot_mm):
    body = cylinder(-overshoot_mm, HEIGHT_MM + overshoot_mm)
    calibrated, fill = calibrate_to_endplate_points(body, AXIAL_MM, HEIGHT_MM, INSET_PX)
    assert np.array_equal(calibrated, cylinder(0.0, HEIGHT_MM))
    assert fill == FaceFill(1.0, 1.0)


def test_a_tilted_face_moves_by_the_axis_overshoot_in_every_column():
    body = cylinder(-1.0, HEIGHT_MM + 1.5, tilted=True)
    calibrated, fill = calibrate_to_endplate_points(body, AXIAL_MM, HEIGHT_MM, INSET_PX)
    assert np.array_equal(calibrated, cylinder(0.0, HEIGHT_MM, tilted=True))
    assert fill == FaceFill(1.0, 1.0)


@pytest.mark.parametrize(("upper_point_mm", "upper_fill"), [(19.9, 0.8), (19.6, 0.2), (19.75, 0.5)])
def test_an_overshoot_of_part_of_a_slice_is_left_as_the_end_voxels_share(upper_point_mm, upper_fill):
    # The top slice of the body ends at 21.0 mm: 1.1 mm (2.2 slices) beyond a point at 19.9 mm.
    # Two whole slices come off; the new top slice (19.5 to 20.0 mm) keeps 0.8 of itself.
    body = cylinder(-1.0, 21.0)
    calibrated, fill = calibrate_to_endplate_points(body, AXIAL_MM, upper_point_mm, INSET_PX)
    assert np.array_equal(calibrated, cylinder(0.0, 20.0))
    assert fill.lower == pytest.approx(1.0)
    assert fill.upper == pytest.approx(upper_fill, abs=1e-9)


@pytest.mark.parametrize(
    ("upper_point_mm", "added_slices", "upper_fill"), [(20.0, 1, 1.0), (19.9, 1, 0.8), (20.3, 2, 0.6)]
)
def test_faces_short_of_the_points_are_extended_when_asked(upper_point_mm, added_slices, upper_fill):
    # The top slice ends at 19.5 mm: 0.5 mm short of a point at 20.0 mm (one slice), 0.4 mm of one
    # at 19.9 mm (one slice, 0.8 of it kept), 0.8 mm of one at 20.3 mm (two slices, 0.6 of the top).
    body = cylinder(0.0, 19.5)
    calibrated, fill = calibrate_to_endplate_points(
        body, AXIAL_MM, upper_point_mm, INSET_PX, shortfall_mm=1.0
    )
    assert np.array_equal(calibrated, cylinder(0.0, 19.5 + 0.5 * added_slices))
    assert fill.lower == pytest.approx(1.0)
    assert fill.upper == pytest.approx(upper_fill, abs=1e-9)


def test_columns_a_shell_lost_inside_its_outline_take_the_fitted_faces():
    # A shell that did not enclose its interior holds there only the runs of denser trabecular
    # bone above its level; moving its faces onto the points takes as much off every run, and a
    # column of short runs is lost from top to bottom. The body kept has those columns between
    # the surfaces fitted to the others: here the cylinder's own faces, exactly.
    body = cylinder(0.0, HEIGHT_MM)
    lost = holes(0.05) & (np.hypot(ROWS - 30, COLS - 30) < 17)
    body &= ~lost[None]
    slab = np.flatnonzero((AXIAL_MM > 0.0) & (AXIAL_MM < HEIGHT_MM))
    kept = columns_within_outline(body, DISK, TOLERANCE_PX, slab, INSET_PX)
    assert np.array_equal(kept, cylinder(0.0, HEIGHT_MM))
    # Judged whether the shell enclosed the body (no inset), they stay lost.
    judged = columns_within_outline(body, DISK, TOLERANCE_PX, slab)
    assert np.array_equal(judged, body)


def test_the_filled_volume_is_the_voxels_less_the_unfilled_end_voxels():
    # The cylinder from 0 to 20 mm (40 slices of 1793 columns) with 0.8 of its top voxels and 0.3
    # of its bottom ones filled: 39.1 slices' worth; a column with a gap counts only its voxels.
    body = cylinder(0.0, HEIGHT_MM)
    assert filled_voxels(body, FaceFill(lower=0.3, upper=0.8)) == pytest.approx(1793 * 39.1)
    body[40, 30, 30] = False
    assert filled_voxels(body, FaceFill()) == pytest.approx(1793 * 40 - 1)


def test_a_shortfall_beyond_the_limit_is_made_up_by_the_limit_only():
    body = cylinder(0.0, HEIGHT_MM - 2.0)
    calibrated, fill = calibrate_to_endplate_points(body, AXIAL_MM, HEIGHT_MM, INSET_PX, shortfall_mm=1.0)
    assert np.array_equal(calibrated, cylinder(0.0, HEIGHT_MM - 1.0))
    assert fill == FaceFill(1.0, 1.0)


def test_an_overshoot_beyond_the_limit_is_cut_by_the_limit_only():
    body = cylinder(-4.0, HEIGHT_MM)
    calibrated, fill = calibrate_to_endplate_points(body, AXIAL_MM, HEIGHT_MM, INSET_PX)
    assert np.array_equal(calibrated, cylinder(-4.0 + MAX_ENDPLATE_OVERSHOOT_MM, HEIGHT_MM))
    assert fill == FaceFill(1.0, 1.0)


def test_faces_short_of_the_points_are_not_extended():
    body = cylinder(1.0, HEIGHT_MM - 1.0)
    calibrated, fill = calibrate_to_endplate_points(body, AXIAL_MM, HEIGHT_MM, INSET_PX)
    assert np.array_equal(calibrated, body)
    assert fill == FaceFill(1.0, 1.0)


def test_an_empty_axis_leaves_the_body_as_it_is():
    body = cylinder(-1.0, HEIGHT_MM + 1.0)
    body[:, 30, 30] = False
    calibrated, fill = calibrate_to_endplate_points(body, AXIAL_MM, HEIGHT_MM, INSET_PX)
    assert np.array_equal(calibrated, body)
    assert fill == FaceFill(1.0, 1.0)


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3, 0.5, 0.7, 0.95, 1.0])
def test_the_end_voxels_values_put_the_interpolated_surface_at_their_share(share):
    # Along a column interpolated linearly (np.interp), the value one half is crossed where the
    # face lies: the end voxel's inner edge plus ``share`` of a slice, at both ends.
    body = np.zeros((12, 3, 3), dtype=bool)
    body[3:9] = True  # voxels 3..8: the lower end voxel spans 2.5..3.5, the upper one 7.5..8.5
    occupancy = face_occupancy(body, FaceFill(lower=share, upper=share))
    column = occupancy[:, 1, 1].astype(float)
    assert np.all(occupancy[4:8] == 1.0) and not occupancy[:3].any() and not occupancy[9:].any()
    positions = np.linspace(0.0, 11.0, 110001)
    inside = np.interp(positions, np.arange(12), column) >= 0.5
    lower_face, upper_face = positions[inside][0], positions[inside][-1]
    assert lower_face == pytest.approx(3.5 - share, abs=2e-4)
    assert upper_face == pytest.approx(7.5 + share, abs=2e-4)


def test_the_body_is_rebuilt_from_its_faces_within_the_outline():
    body = cylinder(0.0, HEIGHT_MM)
    hollow = body.copy()
    hollow[30:50, 25:36, 25:36] = False  # a cavity (cement or marrow left out by a threshold)
    stray = np.zeros_like(body)
    stray[30:40, 30, 58] = True  # a stub outside the outline (a rib, a pedicle root)
    slab = np.flatnonzero((AXIAL_MM > 0.0) & (AXIAL_MM < HEIGHT_MM))
    rebuilt = columns_within_outline(hollow | stray, DISK, TOLERANCE_PX, slab)
    assert np.array_equal(rebuilt, body)
    assert rebuilt.sum() == DISK.sum() * 40  # 40 slices of 0.5 mm between the points


def test_a_column_lost_below_a_pit_is_rebuilt_up_to_the_upper_face():
    body = cylinder(0.0, HEIGHT_MM)
    leaked = body.copy()
    leaked[45:, 28:33, 28:33] = False  # the upper 8 mm (16 slices) of 25 columns, lost through a pit
    slab = np.flatnonzero((AXIAL_MM > 0.0) & (AXIAL_MM < HEIGHT_MM))
    assert np.array_equal(columns_within_outline(leaked, DISK, TOLERANCE_PX, slab), leaked)
    rebuilt = columns_within_outline(leaked, DISK, TOLERANCE_PX, slab, INSET_PX)
    assert np.array_equal(rebuilt, body)


def terraced_body(slope: float) -> tuple[np.ndarray, float]:
    """A disk whose faces are planes rising ``slope`` slices per column to the right, each column's
    face moved outward onto the next slice of a CT with 2 mm slices (every 4th slice, one of them
    through the axis's true faces at slice indices 20 and 60): the terraces thick slices leave.
    Returns the body and the mean distance (slices) from the true faces out to the terraces."""
    true_lower = 20.0 + slope * (COLS - 30)
    true_upper = 60.0 + slope * (COLS - 30)
    lower = (4 * np.floor(true_lower / 4)).astype(int)
    upper = (4 * np.ceil(true_upper / 4)).astype(int)
    z = np.arange(80)[:, None, None]
    body = DISK[None] & (z >= lower[None]) & (z <= upper[None])
    inner = np.hypot(ROWS - 30, COLS - 30) <= 24 - INSET_PX
    return body, float(np.mean((true_lower - lower)[inner]))


@pytest.mark.parametrize("slope", [0.5, 1.0])
def test_the_faces_on_the_axis_average_over_the_terraces(slope):
    body, mean_overshoot = terraced_body(slope)
    lower_surface, upper_surface = fitted_faces(body, INSET_PX)
    lower, upper = lower_surface[30, 30], upper_surface[30, 30]  # on the axis
    # The axis column's terrace lies on its true faces (slices 20 and 60): reading the overshoot
    # there alone would leave every other column out by the terraces' mean (1.5-1.7 slices).
    assert mean_overshoot > 1.4
    assert np.flatnonzero(body[:, 30, 30])[[0, -1]].tolist() == [20, 60]
    assert lower == pytest.approx(20.0 - mean_overshoot, abs=0.25)
    assert upper == pytest.approx(60.0 + mean_overshoot, abs=0.25)


@pytest.mark.parametrize("strip_column", [26, 34])
def test_a_strip_the_shell_left_open_comes_off_the_terraced_face_fit(strip_column):
    # The terraced lower face (terraced_body(0.5)) opened 3 mm deep along a strip 3 columns wide,
    # a tenth of the inner columns: the enclosure ran in where no slice caught the cortex. The
    # terraces spread the faces so wide that the strip comes off the fit a few columns at a time:
    # after three fits the surface still lay 0.4 slices inward on the axis; settled, it lies on the
    # terraces' mean as without the strip.
    body, mean_overshoot = terraced_body(0.5)
    strip = DISK & (np.abs(COLS - strip_column) <= 1)
    lowest = np.argmax(body, axis=0)
    z = np.arange(body.shape[0])[:, None, None]
    body &= ~(strip[None] & (z < lowest[None] + 6))
    lower_surface, _ = fitted_faces(body, INSET_PX)
    assert lower_surface[30, 30] == pytest.approx(20.0 - mean_overshoot, abs=0.1)


def test_the_columns_around_the_axis_stay_in_a_settled_fit():
    # A narrow dish 4 mm deep (8 slices, 4 mm radius) in a flat lower face. A quadratic fitted to
    # the whole face cannot reach its floor; a fit that settles leaves the floor's columns out and
    # reads it at the rims' level. Kept in every fit, the columns within 2 mm of the axis, where
    # the point is, hold the fit more than two slices off the rims towards the floor (three rounds
    # of the outlier test read 21.2 there, the settled fit without them 20.5).
    radius = np.hypot(ROWS - 30, COLS - 30)
    lower = np.rint(20 + 8 * np.clip(1 - (radius / 8) ** 2, 0, None)).astype(int)
    z = np.arange(80)[:, None, None]
    body = DISK[None] & (z >= lower[None]) & (z <= 60)
    settled, _ = fitted_faces(body, INSET_PX)
    kept, _ = fitted_faces(body, INSET_PX, axis_patch_px=4)
    assert settled[30, 30] < 21.0  # the rims are at 20, the floor at 28
    assert 22.0 < kept[30, 30] < 28.0


def test_too_few_columns_give_no_fitted_faces():
    body = cylinder(0.0, HEIGHT_MM)
    assert fitted_faces(body, 22) is None  # a 2-pixel core is left inside the outline


def test_columns_under_hidden_cement_are_left_out_of_the_face_fit():
    # Faces 1 mm beyond both points, but over a patch 4 mm around the axis, where a leak's cement
    # beyond the upper point was hidden from the shell, the upper face stops 1 mm short of the rest.
    # Left out of the fit, those columns do not pull the face on the axis, and they take the
    # fitted face themselves: every column comes 1 mm down, as if the patch were not there (the
    # patch does not lose another millimetre).
    patch = np.hypot(ROWS - 30, COLS - 30) <= 8
    body = cylinder(-1.0, HEIGHT_MM + 1.0)
    body[:, patch] = cylinder(-1.0, HEIGHT_MM)[:, patch]
    calibrated, fill = calibrate_to_endplate_points(
        body, AXIAL_MM, HEIGHT_MM, INSET_PX, excluded_columns=patch
    )
    assert np.array_equal(calibrated, cylinder(0.0, HEIGHT_MM))
    assert fill == FaceFill(1.0, 1.0)
    # Fitted with them, the patch drags the face on the axis down: too little comes off.
    _, fill_with_patch = calibrate_to_endplate_points(body, AXIAL_MM, HEIGHT_MM, INSET_PX)
    assert fill_with_patch.upper != pytest.approx(1.0)


def test_columns_under_hidden_cement_take_the_fitted_dish():
    # A lower face dished 2 mm upward at the axis (a paraboloid: the quadratic fit holds it), each
    # column 1 mm beyond its true face (the shell's blur) but 0.5 mm beyond it over the patch of
    # 4 mm around the axis where a leak's cement was hidden. Calibrated onto the point at the
    # bottom of the dish, the patch takes the dish's face, not half a millimetre less.
    radius = np.hypot(ROWS - 30, COLS - 30)
    dish_mm = 2.0 * np.clip(1.0 - (radius / 24.0) ** 2, 0.0, None)
    patch = radius <= 8
    overshoot_mm = np.where(patch, 0.5, 1.0)
    z = AXIAL_MM[:, None, None]
    true_lower_mm = -2.0 + dish_mm  # the point lies on the axis at 0 mm
    body = DISK[None] & (z > (true_lower_mm - overshoot_mm)[None]) & (z < HEIGHT_MM)
    calibrated, fill = calibrate_to_endplate_points(
        body, AXIAL_MM, HEIGHT_MM, INSET_PX, excluded_columns=patch
    )
    # Each column's lower face (mm): its lowest voxel's outer edge moved in by the share it loses.
    _, first, _ = column_faces(calibrated)
    face_mm = AXIAL_MM[first] - 0.5 * SPACING_MM + (1.0 - fill.lower) * SPACING_MM
    error_mm = face_mm - true_lower_mm
    # The patch's faces as true as the rest's (to a quarter of a slice on average; the fit's own
    # error, the same for both, is the calibration's): left as they were, they would lie half a
    # millimetre further inside the body than the rest.
    assert abs(float(error_mm[patch].mean() - error_mm[DISK & ~patch].mean())) < 0.125
    assert abs(float(error_mm[DISK].mean())) < 0.25


LEVEL_HU = 300.0


def ramped_shell(lower_px: np.ndarray, upper_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intensities rising 100 HU per slice from ``LEVEL_HU`` at face positions ``lower_px`` and
    ``upper_px`` (slice indices, ``[y, x]`` or scalars; a voxel spans its index +- 0.5) towards
    the middle, and the body (within the disk) of the voxels at the level and up."""
    z = np.arange(80, dtype=float)[:, None, None]
    hu = LEVEL_HU + 100.0 * np.minimum(z - np.asarray(lower_px)[None], np.asarray(upper_px)[None] - z)
    hu = np.broadcast_to(hu, (80, *DISK.shape))
    return hu, DISK[None] & (hu >= LEVEL_HU)


def test_the_crossings_place_each_face_between_its_end_voxel_and_the_next():
    # Faces 0.3 slices above the lower end voxel's outer edge (19.5) and 0.4 below the upper
    # one's (60.5) in every column: a binary mask puts them on the edges.
    hu, body = ramped_shell(19.8, 60.1)
    assert np.flatnonzero(body[:, 30, 30])[[0, -1]].tolist() == [20, 60]
    inward_lower, inward_upper = face_crossings(body, hu, LEVEL_HU)
    assert inward_lower[DISK] == pytest.approx(0.3, abs=1e-9)
    assert inward_upper[DISK] == pytest.approx(0.4, abs=1e-9)
    assert np.isnan(inward_lower[~DISK]).all() and np.isnan(inward_upper[~DISK]).all()


def test_a_face_the_intensities_do_not_cross_has_no_crossing():
    # A column filled down below the level (a closing or a filled cavity made its end voxel).
    hu, body = ramped_shell(19.8, 60.1)
    body[19, 30, 30] = True
    inward_lower, inward_upper = face_crossings(body, hu, LEVEL_HU)
    assert np.isnan(inward_lower[30, 30])
    assert inward_lower[30, 31] == pytest.approx(0.3, abs=1e-9)
    assert inward_upper[30, 30] == pytest.approx(0.4, abs=1e-9)


@pytest.mark.parametrize(("lower_px", "upper_px"), [(19.3, 60.2), (19.0, 61.4), (19.9, 60.6)])
def test_with_the_crossings_a_face_square_to_the_axis_lands_on_its_point(lower_px, upper_px):
    # Points at slice positions 20.5 (0 mm) and 60.5 (20 mm). Every column's binary face lies on
    # the same voxel edge (19.5 or 20.5 below, 60.5 or 61.5 above), up to half a slice from the
    # crossing; the faces beyond the points come onto them, those short of them stay (no
    # shortfall asked) at their crossing.
    hu, body = ramped_shell(lower_px, upper_px)
    calibrated, fill = calibrate_to_endplate_points(body, AXIAL_MM, HEIGHT_MM, INSET_PX, shell=(hu, LEVEL_HU))
    present, lower, upper = face_positions(calibrated, fill)
    assert np.array_equal(present, DISK)
    assert lower[DISK] == pytest.approx(max(lower_px, 20.5), abs=1e-9)
    assert upper[DISK] == pytest.approx(min(upper_px, 60.5), abs=1e-9)


def test_without_the_crossings_such_a_face_is_off_by_its_edge():
    # The faces read from the binary columns alone: the upper one (crossing 60.2) stays on its
    # voxel edge at 60.5, 0.3 slices (0.15 mm) too high; the lower one lands on its point.
    hu, body = ramped_shell(19.3, 60.2)
    calibrated, fill = calibrate_to_endplate_points(body, AXIAL_MM, HEIGHT_MM, INSET_PX)
    _, lower, upper = face_positions(calibrated, fill)
    assert lower[30, 30] == pytest.approx(20.5) and upper[30, 30] == pytest.approx(60.5)


def test_with_the_crossings_a_tilted_face_moves_by_its_overshoot_on_the_axis():
    # Faces rising 0.13 slices per column to the right, 1.2 slices beyond the lower point on the
    # axis and 0.3 short of the upper one: the columns' binary faces lie anywhere on their edges,
    # and the body between the calibrated faces holds what the crossings moved by 1.2 slices hold.
    tilt = 0.13 * (COLS - 30)
    hu, body = ramped_shell(19.3 + tilt, 60.2 + tilt)
    calibrated, fill = calibrate_to_endplate_points(body, AXIAL_MM, HEIGHT_MM, INSET_PX, shell=(hu, LEVEL_HU))
    present, lower, upper = face_positions(calibrated, fill)
    assert np.array_equal(present, DISK)
    expected_slices = float(((60.2 + tilt) - (20.5 + tilt))[DISK].sum())
    assert float((upper - lower)[DISK].sum()) == pytest.approx(expected_slices, rel=1e-9)
    # Each column within half a slice of its own crossing moved so.
    assert np.abs(lower - (20.5 + tilt))[DISK].max() <= 0.5 + 1e-9


def test_a_face_the_shell_sets_beyond_the_slab_keeps_its_share_of_a_slice():
    # Three columns: the shell's face reaches below the slab's (it keeps its share, 0.3), ends with
    # it (the slab's whole voxel sets the face), or has no slab below it (its share again).
    shell = np.zeros((20, 1, 3), dtype=bool)
    shell[4:16, 0, 0] = True
    shell[6:16, 0, 1] = True
    shell[4:16, 0, 2] = True
    slab = np.zeros_like(shell)
    slab[6:14, 0, :2] = True
    fill = fill_beyond(shell, slab, FaceFill(lower=0.3, upper=0.8))
    assert fill.lower[0].tolist() == [0.3, 1.0, 0.3]
    assert fill.upper[0].tolist() == [0.8, 0.8, 0.8]
    # The union's volume: the whole voxels less the shares the shell's end voxels leave unfilled.
    union = shell | slab
    assert filled_voxels(union, fill) == pytest.approx(12 + 10 + 12 - 0.7 * 2 - 0.2 * 3)
