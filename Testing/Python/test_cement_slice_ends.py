"""The ends of a bolus across thick slices against analytic volumes: a flat bolus (1.85 cm³,
too small for the curvature correction) on 1 x 1 x 2 mm voxels whose caps fall anywhere within
a slice, over bone and a cortical plate, alone and under a vacuum cleft; and the rule itself on
voxels of known intensity."""

from __future__ import annotations

import numpy as np
import pytest
from ct_scenes import on_ct_voxels

from CementLeakageLib.cement_curvature import CURVATURE_MIN_VOXELS
from CementLeakageLib.cement_segmentation import place_within_slices, segment_cement
from CementLeakageLib.cement_slice_ends import (
    SLICE_ENDS_MIN_VOXELS,
    blur_spill_fraction,
    bone_around_hu,
    slice_end_coverage,
)
from CementLeakageLib.parameters import MeasurementParameters

BONE_HU = 110.0
CEMENT_HU = 2700.0
CORTEX_HU = 750.0
SPACING_MM = (1.0, 1.0, 2.0)
FINE_MM = 0.25
SEMI_AXES_MM = (10.0, 9.0, 4.9)
"""A bolus of a high fill in a T5 (x, y, z semi-axes, mm): 923 voxels of 2 mm³."""
PLATE_GAP_MM = 1.5
"""A cortical plate 1 mm thick lies this far below the bolus (an endplate)."""
GAS_HU = -900.0
GAS_THICKNESS_MM = 4.0
SHIFTS_MM = (0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8)
"""Where the bolus lies across the 2 mm slices: its caps reach 0.1 to 1.9 mm into a slice."""


def flat_bolus_ct(
    shift_mm: float,
    cement_hu: float = CEMENT_HU,
    gas_gap_mm: float | None = None,
    semi_axes_mm: tuple[float, float, float] = SEMI_AXES_MM,
) -> np.ndarray:
    """HU ``[k, j, i]`` on ``SPACING_MM`` voxels of the bolus (``cement_hu``, semi-axes
    ``semi_axes_mm``), ``shift_mm`` up from the grid's centre, in bone over the plate: painted on
    a grid of ``FINE_MM`` and put on the CT's voxels by :func:`ct_scenes.on_ct_voxels` (on 2 mm
    slices, the slice profile). With ``gas_gap_mm``, a vacuum cleft (``GAS_HU``,
    ``GAS_THICKNESS_MM`` thick, 3 mm wider than the bolus all round) lies that far above the
    bolus."""
    extent_mm = (24.0, 28.0, 28.0)  # k, j, i
    z, y, x = np.meshgrid(
        *[(np.arange(round(e / FINE_MM)) + 0.5) * FINE_MM - e / 2 for e in extent_mm], indexing="ij"
    )
    z = z - shift_mm
    a, b, c = semi_axes_mm
    hu = np.full(z.shape, BONE_HU, dtype=np.float32)
    hu[(z <= -c - PLATE_GAP_MM) & (z > -c - PLATE_GAP_MM - 1.0)] = CORTEX_HU
    if gas_gap_mm is not None:
        layer = (z > c + gas_gap_mm) & (z <= c + gas_gap_mm + GAS_THICKNESS_MM)
        hu[layer & ((x / (a + 3.0)) ** 2 + (y / (b + 3.0)) ** 2 <= 1.0)] = GAS_HU
    hu[(x / a) ** 2 + (y / b) ** 2 + (z / c) ** 2 <= 1.0] = cement_hu
    return on_ct_voxels(hu, FINE_MM, SPACING_MM)


def test_a_flat_bolus_keeps_its_volume_wherever_its_caps_fall_within_the_slices():
    # Interpolated linearly between slice centres, the caps read -1.6% to -3.6% of the bolus
    # (mean |error| 2.5%); from the cement their voxels hold, -1.7% to +0.3% (mean 0.7%).
    truth_mm3 = 4.0 / 3.0 * np.pi * np.prod(SEMI_AXES_MM)
    errors = []
    for shift_mm in SHIFTS_MM:
        found = segment_cement(flat_bolus_ct(shift_mm), MeasurementParameters(), np.array(SPACING_MM))
        errors.append(found.mask.sum() * np.prod(SPACING_MM) / truth_mm3 - 1.0)
    assert np.all(np.abs(errors) <= 0.02)
    assert np.mean(np.abs(errors)) <= 0.01


SMALL_BALL_RADIUS_MM = 5.5
"""A small bolus: 312 to 328 core voxels on ``SPACING_MM``, wherever it lies across the slices."""


def test_a_small_ball_keeps_its_volume_wherever_its_caps_fall_within_the_slices():
    # Under the curvature correction's 1000 core voxels and over SLICE_ENDS_MIN_VOXELS: its ends
    # from their intensity, -1.3% to +0.2% (interpolated, as below 500 core voxels, -4.1% to
    # -3.0%). A low fill in a T5 on 1 x 1 x 2 mm voxels (351 core voxels) lost the same share
    # (BCV -5.0%, PSBCV -5.8% in the seed-2032 phantom sweep).
    axes = (SMALL_BALL_RADIUS_MM,) * 3
    truth_mm3 = 4.0 / 3.0 * np.pi * SMALL_BALL_RADIUS_MM**3
    errors, cores = [], []
    for shift_mm in SHIFTS_MM:
        hu = flat_bolus_ct(shift_mm, semi_axes_mm=axes)
        cores.append(int(np.count_nonzero(hu >= MeasurementParameters().cement_min_hu)))
        found = segment_cement(hu, MeasurementParameters(), np.array(SPACING_MM))
        errors.append(found.mask.sum() * np.prod(SPACING_MM) / truth_mm3 - 1.0)
    assert SLICE_ENDS_MIN_VOXELS <= min(cores) and max(cores) < CURVATURE_MIN_VOXELS
    assert np.all(np.abs(errors) <= 0.02)
    assert np.mean(np.abs(errors)) <= 0.01


def test_a_vacuum_cleft_above_the_bolus_is_not_the_bone_its_ends_are_sized_against():
    # Gas 1 mm above the bolus fills a third of the ring the bone is read from. Taken as the bone,
    # the gas made the bone beyond the caps read as a quarter cement: +3.4% to +10.7%. Left out,
    # -2.7% to -0.6%: next to the gas the edge level, halfway to bone, lies inside the cement's
    # half maximum against the gas.
    truth_mm3 = 4.0 / 3.0 * np.pi * np.prod(SEMI_AXES_MM)
    errors = []
    for shift_mm in SHIFTS_MM:
        hu = flat_bolus_ct(shift_mm, gas_gap_mm=1.0)
        found = segment_cement(hu, MeasurementParameters(), np.array(SPACING_MM))
        errors.append(found.mask.sum() * np.prod(SPACING_MM) / truth_mm3 - 1.0)
    assert np.all(np.abs(errors) <= 0.03)
    assert np.mean(np.abs(errors)) <= 0.02


def test_the_ends_are_left_alone_where_the_scale_clips_the_cement():
    # Cement of 4000 HU stored up to 3071 HU has no known intensity to take fractions of: its
    # bolus is placed within the slices by interpolation alone, as without a bolus given. Cement
    # of 2700 HU has its ends set from their intensity.
    parameters = MeasurementParameters()
    for cement_hu, ends_set in ((CEMENT_HU, True), (4000.0, False)):
        hu = np.minimum(flat_bolus_ct(0.6, cement_hu), 3071.0).astype(np.float32)
        pieces = (hu >= parameters.cement_min_hu).astype(np.int32)
        levels = np.array([np.inf, 0.5 * (min(cement_hu, 3071.0) + BONE_HU)])
        reference_hu = float(np.quantile(hu[pieces == 1], 0.9))
        interpolated = place_within_slices(hu, pieces, levels, SPACING_MM[2], parameters)
        with_ends = place_within_slices(hu, pieces, levels, SPACING_MM[2], parameters, 1, reference_hu)
        assert bool((with_ends != interpolated).any()) == ends_set


def test_the_bone_around_a_bolus_is_the_ring_s_lower_quartile():
    # A ring more than half cortex (750 HU; the rest trabecular bone, 110 HU) reads as bone, where
    # its median would read as cortex; the box must reach three voxels beyond the piece.
    hu = np.full((9, 9, 9), BONE_HU, dtype=np.float32)
    hu[:, :, 4:] = CORTEX_HU
    piece = np.zeros(hu.shape, dtype=bool)
    piece[4, 4, 4] = True
    assert np.median(hu[1:8, 1:8, 1:8]) == CORTEX_HU
    assert bone_around_hu(hu, piece) == pytest.approx(BONE_HU)
    assert bone_around_hu(hu[3:6, 3:6, 3:6], piece[3:6, 3:6, 3:6]) is None


def test_gas_in_the_ring_around_a_bolus_is_not_its_bone():
    # Half the ring is gas (-900 HU, a vacuum cleft), the rest trabecular bone: the gas is left
    # out. A ring of gas alone keeps it (there is nothing else to read).
    hu = np.full((9, 9, 9), BONE_HU, dtype=np.float32)
    hu[:, :, :4] = GAS_HU
    piece = np.zeros(hu.shape, dtype=bool)
    piece[4, 4, 4] = True
    assert np.quantile(hu[1:8, 1:8, 1:8], 0.25) == GAS_HU
    assert bone_around_hu(hu, piece) == pytest.approx(BONE_HU)
    assert bone_around_hu(np.full(hu.shape, GAS_HU, dtype=np.float32), piece) == pytest.approx(GAS_HU)


def test_the_voxel_beyond_a_cap_gets_its_fraction_and_the_cap_s_last_voxel_at_most_its_own():
    # A piece three slices deep and 5 x 5 wide on 2 mm slices; the slice above holds 30% cement
    # over its middle (but 10% in one voxel: no more than a 0.6 mm blur spills from a full slice,
    # 12%), the piece's top slice 80% (its middle 3 x 3, whose neighbours in the slice all belong
    # to the piece). Fractions are (HU - 110) / (2700 - 110).
    assert blur_spill_fraction(2.0) == pytest.approx(0.1197, abs=1e-4)
    hu = np.full((6, 7, 7), BONE_HU, dtype=np.float32)
    piece = np.zeros(hu.shape, dtype=bool)
    piece[1:4, 1:6, 1:6] = True
    hu[piece] = CEMENT_HU
    hu[3, 1:6, 1:6] = BONE_HU + 0.8 * (CEMENT_HU - BONE_HU)
    hu[4, 2:5, 2:5] = BONE_HU + 0.3 * (CEMENT_HU - BONE_HU)
    hu[4, 2, 2] = BONE_HU + 0.1 * (CEMENT_HU - BONE_HU)
    linear = np.full(hu.shape, 0.05, dtype=np.float32)  # what interpolating between slices gave
    linear[piece] = 1.0
    coverage = slice_end_coverage(hu, piece, linear, 1405.0, CEMENT_HU, BONE_HU, 2.0)
    assert coverage[4, 3:5, 2:5] == pytest.approx(np.full((2, 3), 0.3), abs=1e-5)  # beyond the cap
    assert coverage[4, 2, 2] == pytest.approx(0.05)  # the blur's spill: no cap
    assert coverage[4, 1, 1] == pytest.approx(0.05)  # bone beyond the cap keeps what it had
    assert coverage[3, 2:5, 2:5] == pytest.approx(np.full((3, 3), 0.8), abs=1e-5)  # the cap's last voxels
    assert coverage[3, 1, 3] == pytest.approx(1.0)  # the rim of the slice keeps its coverage
    assert coverage[2, 2:5, 2:5] == pytest.approx(np.ones((3, 3)))  # inside the piece
    assert coverage[0, 2:5, 2:5] == pytest.approx(np.full((3, 3), 0.05))  # beyond the lower cap: bone
