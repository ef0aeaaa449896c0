"""The volume a CT's blur takes from a curved blob of cement at half maximum, and putting it back.

Blur moves the half-maximum surface of a curved object inwards: near a convex surface less than
half of the blur's weight lies inside, so the surface sinks by about ``sigma²`` times its mean
curvature and a ball of radius R loses about ``3 sigma² / R²`` of its volume (1% of a 12 mm
bolus, 5% of a 5 mm one at ``sigma`` 0.65 mm). The loss grows with the blur's variance, so
blurring the image once more by the same blur takes about as much again: that second loss,
measured on the image itself, is the estimate of the first (:func:`curvature_loss_fraction`),
and :func:`add_lost_volume` gives the piece that many voxels more. Concave parts (where two
blobs meet) gain instead of losing, and the estimate counts them with their sign; a piece whose
estimate comes out negative is left as it is.

The blur is the CT's point spread, a Gaussian of the same SD in every direction (measured on
the bolus's edges, :mod:`ct_blur`, or ``CT_BLUR_SIGMA_MM`` where it cannot be), combined with
each voxel's extent along each axis (a box of its spacing, variance
``spacing² / 12``: on thick slices the slice profile). The estimate holds while the loss is small
(first order in the blur's variance); ``CURVATURE_LOSS_LIMIT`` marks where it stops holding, for a
piece thinner than the blur in some direction.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .measurement import bounding_box, grown_box

CT_BLUR_SIGMA_MM = 0.6
"""SD (mm) of the CT's point spread, a Gaussian, where it cannot be measured on the bolus (a
small, thin or clipped one): a standard body kernel (modulation transfer falling to one half at
about 0.3 line pairs per mm). A sharper kernel blurs less and the correction then adds a little
too much, a softer one more and it adds too little (the sweeps
``benchmarks/results/phantom_sweep_slice_averaged_blur*.md`` render the phantoms at 0.45 and
0.75 mm)."""
CURVATURE_LOSS_LIMIT = 0.12
"""Largest share of a piece a further blur may take for :func:`curvature_loss_fraction` to
stand for the first blur's loss: balls down to a radius of about 3.5 mm stay within it; a layer
thinner than the blur, whose peak the blur lowers, goes beyond it (56% for a layer 1.2 mm thick
on 0.5 mm voxels, in ``test_cement_curvature.py``; one 1.5 mm thick, at 11.8%, stays just within it
and is corrected from +28% to +4%)."""

CURVATURE_MIN_VOXELS = 1000
"""Fewest voxels a piece's core needs for the correction (a radius of about six voxels): the
count of a smaller piece's voxels above a level swings with where it lies on the grid by more
than the correction itself (a 4 mm ball on 1 mm voxels: -7% off the grid's symmetry, -12% on it)."""

SATURATION_MARGIN_HU = 100.0
"""A cement intensity within this many HU of the top of the cement window (``cement_max_hu``) is
clipped by the CT's scale: the cement's true intensity, and so its half maximum, is unknown (the
1500 HU level then lies outside it), and no correction is made."""


def clipped_by_scale(cement_hu: float, cement_max_hu: float) -> bool:
    """Whether the CT's scale (cement window up to ``cement_max_hu``, HU) clips cement whose
    intensity reads ``cement_hu`` (HU): within ``SATURATION_MARGIN_HU`` of the top."""
    return cement_hu >= cement_max_hu - SATURATION_MARGIN_HU


def blur_sigmas_mm(spacing_mm: np.ndarray, blur_sigma_mm: float = CT_BLUR_SIGMA_MM) -> np.ndarray:
    """SD (mm) of the blur along i, j and k of a grid of ``spacing_mm`` (mm, i j k): the point
    spread's ``blur_sigma_mm`` (mm) combined with a box of the voxel's spacing."""
    spacing = np.asarray(spacing_mm, dtype=float)
    return np.sqrt(blur_sigma_mm**2 + spacing**2 / 12.0)


def curvature_loss_fraction(
    array_hu: np.ndarray,
    region: np.ndarray,
    level_hu: float,
    spacing_mm: np.ndarray,
    blur_sigma_mm: float = CT_BLUR_SIGMA_MM,
) -> float:
    """Share of the voxels of ``region`` at or above ``level_hu`` (HU) that a further blur by
    :func:`blur_sigmas_mm` (a point spread of ``blur_sigma_mm``, mm) takes below it: about the
    share the CT's own blur took from the object whose half maximum ``level_hu`` is (negative
    where concave parts gain more).

    ``array_hu`` and ``region`` are ``[k, j, i]`` arrays on a grid of ``spacing_mm`` (mm, i j k);
    ``region`` should reach a little beyond the object's edge and leave out other bright pieces.
    Returns 0 when no voxel of the region reaches the level.
    """
    above = int(np.count_nonzero((array_hu >= level_hu) & region))
    if above == 0:
        return 0.0
    image = sitk.GetImageFromArray(array_hu.astype(np.float32))
    image.SetSpacing([float(step) for step in spacing_mm])
    variances = [float(sigma) ** 2 for sigma in blur_sigmas_mm(spacing_mm, blur_sigma_mm)]
    blurred = sitk.GetArrayFromImage(sitk.DiscreteGaussian(image, variances, 32, 0.01, True))
    after = int(np.count_nonzero((blurred >= level_hu) & region))
    return (above - after) / above


def add_lost_volume(
    array_hu: np.ndarray, labels: np.ndarray, label: int, fraction: float, top_hu: float
) -> np.ndarray:
    """``labels`` (``[k, j, i]``) with piece ``label`` grown by ``fraction`` of its voxels: the
    brightest unlabelled voxels touching it (26-neighbourhood) at or below ``top_hu`` (HU).
    Returns a new array; nothing changes for a fraction of zero or less."""
    result = labels.copy()
    box = bounding_box(labels == label)
    if box is None:
        return result
    box = grown_box(box, (1, 1, 1), labels.shape)
    local = result[box].copy()
    piece = local == label
    extra = int(round(fraction * np.count_nonzero(piece)))
    if extra <= 0:
        return result
    hu = array_hu[box]
    touching = ndimage.binary_dilation(piece, structure=np.ones((3, 3, 3), dtype=bool))
    candidates = np.flatnonzero(touching & (local == 0) & (hu <= top_hu))
    brightest = candidates[np.argsort(-hu.ravel()[candidates], kind="stable")[:extra]]
    local.reshape(-1)[brightest] = label
    result[box] = local
    return result
