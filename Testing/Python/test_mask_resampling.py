"""Masks on thick CT slices keep the volume of what they hold: a box whose faces fall inside a
2 mm slice, or inside a fine voxel (end voxels keeping a share of themselves), and a thin cement
layer, against their analytic volumes."""

from __future__ import annotations

import numpy as np
import pytest

from CementLeakageLib.cement_segmentation import segment_cement
from CementLeakageLib.endplate_faces import FaceFill, face_occupancy
from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.mask_resampling import coverage_along_axis, coverage_on, volume_preserving_mask
from CementLeakageLib.parameters import MeasurementParameters


def grid(spacing_mm, shape, origin_ras=(0.0, 0.0, 0.0)) -> VolumeGeometry:
    matrix = np.eye(4)
    matrix[:3, :3] = np.diag(spacing_mm)
    matrix[:3, 3] = origin_ras
    return VolumeGeometry(matrix, shape)


def fine_box(fine: VolumeGeometry, low_mm, high_mm) -> np.ndarray:
    """Voxels of ``fine`` whose centres lie in the box [low, high) (RAS mm)."""
    k, j, i = np.indices(fine.shape)
    centres = fine.ijk_to_ras_points(np.column_stack([i.ravel(), j.ravel(), k.ravel()]))
    inside = np.all((centres >= low_mm) & (centres < high_mm), axis=1)
    return inside.reshape(fine.shape)


@pytest.mark.parametrize("face_offset_mm", [0.0, 0.5, 1.0, 1.5])
def test_box_on_thick_slices_keeps_its_volume(face_offset_mm):
    # Fine grid: 0.5 mm voxels with faces at multiples of 0.5 mm; coarse: 1 x 1 x 2 mm voxels
    # whose slices span [2n - 1, 2n + 1) mm along S.
    fine = grid((0.5, 0.5, 0.5), (80, 60, 60), origin_ras=(0.25, 0.25, 0.25))
    coarse = grid((1.0, 1.0, 2.0), (20, 30, 30))
    low = np.array([5.0, 5.0, 10.0 + face_offset_mm])
    high = np.array([25.0, 25.0, 30.0 + face_offset_mm])
    mask = fine_box(fine, low, high)
    box_mm3 = float(np.prod(high - low))
    assert mask.sum() * fine.voxel_volume_mm3 == pytest.approx(box_mm3)

    coverage = coverage_on(mask, fine, coarse)
    allowed = np.ones(coarse.shape, dtype=bool)
    distance = np.zeros(coarse.shape, dtype=np.float32)
    result = volume_preserving_mask(coverage, box_mm3, coarse.voxel_volume_mm3, allowed, distance)
    # The coarse mask's own count gives the box's volume to within one voxel (2 mm³ of 8000).
    assert abs(result.sum() * coarse.voxel_volume_mm3 - box_mm3) <= coarse.voxel_volume_mm3
    # A face inside a slice is covered by the fraction of the slice it leaves inside.
    face_slice = int(np.floor((low[2] + 1.0) / 2.0))
    inside_fraction = ((2.0 * face_slice + 1.0) - low[2]) / 2.0
    assert coverage[face_slice, 15, 15] == pytest.approx(min(inside_fraction, 1.0), abs=0.01)


@pytest.mark.parametrize("sample_spacing_mm", [0.5, 0.25])
@pytest.mark.parametrize(("fill", "height_mm"), [(FaceFill(1.0, 1.0), 20.0), (FaceFill(0.3, 0.6), 19.45)])
def test_faces_within_a_fine_voxel_keep_their_volume_on_thick_slices(fill, height_mm, sample_spacing_mm):
    # A 20 x 20 mm box on 0.5 mm voxels from 10 to 30 mm along S, its end voxels keeping 0.3 and
    # 0.6 of themselves: faces at 10.35 and 29.8 mm. On 2 mm slices each voxel is sampled every
    # ``sample_spacing_mm`` along S, so one grid sees a face to within a sample; over grids
    # shifted through 0.5 mm (every 0.05 mm, never putting a sample on a face) the covered volume
    # averages to the box's.
    fine = grid((0.5, 0.5, 0.5), (80, 60, 60), origin_ras=(0.25, 0.25, 0.25))
    occupancy = face_occupancy(fine_box(fine, (5.0, 5.0, 10.0), (25.0, 25.0, 30.0)), fill)
    volumes = []
    for shift_mm in (np.arange(10) + 0.3) * 0.05:
        coarse = grid((1.0, 1.0, 2.0), (20, 30, 30), origin_ras=(0.5, 0.5, shift_mm))
        coverage = coverage_on(occupancy, fine, coarse, sample_spacing_mm)
        volumes.append(float(coverage.sum()) * coarse.voxel_volume_mm3)
    assert np.mean(volumes) == pytest.approx(400.0 * height_mm, abs=0.5)  # mm³
    # Each grid on its own is within half a sample spacing at each face.
    assert np.all(np.abs(np.array(volumes) - 400.0 * height_mm) <= 400.0 * sample_spacing_mm)


def test_ties_go_to_the_centre_first():
    coverage = np.zeros((1, 1, 9), dtype=np.float32)
    coverage[0, 0, :] = 0.5
    distance = np.abs(np.arange(9, dtype=np.float32) - 4.0)[None, None, :]
    allowed = np.ones(coverage.shape, dtype=bool)
    result = volume_preserving_mask(coverage, 3.0, 1.0, allowed, distance)
    assert np.flatnonzero(result[0, 0]).tolist() == [3, 4, 5]


def test_voxels_outside_the_allowed_region_are_never_taken():
    coverage = np.ones((1, 1, 4), dtype=np.float32)
    allowed = np.array([[[True, True, False, False]]])
    result = volume_preserving_mask(coverage, 4.0, 1.0, allowed, np.zeros(coverage.shape, np.float32))
    assert result[0, 0].tolist() == [True, True, False, False]


def test_coverage_along_slices_finds_a_crossing_within_a_slice():
    # Along k: 0, 1000, 3000, 3000 HU on 2 mm slices. Interpolated, 1500 HU is crossed a quarter
    # of the way from slice 1 to slice 2, so a quarter of slice 1's thickness lies above it.
    values = np.array([0.0, 1000.0, 3000.0, 3000.0])[:, None, None]
    coverage = coverage_along_axis(values, 1500.0, 3071.0, 0, 2.0)
    assert coverage[:, 0, 0].tolist() == pytest.approx([0.0, 0.25, 1.0, 1.0])


def test_thin_cement_layer_on_thick_slices_is_placed_within_the_slices():
    """A 3 mm cement layer (2700 HU in 100 HU) on 2 mm slices, each slice the mean over its
    thickness, at five positions within a slice. Whole voxels at 1500 HU make the layer 2 or 4
    mm thick (33% off every time); placed within the slices, the layer is right at one of the
    positions, 3% and 7% off at two more and 12.5% off on average (its ends from the cement they
    hold inside its rim, as for a bolus of 300 core voxels or more, 400 here; 17% without),
    never further off than whole voxels."""
    parameters = MeasurementParameters()
    spacing = 2.0
    errors_whole, errors_placed = [], []
    for low in (10.0, 10.4, 10.8, 11.3, 11.7):
        high = low + 3.0
        k = np.arange(16)
        inside = np.clip(np.minimum(k * spacing + 1.0, high) - np.maximum(k * spacing - 1.0, low), 0.0, None)
        hu = np.full((16, 30, 30), 100.0, dtype=np.float32)
        hu[:, 5:25, 5:25] = (100.0 + 2600.0 * inside / spacing)[:, None, None]
        truth_mm3 = 20 * 20 * 0.25 * 3.0
        voxel_mm3 = 0.25 * spacing
        whole = segment_cement(hu, parameters).mask
        placed = segment_cement(hu, parameters, np.array([0.5, 0.5, spacing])).mask
        errors_whole.append(abs(whole.sum() * voxel_mm3 / truth_mm3 - 1.0))
        errors_placed.append(abs(placed.sum() * voxel_mm3 / truth_mm3 - 1.0))
    assert np.mean(errors_whole) == pytest.approx(1.0 / 3.0, abs=0.01)
    assert np.mean(errors_placed) == pytest.approx(0.125, abs=0.01)
    assert sorted(errors_placed)[:3] == pytest.approx([0.0, 1.0 / 30.0, 1.0 / 15.0], abs=1e-3)
    assert all(p <= w + 1e-9 for p, w in zip(errors_placed, errors_whole))
