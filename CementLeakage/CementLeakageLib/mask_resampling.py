"""A binary mask moved from a fine grid onto a coarser one with its volume kept.

On a CT grid of thick slices a face of the mask can lie anywhere within a slice, and taking
the voxels whose centre falls inside moves the volume by up to half a slice per face (several
per cent of a vertebral body on 2 mm slices). Here each coarse voxel gets the fraction of it
that the fine mask covers, sampled at points spread along its slice axis, and the voxels with
the largest fractions are taken until their volume equals the covered volume: the coarse
mask's own voxel count then resolves a face to a fraction of a slice, while its shape stays
the best binary approximation on that grid.
"""

from __future__ import annotations

import numpy as np

from .geometry import VolumeGeometry
from .sitk_bridge import resample_onto, to_sitk

SAMPLE_SPACING_MM = 0.5
"""Largest distance (mm) between the points that sample one coarse voxel along each axis."""
TIE_BREAK_PER_MM = 1e-4
"""Score taken off per unit of the tie-break: among voxels covered alike, those with the smaller
tie-break are taken first (for a body, an order by the distance from its axis; for cement, the
brighter voxels first)."""


def _offsets(spacing_mm: float, sample_spacing_mm: float = SAMPLE_SPACING_MM) -> np.ndarray:
    """Sample offsets (voxel units) within one voxel along an axis of ``spacing_mm``, at most
    ``sample_spacing_mm`` apart."""
    count = max(1, int(np.ceil(spacing_mm / sample_spacing_mm - 1e-6)))
    return (np.arange(count) + 0.5) / count - 0.5


def coverage_on(
    mask: np.ndarray,
    fine: VolumeGeometry,
    coarse: VolumeGeometry,
    sample_spacing_mm: float = SAMPLE_SPACING_MM,
) -> np.ndarray:
    """Fraction (0 to 1) of each voxel of ``coarse`` that ``mask`` (on ``fine``) covers.

    ``mask`` is bool, or float values from 0 to 1 whose linear interpolation crosses one half on
    the surface (a face within a fine voxel).

    The voxel is sampled at points spread along its slice axis (k), at most
    ``sample_spacing_mm`` apart; at each point the fine mask is interpolated linearly and taken
    where it is at least one half, as a binary resampling would. In the slice plane the voxel
    already resolves the outline; along a thick slice it does not, and there the fraction says
    where within the slice a face lies. Returns float32 ``[k, j, i]``.
    """
    image = to_sitk(mask.astype(np.float32), fine)
    offsets = _offsets(float(coarse.spacing_mm[2]), sample_spacing_mm)
    total = np.zeros(coarse.shape, dtype=np.float32)
    for offset in offsets:
        shifted = coarse.ijk_to_ras.copy()
        shifted[:3, 3] = coarse.ijk_to_ras_points(np.array([[0.0, 0.0, offset]]))[0]
        sampled = resample_onto(image, VolumeGeometry(shifted, coarse.shape), linear=True, default_value=0.0)
        total += sampled >= 0.5
    return total / len(offsets)


def volume_preserving_mask(
    coverage: np.ndarray,
    volume_mm3: float,
    voxel_mm3: float,
    allowed: np.ndarray,
    tie_break: np.ndarray,
) -> np.ndarray:
    """The voxels with the largest coverage whose count times ``voxel_mm3`` is ``volume_mm3``.

    Only voxels in ``allowed`` with some coverage are candidates; ties in coverage go to the
    voxels with the smaller ``tie_break`` (distance from the mask's centre in mm, for example).
    Returns a bool array.
    """
    score = np.where(allowed & (coverage > 0.0), coverage - TIE_BREAK_PER_MM * tie_break, -np.inf)
    flat = score.ravel()
    candidates = np.flatnonzero(np.isfinite(flat))
    wanted = int(round(volume_mm3 / voxel_mm3))
    result = np.zeros(flat.size, dtype=bool)
    if wanted >= candidates.size:
        result[candidates] = True
    elif wanted > 0:
        chosen = candidates[np.argpartition(-flat[candidates], wanted - 1)[:wanted]]
        result[chosen] = True
    return result.reshape(coverage.shape)


def coverage_along_axis(
    array: np.ndarray, low: float, high: float, axis: int, spacing_mm: float
) -> np.ndarray:
    """Fraction (0 to 1) of each voxel, along ``axis`` of ``spacing_mm``, where ``array``
    interpolated linearly between voxel centres lies within ``[low, high]``.

    The voxel is sampled at points at most ``SAMPLE_SPACING_MM`` apart along the axis; at the
    array's ends the end voxel's own value stands for its missing neighbour.
    """
    values = np.moveaxis(np.asarray(array, dtype=np.float32), axis, 0)
    after = np.concatenate([values[1:], values[-1:]], axis=0)
    before = np.concatenate([values[:1], values[:-1]], axis=0)
    offsets = _offsets(spacing_mm)
    total = np.zeros(values.shape, dtype=np.float32)
    for offset in offsets:
        weight = np.float32(abs(offset))
        sampled = (1.0 - weight) * values + weight * (after if offset > 0 else before)
        total += (sampled >= low) & (sampled <= high)
    return np.moveaxis(total / len(offsets), 0, axis)
