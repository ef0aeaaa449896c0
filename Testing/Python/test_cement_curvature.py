"""The bolus' curvature loss against analytic volumes: balls, two overlapping balls and layers of
cement, painted on a fine grid, blurred by 0.6 mm (a CT's point spread) and averaged onto voxels
(partial volume; on thick slices the slice profile), measured with and without the correction;
a layer thinner than the blur and cement the CT's scale clips are left uncorrected.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from CementLeakageLib import cement_segmentation
from CementLeakageLib.cement_curvature import (
    CURVATURE_LOSS_LIMIT,
    add_lost_volume,
    blur_sigmas_mm,
    curvature_loss_fraction,
)
from CementLeakageLib.cement_segmentation import (
    cement_edge_level,
    cement_reference_hu,
    segment_cement,
    threshold_cement,
)
from CementLeakageLib.cement_slice_ends import BONE_QUANTILE
from CementLeakageLib.parameters import MeasurementParameters

BONE_HU = 110.0
CEMENT_HU = 2700.0
FINE_STEPS = 4
"""Fine-grid points per voxel along each axis."""
OFF_GRID_MM = (0.13, -0.21, 0.37)
"""Shift (mm, k j i) of the shapes off the grid's symmetry."""

SPACINGS_MM = [(0.5, 0.5, 0.5), (0.7, 0.7, 1.25), (0.6, 0.6, 2.0)]
SPACING_IDS = ["0.5 mm voxels", "1.25 mm slices", "2 mm slices"]


def on_voxels(
    inside,
    extent_mm: float,
    spacing_mm: tuple[float, float, float],
    top_hu: float = 3071.0,
    cement_hu: float = CEMENT_HU,
    blur_mm: float = 0.6,
) -> np.ndarray:
    """HU ``[k, j, i]`` of a cube of ``extent_mm`` on voxels of ``spacing_mm`` (i j k): cement where
    ``inside(z, y, x)`` (mm from the centre, shifted by ``OFF_GRID_MM``) in bone, painted on a grid
    ``FINE_STEPS`` times finer, blurred by ``blur_mm`` (SD), averaged onto the voxels, stored up to
    ``top_hu``."""
    counts = [int(round(extent_mm / step)) for step in spacing_mm[::-1]]  # k, j, i
    axes = [
        (np.arange(n * FINE_STEPS) + 0.5) * step / FINE_STEPS - n * step / 2 - shift
        for n, step, shift in zip(counts, spacing_mm[::-1], OFF_GRID_MM)
    ]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    hu = np.where(inside(z, y, x), np.float32(cement_hu), np.float32(BONE_HU)).astype(np.float32)
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing([step / FINE_STEPS for step in spacing_mm])
    blurred = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(image, blur_mm))
    blocks = blurred.reshape(counts[0], FINE_STEPS, counts[1], FINE_STEPS, counts[2], FINE_STEPS)
    return np.minimum(blocks.mean(axis=(1, 3, 5)), top_hu)


def ball(radius_mm: float, centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    cz, cy, cx = centre_mm
    return lambda z, y, x: (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= radius_mm**2


def ball_mm3(radius_mm: float) -> float:
    return 4.0 / 3.0 * np.pi * radius_mm**3


def two_balls_mm3(radius_mm: float, distance_mm: float) -> float:
    """Volume (mm³) of the union of two balls of ``radius_mm`` whose centres lie ``distance_mm`` apart."""
    r, d = radius_mm, distance_mm
    lens = np.pi * (2 * r - d) ** 2 * (d**2 + 4 * d * r) / (12 * d)
    return 2 * ball_mm3(r) - lens


def half_maximum_mm3(hu: np.ndarray, spacing_mm, cement_hu: float = CEMENT_HU) -> float:
    """Volume (mm³) at or above halfway between the cement and the bone: no correction."""
    return float(np.count_nonzero(hu >= 0.5 * (cement_hu + BONE_HU)) * np.prod(spacing_mm))


def largest_piece_mm3(mask: np.ndarray, spacing_mm) -> float:
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    return float(np.bincount(labels.ravel())[1:].max() * np.prod(spacing_mm))


@pytest.mark.parametrize(
    "spacing_mm, tolerance",
    [((0.5, 0.5, 0.5), 0.006), ((0.7, 0.7, 1.25), 0.006), ((0.6, 0.6, 2.0), 0.02)],
    ids=SPACING_IDS,
)
@pytest.mark.parametrize("radius_mm", [7.0, 10.0])
def test_a_ball_of_cement_gets_back_the_volume_its_blur_took(radius_mm, spacing_mm, tolerance):
    # At half maximum a ball of 7 mm loses 2.1-2.5% and one of 10 mm 0.9-1.2%; corrected, they
    # come within 0.5% (measured -0.4% to -0.1%), and within 2% on 2 mm slices, where placing
    # the faces within the slices takes a little more (-1.4% and -0.6%).
    hu = on_voxels(ball(radius_mm), 2 * radius_mm + 8.0, spacing_mm)
    spacing = np.array(spacing_mm)
    truth = ball_mm3(radius_mm)
    mask = segment_cement(hu, MeasurementParameters(), spacing).mask
    corrected = mask.sum() * np.prod(spacing)
    plain = half_maximum_mm3(hu, spacing)
    assert plain < (1.0 - 0.008) * truth
    assert corrected == pytest.approx(truth, rel=tolerance)
    assert abs(corrected - truth) < abs(plain - truth)


def test_on_an_extended_scale_the_ball_is_corrected_alike():
    # Cement at 3450 HU stored up to 6000 HU: the level lies above 1500 HU (1780 HU); at half
    # maximum the ball of 8 mm loses 1.7%, corrected it is within 0.5% (measured +0.04%).
    hu = on_voxels(ball(8.0), 24.0, (0.5, 0.5, 0.5), top_hu=6000.0, cement_hu=3450.0)
    parameters = MeasurementParameters(cement_max_hu=6000.0)
    mask = segment_cement(hu, parameters, np.array([0.5, 0.5, 0.5])).mask
    assert half_maximum_mm3(hu, (0.5, 0.5, 0.5), 3450.0) < 0.99 * ball_mm3(8.0)
    assert mask.sum() * 0.125 == pytest.approx(ball_mm3(8.0), rel=0.005)


@pytest.mark.parametrize("radius_mm", [7.0, 10.0])
def test_the_loss_estimate_follows_the_first_order_law(radius_mm):
    # A ball of radius R blurred by sigma loses about 3 sigma² / R² at half maximum (2.3% and
    # 1.1% here); the estimate from blurring once more: 2.0% and 1.0%.
    spacing = np.array([0.5, 0.5, 0.5])
    hu = on_voxels(ball(radius_mm), 2 * radius_mm + 8.0, (0.5, 0.5, 0.5))
    level = 0.5 * (CEMENT_HU + BONE_HU)
    loss = curvature_loss_fraction(hu, np.ones(hu.shape, dtype=bool), level, spacing)
    first_order = 3.0 * blur_sigmas_mm(spacing)[0] ** 2 / radius_mm**2
    assert loss == pytest.approx(first_order, rel=0.2)


@pytest.mark.parametrize("distance_mm", [9.0, 10.0])
def test_two_overlapping_balls_keep_their_union_volume(distance_mm):
    # Two balls of 6 mm whose centres lie 9 or 10 mm apart (a low fill's two blobs meeting): the
    # waist between them gains at half maximum while the rest loses (-2.5% together); corrected,
    # the union is within 1% (measured -0.7%).
    spacing_mm = (0.5, 0.5, 0.5)
    apart = distance_mm / 2.0

    def both(z, y, x):
        return ball(6.0, (-apart, 0.0, 0.0))(z, y, x) | ball(6.0, (apart, 0.0, 0.0))(z, y, x)

    hu = on_voxels(both, 12.0 + distance_mm + 8.0, spacing_mm)
    truth = two_balls_mm3(6.0, distance_mm)
    mask = segment_cement(hu, MeasurementParameters(), np.array(spacing_mm)).mask
    assert half_maximum_mm3(hu, spacing_mm) < 0.98 * truth
    assert mask.sum() * 0.125 == pytest.approx(truth, rel=0.01)


def layer_and_ball(thickness_mm: float):
    """A square layer 24 x 24 mm of ``thickness_mm`` (the largest piece) 4 mm below the centre, and
    a ball of 4 mm 8 mm above it, whose interior tells the cement's intensity."""

    def inside(z, y, x):
        layer = (np.abs(z + 4.0) <= thickness_mm / 2) & (np.abs(x) <= 12.0) & (np.abs(y) <= 12.0)
        return layer | ball(4.0, (8.0, 0.0, 0.0))(z, y, x)

    return inside


@pytest.mark.parametrize(
    "thickness_mm, spacing_mm",
    [(2.0, (0.5, 0.5, 0.5)), (2.0, (0.6, 0.6, 1.0)), (3.0, (0.6, 0.6, 2.0))],
    ids=["2 mm on 0.5 mm voxels", "2 mm on 1 mm slices", "3 mm on 2 mm slices"],
)
def test_a_layer_a_little_thicker_than_the_blur_is_measured_at_the_cement_half_maximum(
    thickness_mm, spacing_mm
):
    # The layer's peak stays under the cement's intensity, and a level halfway from its own core
    # lies too low (+21% to +30%, as before the correction). Halfway from the ball's cement and
    # corrected: -0.7%, -1.6% and +1.5%.
    hu = on_voxels(layer_and_ball(thickness_mm), 32.0, spacing_mm)
    mask = segment_cement(hu, MeasurementParameters(), np.array(spacing_mm)).mask
    assert largest_piece_mm3(mask, spacing_mm) == pytest.approx(24.0 * 24.0 * thickness_mm, rel=0.05)


def test_a_layer_thinner_than_the_blur_keeps_the_level_of_its_own_core(monkeypatch):
    # A 1.2 mm layer: a further blur takes 56% of it, beyond CURVATURE_LOSS_LIMIT, where the
    # first-order estimate no longer holds; its mask is the one without any correction.
    spacing = np.array([0.5, 0.5, 0.5])
    hu = on_voxels(layer_and_ball(1.2), 32.0, (0.5, 0.5, 0.5))
    labels, _ = ndimage.label(threshold_cement(hu, MeasurementParameters()))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    layer = labels == int(np.argmax(sizes))
    level = cement_edge_level(
        hu,
        layer,
        MeasurementParameters(),
        2,
        cement_hu=cement_reference_hu(hu, labels),
        background_quantile=BONE_QUANTILE,
    )
    near = ndimage.binary_dilation(layer, iterations=2) & ((labels == 0) | layer)
    assert curvature_loss_fraction(hu, near, level, spacing) > CURVATURE_LOSS_LIMIT
    mask = segment_cement(hu, MeasurementParameters(), spacing).mask
    monkeypatch.setattr(cement_segmentation, "CURVATURE_MIN_VOXELS", np.iinfo(np.int64).max)
    uncorrected = segment_cement(hu, MeasurementParameters(), spacing).mask
    assert np.array_equal(mask, uncorrected)


def test_lost_volume_is_added_from_the_brightest_voxels_touching_the_piece():
    # A 10-voxel cube (1000 voxels) in a ramp of intensity along i; a second piece touches its
    # brightest face and one voxel there lies above the top of the scale.
    hu = np.tile(np.arange(20, dtype=np.float32) * 100.0, (20, 20, 1))
    labels = np.zeros(hu.shape, dtype=np.int32)
    labels[5:15, 5:15, 5:15] = 1
    labels[5:15, 5:15, 15] = 2
    hu[4, 4, 4] = 5000.0
    grown = add_lost_volume(hu, labels, 1, 0.05, 3071.0)
    added = (grown == 1) & (labels != 1)
    assert np.count_nonzero(added) == 50
    assert np.array_equal(grown == 2, labels == 2)
    assert not added[4, 4, 4]
    touching = ndimage.binary_dilation(labels == 1, structure=np.ones((3, 3, 3)))
    assert touching[added].all()
    free = touching & (labels == 0) & (hu <= 3071.0)
    assert hu[added].min() >= np.sort(hu[free])[-50]
    assert np.array_equal(add_lost_volume(hu, labels, 1, 0.0, 3071.0), labels)


def test_cement_clipped_by_the_scale_is_left_uncorrected(monkeypatch):
    # Cement of 4000 HU stored on the usual scale (up to 3071 HU): its interior reads 3071 HU, its
    # half maximum (2055 HU) is unknown and the 1500 HU level lies outside it (+7.5% on a ball of
    # 7 mm); no blur correction is added on top of that.
    spacing = np.array([0.5, 0.5, 0.5])
    hu = on_voxels(ball(7.0), 22.0, (0.5, 0.5, 0.5), cement_hu=4000.0)
    mask = segment_cement(hu, MeasurementParameters(), spacing).mask
    monkeypatch.setattr(cement_segmentation, "CURVATURE_MIN_VOXELS", np.iinfo(np.int64).max)
    uncorrected = segment_cement(hu, MeasurementParameters(), spacing).mask
    assert np.array_equal(mask, uncorrected)
    assert mask.sum() * 0.125 > 1.05 * ball_mm3(7.0)


@pytest.mark.parametrize("spacing_mm", [(0.5, 0.5, 0.5), (0.7, 0.7, 1.25)], ids=SPACING_IDS[:2])
@pytest.mark.parametrize("blur_mm, tolerance", [(0.75, 0.01), (0.9, 0.025)])
def test_a_softer_kernel_is_corrected_with_the_blur_measured_on_the_bolus(
    blur_mm, tolerance, spacing_mm, monkeypatch
):
    # A ball of 7 mm from a softer kernel: with the blur measured on its edges (0.76 and 0.90 mm)
    # the corrected volume is within 0.9% and 2.2% (measured); with the standard kernel's 0.6 mm
    # assumed instead, 1.9-2.3% and 4.8-5.6% short. (With the cement's intensity read one voxel
    # in from the edge, 11-43 HU under the 2700 HU painted, the level lay lower: within 0.6% and
    # 1.9%.)
    hu = on_voxels(ball(7.0), 22.0, spacing_mm, blur_mm=blur_mm)
    spacing = np.array(spacing_mm)
    truth = ball_mm3(7.0)
    found = segment_cement(hu, MeasurementParameters(), spacing)
    assert found.blur_sigma_mm == pytest.approx(blur_mm, abs=0.03)
    measured_error = found.mask.sum() * np.prod(spacing) / truth - 1.0
    monkeypatch.setattr(cement_segmentation, "_blur_of_bolus", lambda *arguments: None)
    assumed = segment_cement(hu, MeasurementParameters(), spacing)
    assert assumed.blur_sigma_mm is None
    assumed_error = assumed.mask.sum() * np.prod(spacing) / truth - 1.0
    assert abs(measured_error) <= tolerance
    assert abs(measured_error) < abs(assumed_error) - 0.01
