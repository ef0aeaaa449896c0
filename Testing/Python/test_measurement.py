"""Measuring given masks: exact voxel counts and a brute-force per-voxel plane test."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.measurement import measure_masks
from CementLeakageLib.parameters import MeasurementParameters


def rotation(angles_deg: tuple[float, float, float]) -> np.ndarray:
    """Rotation matrix from angles about x, y and z (degrees)."""
    ax, ay, az = np.radians(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


GRIDS = {
    "axial": np.eye(3),
    "oblique": rotation((17.0, -11.0, 23.0)),
    "flipped": np.diag([-1.0, -1.0, 1.0]),
    "flipped-k": np.diag([1.0, -1.0, -1.0]),
}


def make_grid(kind: str, shape=(24, 30, 28), spacing=(0.7, 0.9, 1.3)) -> VolumeGeometry:
    centre_ijk = np.array(shape[::-1]) / 2.0
    directions = GRIDS[kind]
    origin = -(directions @ np.diag(spacing)) @ centre_ijk + np.array([3.0, -5.0, 7.0])
    return VolumeGeometry.from_origin_spacing_directions(origin, spacing, directions, shape)


def random_masks(shape, seed):
    rng = np.random.default_rng(seed)
    body = np.zeros(shape, dtype=bool)
    body[3:-3, 4:-4, 4:-4] = rng.random((shape[0] - 6, shape[1] - 8, shape[2] - 8)) < 0.8
    cement = rng.random(shape) < 0.25
    return body, cement


def brute_force(body, cement, matrix, upper, lower, side):
    """Per-voxel loop with its own arithmetic: returns the voxel counts of the body and of the
    cement in it, and the puncture side's share of that cement (voxels): each voxel counts by the
    part of its extent along the plane's normal that lies beyond the plane."""
    axis = [upper[n] - lower[n] for n in range(3)]
    normal = [axis[1] * 0 - axis[2] * 1, axis[2] * 0 - axis[0] * 0, axis[0] * 1 - axis[1] * 0]
    length = sum(v * v for v in normal) ** 0.5
    normal = [v / length for v in normal]
    if (side == "left") == (normal[0] > 0):
        normal = [-v for v in normal]
    midpoint = [(upper[n] + lower[n]) / 2 for n in range(3)]
    extent = sum(abs(sum(matrix[r][c] * normal[r] for r in range(3))) for c in range(3))
    n_body = n_cement = 0
    n_side = 0.0
    nk, nj, ni = body.shape
    for k, j, i in itertools.product(range(nk), range(nj), range(ni)):
        if not body[k, j, i]:
            continue
        n_body += 1
        if not cement[k, j, i]:
            continue
        n_cement += 1
        ras = [matrix[r][0] * i + matrix[r][1] * j + matrix[r][2] * k + matrix[r][3] for r in range(3)]
        distance = sum((ras[n] - midpoint[n]) * normal[n] for n in range(3))
        n_side += min(1.0, max(0.0, 0.5 + distance / extent))
    return n_body, n_cement, n_side


@pytest.mark.parametrize("kind", sorted(GRIDS))
@pytest.mark.parametrize("side", ["left", "right"])
def test_volumes_equal_voxel_counts_and_psbcv_equals_brute_force(kind, side):
    geometry = make_grid(kind)
    body, cement = random_masks(geometry.shape, seed=len(kind))
    upper = np.array([4.0, -3.0, 15.0])
    lower = np.array([1.5, -6.0, -0.5])
    result = measure_masks(body, cement, geometry, upper, lower, side, level="L1")

    n_body, n_cement, share = brute_force(body, cement, geometry.ijk_to_ras.tolist(), upper, lower, side)
    n_side = round(share)
    voxel_mm3 = float(np.prod([0.7, 0.9, 1.3]))
    assert result.body_voxels == n_body
    assert result.cement_in_body_voxels == n_cement
    assert result.puncture_side_cement_voxels == n_side
    assert 0 < n_side < n_cement
    assert result.vbv_cm3 == pytest.approx(n_body * voxel_mm3 / 1000, abs=1e-9)
    assert result.bcv_cm3 == pytest.approx(n_cement * voxel_mm3 / 1000, abs=1e-9)
    assert result.psbcv_cm3 == pytest.approx(n_side * voxel_mm3 / 1000, abs=1e-9)
    assert result.extravertebral_cement_cm3 == pytest.approx(
        (cement.sum() - n_cement) * voxel_mm3 / 1000, abs=1e-9
    )
    assert result.psbcv_vbv_pct == pytest.approx(100 * n_side / n_body, abs=1e-9)
    assert result.bcv_vbv_pct == pytest.approx(100 * n_cement / n_body, abs=1e-9)


def test_left_and_right_puncture_sides_partition_the_cement_in_the_body():
    geometry = make_grid("oblique")
    body, cement = random_masks(geometry.shape, seed=5)
    upper, lower = np.array([0.0, 0.0, 12.0]), np.array([0.0, 0.0, -12.0])
    left = measure_masks(body, cement, geometry, upper, lower, "left")
    right = measure_masks(body, cement, geometry, upper, lower, "right")
    # Each side takes its share of every voxel the plane cuts, rounded once per side.
    both = left.puncture_side_cement_voxels + right.puncture_side_cement_voxels
    assert abs(both - left.cement_in_body_voxels) <= 1


@pytest.mark.parametrize("offset_voxels", [0.0, 0.3, -0.45])
@pytest.mark.parametrize("side", ["left", "right"])
def test_psbcv_of_a_block_cut_by_the_plane_is_its_analytic_part(offset_voxels, side):
    # A block of cement 21 columns wide (R), cut by the split plane at column 20's centre plus
    # an offset: the part beyond the plane is 10.5 columns minus or plus the offset, exactly.
    # Counted by voxel centres, a plane through column 20's centres (offset 0) would put the
    # whole column on one side (10 or 11 columns: -4.8% or +4.8%).
    spacing = (0.6, 0.6, 1.25)
    geometry = VolumeGeometry.from_origin_spacing_directions(np.zeros(3), spacing, np.eye(3), (12, 20, 40))
    body = np.zeros(geometry.shape, dtype=bool)
    body[1:11, 2:18, 2:38] = True
    cement = np.zeros(geometry.shape, dtype=bool)
    cement[2:10, 4:16, 10:31] = True  # columns i = 10 to 30, 8 x 12 voxels each
    plane_r = (20.0 + offset_voxels) * spacing[0]
    upper, lower = np.array([plane_r, 6.0, 11.0]), np.array([plane_r, 6.0, 2.0])
    result = measure_masks(body, cement, geometry, upper, lower, side)
    beyond = 30.5 - (20.0 + offset_voxels) if side == "right" else (20.0 + offset_voxels) - 9.5
    assert result.puncture_side_cement_voxels == round(beyond * 8 * 12)
    assert result.psbcv_cm3 == pytest.approx(
        beyond * 8 * 12 * float(np.prod(spacing)) / 1000.0, abs=0.5 * float(np.prod(spacing)) / 1000.0
    )


def test_flag_is_strictly_above_the_cutoff_and_cutoff_is_a_parameter():
    geometry = VolumeGeometry(np.eye(4), (10, 10, 10))
    body = np.zeros(geometry.shape, dtype=bool)
    body[:, :, :] = True  # 1000 voxels, plane at i = 4.5 for points at R = 4.5
    cement = np.zeros(geometry.shape, dtype=bool)
    cement[0, 0, :2] = True  # 2 voxels at R = 0, 1: patient left of the plane (smaller R)
    upper, lower = np.array([4.5, 4.0, 9.0]), np.array([4.5, 4.0, 0.0])
    at_cutoff = measure_masks(
        body, cement, geometry, upper, lower, "left", parameters=MeasurementParameters(cutoff_pct=0.2)
    )
    assert at_cutoff.psbcv_vbv_pct == pytest.approx(0.2, abs=1e-12)
    assert at_cutoff.exceeds_cutoff is False
    below = measure_masks(
        body, cement, geometry, upper, lower, "left", parameters=MeasurementParameters(cutoff_pct=0.19)
    )
    assert below.exceeds_cutoff is True
    right = measure_masks(body, cement, geometry, upper, lower, "right")
    assert right.psbcv_cm3 == 0.0


@pytest.mark.parametrize(
    ("cutoff_pct", "near"),
    [(14.0, True), (14.5, True), (13.5, True), (14.51, False), (13.49, False), (10.0, False)],
)
def test_a_ratio_within_half_a_point_of_the_cutoff_is_near_it_with_a_warning(cutoff_pct, near):
    geometry = VolumeGeometry(np.eye(4), (10, 10, 10))
    body = np.ones(geometry.shape, dtype=bool)
    cement = np.zeros(geometry.shape, dtype=bool)
    cement[:, :, 0] = True
    cement[:4, :, 1] = True  # 140 voxels left of the plane at R = 4.5: PSBCV/VBV 14.0%
    cement[:8, :, 9] = True  # 80 voxels right of it
    upper, lower = np.array([4.5, 4.0, 9.0]), np.array([4.5, 4.0, 0.0])
    measured = measure_masks(
        body, cement, geometry, upper, lower, "left", parameters=MeasurementParameters(cutoff_pct=cutoff_pct)
    )
    assert measured.psbcv_vbv_pct == pytest.approx(14.0, abs=1e-12)
    assert measured.near_cutoff is near
    assert any("may fall either way" in warning for warning in measured.warnings) is near
    assert measured.exceeds_cutoff is (14.0 > cutoff_pct)


@pytest.mark.parametrize(
    ("cutoff_pct", "unseen_dish_share", "near"),
    [
        (13.48, None, False),  # 0.52 points above: outside the band, no dishes estimated
        (13.48, 0.039, False),  # 14.0 / 1.039 = 13.47 would fall, but a share under 4% is not named
        (13.48, 0.04, True),  # 14.0 / 1.04 = 13.46, under the cut-off
        (13.0, 0.07, False),  # 13.08: above the cut-off whatever the dishes hold
        (13.0, 0.08, True),  # 12.96
        (15.0, 0.2, False),  # under the cut-off: left-out dishes only lower the ratio
    ],
)
def test_a_flag_that_unseen_dishes_could_lower_below_the_cutoff_is_near_it(
    cutoff_pct, unseen_dish_share, near
):
    geometry = VolumeGeometry(np.eye(4), (10, 10, 10))
    body = np.ones(geometry.shape, dtype=bool)
    cement = np.zeros(geometry.shape, dtype=bool)
    cement[:, :, 0] = True
    cement[:4, :, 1] = True  # 140 voxels left of the plane at R = 4.5: PSBCV/VBV 14.0%
    upper, lower = np.array([4.5, 4.0, 9.0]), np.array([4.5, 4.0, 0.0])
    measured = measure_masks(
        body,
        cement,
        geometry,
        upper,
        lower,
        "left",
        parameters=MeasurementParameters(cutoff_pct=cutoff_pct),
        unseen_dish_share=unseen_dish_share,
    )
    assert measured.near_cutoff is near
    lowest = [warning for warning in measured.warnings if "could be" in warning]
    assert len(lowest) == int(near)
    if near:
        assert f"could be {14.0 / (1.0 + unseen_dish_share):.2f}%" in lowest[0]


def test_no_cement_gives_zero_bcv_and_a_warning():
    geometry = make_grid("axial")
    body, _ = random_masks(geometry.shape, seed=1)
    result = measure_masks(
        body, np.zeros_like(body), geometry, np.array([3.0, -5.0, 15.0]), np.array([3.0, -5.0, 0.0]), "left"
    )
    assert result.bcv_cm3 == 0.0 and result.psbcv_vbv_pct == 0.0 and result.exceeds_cutoff is False
    assert any("no cement" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("upper", "lower", "side", "phrase"),
    [
        ((0, 0, 10), (0, 0, 7), "left", "apart"),
        ((0, 0, 10), (0, 0, 10), "left", "apart"),
        ((0, 10, 0), (0, -10, 0), "left", "anterior-posterior"),
        ((0, 0, 10), (0, 0, -10), "middle", "puncture side"),
        ((0, 0, np.nan), (0, 0, -10), "left", "finite"),
        ((60, 0, 10), (60, 0, -10), "left", "misses the vertebral body"),
    ],
)
def test_bad_points_and_sides_raise_clear_errors(upper, lower, side, phrase):
    geometry = make_grid("axial")
    body, cement = random_masks(geometry.shape, seed=2)
    with pytest.raises(CementLeakageError, match=phrase):
        measure_masks(body, cement, geometry, np.array(upper, float), np.array(lower, float), side)


def test_empty_body_and_mismatched_masks_raise():
    geometry = make_grid("axial")
    body, cement = random_masks(geometry.shape, seed=3)
    upper, lower = np.array([3.0, -5.0, 15.0]), np.array([3.0, -5.0, 0.0])
    with pytest.raises(CementLeakageError, match="body mask is empty"):
        measure_masks(np.zeros_like(body), cement, geometry, upper, lower, "left")
    with pytest.raises(CementLeakageError, match="shape"):
        measure_masks(body[:-1], cement, geometry, upper, lower, "left")


@pytest.mark.parametrize("kind", sorted(GRIDS))
def test_a_ras_direction_along_the_array_axes_gives_the_heights_of_the_voxel_centres(kind):
    # Heights along a RAS direction, from the voxel centres' RAS positions, equal those from the
    # array's indices times the spacing along the direction in the array's axes (k, j, i in mm),
    # up to one constant (the origin's height): oblique and flipped grids alike.
    geometry = make_grid(kind)
    direction_ras = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    kji = np.argwhere(np.ones(geometry.shape, dtype=bool))[::37]
    from_ras = geometry.voxel_centers_ras(tuple(kji.T)) @ direction_ras
    spacing_kji = geometry.spacing_mm[::-1]
    from_array = (kji * spacing_kji) @ geometry.direction_kji(direction_ras)
    assert np.linalg.norm(geometry.direction_kji(direction_ras)) == pytest.approx(1.0, abs=1e-12)
    assert np.ptp(from_ras - from_array) == pytest.approx(0.0, abs=1e-9)
