"""Dished endplates on thick slices, fitted to the contours where the CT's slices cut them.

The contour points are checked against an analytic dish, the distance between two iso-levels of
a blurred cortex against the blurred profile's own crossings (error functions solved by
``scipy.optimize.brentq``), and the whole measurement against the analytic volume of biconcave
phantoms on 2 mm slices whose terraced faces missed the 4% target."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import erf

from CementLeakageLib.cortex_edge import level_offset_px
from CementLeakageLib.endplate_contours import CtSlicePositions, contour_points, dished_faces_on_contours
from CementLeakageLib.endplate_faces import FaceFill, body_from_face_positions, face_occupancy, face_positions
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.pipeline import measure_vertebra

GRID = 61
ROWS, COLS = np.mgrid[:GRID, :GRID]
RADIUS_PX = np.hypot(ROWS - 30, COLS - 30)


def dish_face(radius_px: np.ndarray) -> np.ndarray:
    """An upper face dished 6 frame slices deep at the axis, rising to 20 + 6 at 25 px out."""
    return 20.0 + 6.0 * (radius_px / 25.0) ** 2


def test_the_slices_cut_a_dish_along_its_contours():
    # CT slices every four frame slices (2 mm slices on a 0.5 mm frame grid), the first at frame
    # slice 1: they cut the dish at frame slices 21 and 25, on circles of 10.2 and 22.8 px.
    slices = CtSlicePositions(start=np.full((GRID, GRID), -0.25), per_slice=np.full((GRID, GRID), 0.25))
    columns = RADIUS_PX <= 25
    points = contour_points(dish_face(RADIUS_PX), columns, slices)
    radius = np.hypot(points[:, 0] - 30, points[:, 1] - 30)
    assert set(np.round(points[:, 2], 6)) == {21.0, 25.0}
    for plane, ring_px in ((21.0, 25.0 * np.sqrt(1.0 / 6.0)), (25.0, 25.0 * np.sqrt(5.0 / 6.0))):
        on_plane = radius[points[:, 2] == plane]
        # Halfway between the two columns either side of the circle: within half a column's diagonal.
        assert np.abs(on_plane - ring_px).max() <= 0.5 * np.sqrt(2.0) + 1e-9
        assert on_plane.size >= 4 * ring_px  # the whole circle, both directions between columns


def test_a_face_the_slices_do_not_cut_has_no_contour():
    slices = CtSlicePositions(start=np.full((GRID, GRID), -0.25), per_slice=np.full((GRID, GRID), 0.25))
    flat = np.full((GRID, GRID), 22.0)  # between the slices at frame slices 21 and 25
    assert contour_points(flat, RADIUS_PX <= 25, slices).shape == (0, 3)


def blurred_wall(distance_mm: np.ndarray, sigma_mm: float) -> np.ndarray:
    """HU across a wall: trabecular bone (110 HU) inside, a 1 mm cortex of 750 HU from 0 to 1 mm,
    soft tissue (40 HU) outside, blurred by a Gaussian of ``sigma_mm`` (distance grows outward)."""

    def step(edge_mm: float) -> np.ndarray:  # 1 beyond ``edge_mm``, blurred
        return 0.5 * (1.0 + erf((distance_mm - edge_mm) / (np.sqrt(2.0) * sigma_mm)))

    return 110.0 + (750.0 - 110.0) * step(0.0) + (40.0 - 750.0) * step(1.0)


@pytest.mark.parametrize(("level_hu", "sigma_mm"), [(190.0, 0.6), (130.0, 0.6), (190.0, 0.45), (400.0, 0.6)])
def test_the_offset_between_two_levels_is_read_across_the_anterior_wall(level_hu, sigma_mm):
    edge_hu = 350.0
    spacing_mm = 0.5
    rows = np.arange(60)
    centre = (20, 30)
    # The wall lies 12.3 mm in front of the axis (off the pixel grid), rows growing anteriorly.
    distance = (rows - centre[0]) * spacing_mm - 12.3
    hu = np.broadcast_to(blurred_wall(distance, sigma_mm)[None, :, None], (8, 60, 61)).copy()
    offset_px = level_offset_px(hu, np.arange(2, 6), centre, level_hu, edge_hu)

    def outer_crossing(level: float) -> float:
        return brentq(lambda d: blurred_wall(np.array([d]), sigma_mm)[0] - level, 0.5, 6.0)

    truth_mm = outer_crossing(level_hu) - outer_crossing(edge_hu)
    # A cubic through 0.5 mm pixels: within 0.03 mm of the blurred profile's own crossings
    # (measured 0.002-0.022 mm; linear between the pixels read up to 0.06 mm more).
    assert offset_px * spacing_mm == pytest.approx(truth_mm, abs=0.03)


def test_each_column_keeps_its_own_share_of_its_end_voxels():
    body = np.zeros((12, 1, 2), dtype=bool)
    body[3:9] = True
    shares = np.array([[0.2, 0.8]])
    occupancy = face_occupancy(body, FaceFill(lower=1.0, upper=shares))
    positions = np.linspace(0.0, 11.0, 110001)
    for col, share in enumerate(shares[0]):
        inside = np.interp(positions, np.arange(12), occupancy[:, 0, col].astype(float)) >= 0.5
        assert positions[inside][-1] == pytest.approx(7.5 + share, abs=2e-4)
        assert positions[inside][0] == pytest.approx(2.5, abs=2e-4)


BICONCAVE_ON_2_MM = {
    # Terraced faces read VBV +6.6% (a rim's terrace a slice out, reaching 1-1.5 mm into the dish).
    "T8 at 71% of its height, 0.6 x 0.6 x 2 mm, LPS": replace(
        PhantomSpec.for_level("T8"),
        side="right",
        spacing_mm=(0.6, 0.6, 2.0),
        orientation="lps",
        compression="biconcave",
        compression_ratio=0.7085,
        rotation_deg=13.1,
        cement_preset="low",
        seed=2045,
    ),
    # +3.6% before.
    "T12 at 70%, fracture cleft, 0.5 x 0.5 x 2 mm": replace(
        PhantomSpec.for_level("T12"),
        side="right",
        spacing_mm=(0.5, 0.5, 2.0),
        compression="biconcave",
        compression_ratio=0.6964,
        fracture_cleft=True,
        rotation_deg=-13.5,
        disc_height_mm=4.62,
        cement_preset="high",
        leaks=("anterior",),
        seed=2037,
    ),
}


@pytest.mark.parametrize("case", BICONCAVE_ON_2_MM)
def test_dished_endplates_on_2_mm_slices_hold_the_body_volume(case):
    phantom = make_phantom(BICONCAVE_ON_2_MM[case])
    truth = phantom.truth
    result = measure_vertebra(phantom.ct, truth.upper_ras, truth.lower_ras, truth.side, level=truth.level)
    # Within 2% (measured +1.0% and +0.5%), half the 4% target.
    assert result.measurement.vbv_cm3 == pytest.approx(truth.vbv_cm3, rel=0.02)
    dice = (
        2.0
        * np.count_nonzero(result.body_mask & phantom.body_mask)
        / (np.count_nonzero(result.body_mask) + np.count_nonzero(phantom.body_mask))
    )
    assert dice >= 0.97


@pytest.mark.parametrize("faint", [True, False], ids=["faint-cortex", "normal-cortex"])
def test_a_pit_round_the_axis_inward_of_the_marked_point_is_left_out_of_a_faint_dish(faint):
    # An upper face dished 6 frame slices (3 mm) deep, marked at its floor on the axis (frame
    # slice 20), whose shell's iso-surface sank 6 slices further in within 10 px (5 mm) of the
    # axis: the slice at frame slice 17 cuts that pit's walls, 1.5 mm inward of the point. The
    # body's own face is terraced: each column's face is the first CT slice beyond the dish (frame
    # slices 21, 25 or 29). Under a faint cortex the pit is where the floor lay between the CT's
    # slices: fitted without its contour, the inner columns take the dish to within half a frame
    # slice. Under a normal cortex a pit is a Schmorl node's and its contour is kept: the fit is
    # pulled off the dish by up to 3.5 slices.
    depth = 40
    present = RADIUS_PX <= 28
    dish = dish_face(np.minimum(RADIUS_PX, 25.0))
    iso = np.where(RADIUS_PX < 10.0, dish - 6.0, dish)
    z = np.arange(depth)[:, None, None]
    enclosed = present[None] & (z >= 2) & (z + 0.5 <= iso[None])
    terraced = 1.0 + 4.0 * np.ceil((dish - 1.0) / 4.0)
    body, fill = body_from_face_positions(present, np.full((GRID, GRID), 1.5), terraced, depth)
    slices = CtSlicePositions(start=np.full((GRID, GRID), -0.25), per_slice=np.full((GRID, GRID), 0.25))

    fitted, fitted_fill, moved = dished_faces_on_contours(
        enclosed, body, fill, (1.5, 20.0), slices, 0.0, 3, 4.0, 0.5, faint=faint
    )

    assert moved == (False, True)
    _, _, upper = face_positions(fitted, fitted_fill)
    _, _, own = face_positions(body, fill)
    # The inner columns whose terrace lies within a terrace's reach of the dish (those just past a
    # slice's plane lie a whole slice out, at the limit, and keep theirs).
    taking = (RADIUS_PX <= 22) & (np.abs(own - dish) < 3.5)
    assert taking.sum() >= 0.85 * (RADIUS_PX <= 22).sum()
    assert np.abs(own[taking] - dish[taking]).max() >= 3.0
    worst = np.abs(upper[taking] - dish[taking]).max()
    assert worst <= 0.5 if faint else worst >= 3.0
