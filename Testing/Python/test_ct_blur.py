"""The CT's blur measured on a cement bolus's edges (:mod:`ct_blur`), against the blur a
synthetic bolus was rendered with: a ball of cement in bone, blurred by a Gaussian on a grid
finer than the CT's and averaged over each CT voxel (the model of
:func:`cement_curvature.blur_sigmas_mm`), with the CT's noise."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CementLeakageLib.cement_curvature import CT_BLUR_SIGMA_MM
from CementLeakageLib.cement_segmentation import segment_cement
from CementLeakageLib.ct_blur import blur_from_cement_edges, most_common_hu
from CementLeakageLib.parameters import MeasurementParameters

BONE_HU = 200.0
CEMENT_HU = 2700.0
"""Under the top of a 12-bit scale (3071 HU), as on most CTs."""
NOISE_HU = 20.0
BALL_RADIUS_MM = 7.0
HALF_EXTENT_MM = 14.0


def rendered_ball(spacing_mm: tuple[float, float, float], blur_mm: float, radius_mm: float = BALL_RADIUS_MM):
    """A ball of cement (``radius_mm``) in bone on a grid of ``spacing_mm`` (mm, i j k): drawn
    on a grid a quarter of the in-plane pixel (and of the slice) apart, blurred there by a
    Gaussian of ``blur_mm`` (SD, mm), averaged over each CT voxel and given the CT's noise.
    Returns the ``[k, j, i]`` array (HU)."""
    factor = 4
    shape = [int(round(2 * HALF_EXTENT_MM / step)) for step in spacing_mm]  # i j k
    fine_step = [step / factor for step in spacing_mm]
    axes = [(np.arange(n * factor) + 0.5) * fine - HALF_EXTENT_MM for n, fine in zip(shape, fine_step)]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    fine = np.where(x * x + y * y + z * z <= radius_mm**2, CEMENT_HU, BONE_HU).astype(np.float32)
    image = sitk.GetImageFromArray(fine)
    image.SetSpacing(fine_step)
    blurred = sitk.GetArrayFromImage(sitk.DiscreteGaussian(image, [blur_mm**2] * 3, 64, 0.001, True))
    nk, nj, ni = shape[2], shape[1], shape[0]
    averaged = blurred.reshape(nk, factor, nj, factor, ni, factor).mean(axis=(1, 3, 5))
    noise = np.random.default_rng(11).normal(0.0, NOISE_HU, averaged.shape)
    return (averaged + noise).astype(np.float32)


@pytest.mark.parametrize("spacing_mm", [(0.5, 0.5, 0.5), (0.8, 0.8, 2.0)])
@pytest.mark.parametrize("blur_mm", [0.45, 0.6, 0.75, 1.0])
def test_the_blur_a_bolus_was_rendered_with_is_measured_on_its_edges(spacing_mm, blur_mm):
    hu = rendered_ball(spacing_mm, blur_mm)
    core = hu >= 1500.0
    measured = blur_from_cement_edges(hu, core, np.array(spacing_mm), CEMENT_HU)
    # Within 0.06 mm, under half the step between the sweeps' sharp (0.45 mm), standard (0.6 mm)
    # and soft (0.75 mm) kernels (measured -0.02 to +0.05 mm; the most on 0.8 mm pixels, whose
    # own extent then outweighs a sharp kernel's spread).
    assert measured == pytest.approx(blur_mm, abs=0.06)


def test_a_bolus_too_small_or_too_faint_gives_no_measurement():
    spacing = np.array([0.8, 0.8, 2.0])
    small = rendered_ball(tuple(spacing), 0.6, radius_mm=2.0)
    assert blur_from_cement_edges(small, small >= 1500.0, spacing, CEMENT_HU) is None
    faint = rendered_ball(tuple(spacing), 0.6)
    # Against bone only 800 HU darker, the edge is not the cement's.
    assert blur_from_cement_edges(faint, faint >= 1500.0, spacing, BONE_HU + 800.0) is None


def test_the_bone_around_the_bolus_is_the_rings_most_common_intensity():
    # A ring 3-4.5 mm around a bolus that fills the body: trabecular bone (110 HU), the cortex
    # (750 HU, blurred) nearly as often, and fat beyond it (-100 HU), with texture and noise.
    rng = np.random.default_rng(5)
    ring = np.concatenate(
        [rng.normal(110.0, 40.0, 4500), rng.normal(750.0, 80.0, 4000), rng.normal(-100.0, 25.0, 1000)]
    )
    assert most_common_hu(ring) == pytest.approx(110.0, abs=15.0)
    assert np.median(ring) > 140.0  # the median, pulled up by the cortex
    assert most_common_hu(np.full(50, 200.0)) == pytest.approx(200.0, abs=10.0)


def test_the_cement_segmentation_reports_the_blur_it_measured():
    spacing = (0.6, 0.6, 1.0)
    hu = rendered_ball(spacing, 0.75)
    found = segment_cement(hu, MeasurementParameters(), np.array(spacing))
    assert found.blur_sigma_mm == pytest.approx(0.75, abs=0.05)
    assert found.blur_sigma_mm != pytest.approx(CT_BLUR_SIGMA_MM, abs=0.1)
    # Without the voxel spacing the segmentation measures nothing and assumes the default.
    assert segment_cement(hu, MeasurementParameters()).blur_sigma_mm is None


def test_the_measurement_reports_the_blur_it_sized_the_cement_with():
    from CementLeakageLib.phantom import PhantomSpec, make_phantom
    from CementLeakageLib.pipeline import measure_vertebra

    phantom = make_phantom(PhantomSpec(spacing_mm=(0.7, 0.7, 1.0), blur_sigma_mm=0.75))
    truth = phantom.truth
    automatic = measure_vertebra(phantom.ct, truth.upper_ras, truth.lower_ras, truth.side)
    reported = automatic.measurement.as_dict()["ct_blur_sigma_mm"]
    # Measured 0.728 mm (0.501 and 0.602 mm when rendered at 0.45 and 0.6 mm). Against the median
    # of the ring around the bolus, which crosses the cortex there, it read 0.671 mm (0.452, 0.548).
    assert reported == pytest.approx(0.75, abs=0.05)
    assert abs(reported - 0.75) < abs(CT_BLUR_SIGMA_MM - 0.75)
    given = measure_vertebra(
        phantom.ct,
        truth.upper_ras,
        truth.lower_ras,
        truth.side,
        body_mask=automatic.body_mask,
        cement_mask=automatic.cement_mask,
    )
    assert given.measurement.ct_blur_sigma_mm is None  # the given masks were sized by hand
