"""The ends of the cement bolus across thick slices, from the cement their voxels hold.

A thick slice averages what lies within its thickness (its slice profile). The voxel just beyond
the bolus's last slice therefore holds the part of the bolus's cap that reaches into it, as a
fraction of the cement's intensity over the bone's, and the bolus's own last voxel holds no more
than its fraction. Interpolating linearly between slice centres
(:func:`~CementLeakageLib.mask_resampling.coverage_along_axis`) gives the voxel beyond nothing
while the cap fills less than about half of it, and the last voxel all of itself once the cap
fills a little more than half: on 2 mm slices a cap within a slice moves a small bolus by several
per cent (a 1.8 cm³ bolus in a T5 on 1 x 1 x 2 mm voxels lost 0.06 cm³ at its two caps, -3.4%).

The rule is for a bolus whose curvature loss is not put back (fewer core voxels than
:data:`~CementLeakageLib.cement_curvature.CURVATURE_MIN_VOXELS`): that correction
(:mod:`cement_curvature`) takes the slice profile into the blur whose loss it restores, caps
included, and the two together count the caps twice (BCV +0.1..+1.2% -> +2.8..+4.3% on three
boluses of the seed-2026 phantom sweep). A bolus under ``SLICE_ENDS_MIN_VOXELS`` keeps the
interpolation.

Here the voxels beyond the bolus along the slice axis get at least their fraction of cement, and
the last voxels of its caps at most theirs. The blur spills a little of a full slice into the
next (about ``sigma / (spacing sqrt(2 pi))`` of it: 12% on 2 mm slices with a 0.6 mm blur); a
voxel beyond that holds no more is no cap and keeps its coverage (counted, the spill made a flat
bolus on 2 mm slices read up to +1.9%, and 6 of the 42 boluses of the phantom sweeps the rule
then changed over 3% on BCV or PSBCV, up to +4.0%). A last voxel counts as a cap's only where
the bolus's cross-section continues all round it in its slice: on the sloped rim of a slice the
blur carries part of a voxel's intensity into its neighbours in the slice, and its fraction
alone would lose that part. On a flat bolus of 1.85 cm³ whose caps fall anywhere within 2 mm
slices, -1.6% to -3.6% become -1.7% to +0.3% (``test_cement_slice_ends.py``).

The bone's intensity is the lower quartile of a ring ``END_RING_INNER_VOXELS`` to
``END_RING_OUTER_VOXELS`` voxels beyond the bolus: trabecular bone, where the cortex of a nearby
wall or endplate (and any other cement) make up a brighter part of the ring (a 1.8 cm³ bolus
1.5 mm inside the cortex of a T5: median 330 HU, lower quartile 140 HU, trabecular bone 110 HU).
Gas in the ring (``RING_GAS_MAX_HU``, a vacuum cleft beside the bolus) is not bone and is left
out: its quartile would make bone beyond the caps read as cement (a flat bolus of 1.85 cm³ with
gas 1 mm above it on 2 mm slices: +3.4% to +10.7% wherever its caps fall, -0.1% to +1.6% without
the gas).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .cement_curvature import CT_BLUR_SIGMA_MM

END_RING_INNER_VOXELS = 1
"""The ring that tells the bone's intensity starts beyond this many voxels around the bolus
(26-neighbourhood steps): past most of the blur of its edge."""
END_RING_OUTER_VOXELS = 3
"""... and ends this many voxels beyond it."""
BONE_QUANTILE = 0.25
"""Quantile of the ring taken as the bone around the bolus, here and for its half maximum
(:func:`cement_segmentation.cement_edge_level`). Everything in such a ring is brighter than the
trabecular bone the bolus's edge meets: near the bolus its own blur, a slice or a few
millimetres out the cortex and the endplates, which on a compressed body make up much of it (a
T6 at 75% height, its bolus 8 mm thick on 2 mm slices in bone of 110 HU: median 249 HU, lower
quartile 148 HU; BCV -4.4% from the median, -2.1% from the lower quartile)."""
RING_GAS_MAX_HU = -200.0
"""Voxels of a ring around the bolus below this (HU) are gas, as in an intravertebral vacuum
cleft, not bone: they are left out of its quantile, here and for the bolus's half maximum, while
some bone remains."""
SLICE_ENDS_MIN_VOXELS = 300
"""Fewest core voxels (at or above the cement threshold) a bolus needs for its ends to be set
from their intensity: on a smaller one the sloped rims, where a voxel's fraction overlaps what
linear interpolation gives its neighbours, outweigh the caps (a ball of 4 mm radius 2 mm above an
endplate on 1 x 1 x 2 mm voxels, about 100 core voxels: -0.8% -> +5.9%;
``test_cement_intensity_sizing.py``). A ball of 5.5 mm radius in bone, 312 to 328 core voxels on
those voxels, reads -4.1% to -3.0% interpolated and -1.3% to +0.2% from its ends' intensity
wherever it lies across the slices (``test_cement_slice_ends.py``)."""

_NEIGHBOURHOOD = np.ones((3, 3, 3), dtype=bool)
_IN_SLICE = np.zeros((3, 3, 3), dtype=bool)
_IN_SLICE[1] = True


def bone_around_hu(array_hu: np.ndarray, piece: np.ndarray) -> float | None:
    """Intensity (HU) of the bone around ``piece`` (bool, same ``[k, j, i]`` box as ``array_hu``,
    which should reach ``END_RING_OUTER_VOXELS`` beyond it): the ``BONE_QUANTILE`` of the ring
    between ``END_RING_INNER_VOXELS`` and ``END_RING_OUTER_VOXELS`` voxels beyond the piece, its
    gas (under ``RING_GAS_MAX_HU``) left out while some bone remains; None when the box leaves no
    ring."""
    inner = ndimage.binary_dilation(piece, structure=_NEIGHBOURHOOD, iterations=END_RING_INNER_VOXELS)
    outer = ndimage.binary_dilation(
        inner, structure=_NEIGHBOURHOOD, iterations=END_RING_OUTER_VOXELS - END_RING_INNER_VOXELS
    )
    ring = outer & ~inner
    if not ring.any():
        return None
    return float(np.quantile(at_or_above_if_any(array_hu[ring], RING_GAS_MAX_HU), BONE_QUANTILE))


def at_or_above_if_any(values: np.ndarray, floor_hu: float) -> np.ndarray:
    """The ``values`` (HU) at or above ``floor_hu``, or all of them when none are: a ring's gas
    left out while some bone remains."""
    kept = values[values >= floor_hu]
    return kept if kept.size else values


def blur_spill_fraction(slice_spacing_mm: float, blur_sigma_mm: float = CT_BLUR_SIGMA_MM) -> float:
    """Share of a slice of ``slice_spacing_mm`` (mm) that the blur (a Gaussian of
    ``blur_sigma_mm``, mm) fills from a full slice next to it: ``sigma / (spacing sqrt(2 pi))``
    (0.12 on 2 mm slices, 0.19 on 1.25 mm with a 0.6 mm blur)."""
    return blur_sigma_mm / (slice_spacing_mm * math.sqrt(2.0 * math.pi))


def slice_end_coverage(
    array_hu: np.ndarray,
    piece: np.ndarray,
    coverage: np.ndarray,
    level_hu: float,
    cement_hu: float,
    bone_hu: float,
    slice_spacing_mm: float,
    blur_sigma_mm: float = CT_BLUR_SIGMA_MM,
) -> np.ndarray:
    """``coverage`` (fraction of each voxel, float ``[k, j, i]``, slices ``slice_spacing_mm``
    apart along k; the CT's point spread ``blur_sigma_mm``, mm) of a bolus ``piece`` (bool, same
    box) with its ends along k set from the cement they hold.

    A voxel's fraction is ``(HU - bone_hu) / (cement_hu - bone_hu)``, within 0 and 1. Voxels
    outside the piece, below its edge level ``level_hu`` (HU) and next to it along k get at least
    their fraction where it exceeds what the blur spills into them from the piece's slice
    (:func:`blur_spill_fraction`): less is no cap of the bolus. The piece's voxels that end it
    along k and whose eight neighbours in their slice belong to it get at most their fraction.
    Returns the new coverage (float32).
    """
    hu = np.asarray(array_hu, dtype=np.float32)
    fraction = np.clip((hu - bone_hu) / max(cement_hu - bone_hu, 1.0), 0.0, 1.0)
    after = np.zeros_like(piece)  # the voxel before along k belongs to the piece
    after[1:] = piece[:-1]
    before = np.zeros_like(piece)  # the voxel after along k belongs to the piece
    before[:-1] = piece[1:]
    beyond = (after | before) & ~piece & (hu < level_hu)
    beyond &= fraction > blur_spill_fraction(slice_spacing_mm, blur_sigma_mm)
    surrounded = ndimage.binary_erosion(piece, structure=_IN_SLICE, border_value=0)
    last = surrounded & ~(after & before)
    result = np.where(beyond, np.maximum(coverage, fraction), coverage)
    result = np.where(last, np.minimum(result, fraction), result)
    return result.astype(np.float32)
