"""Cement mask of a CT: the 1500 HU threshold with the blob edges placed at half maximum.

Cement is far brighter than the bone around it (about 2500-3000 HU against 100-300 HU), so
partial volume and blur spread each blob's edge over a voxel or two. A fixed threshold of
1500 HU lies above the halfway level between cement and its surroundings and trims a thin
rim off every blob, a few per cent of the volume. The edge is therefore refined: voxels
touching the thresholded cement are added when they are brighter than halfway between the
cement's median intensity and that of the voxels around it. The refinement only ever adds
voxels next to thresholded cement and never goes below ``CEMENT_EDGE_FLOOR_HU``.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .parameters import MeasurementParameters

CEMENT_EDGE_FLOOR_HU = 1000.0
"""Lowest level (HU) the refined cement edge may reach."""
EDGE_GROWTH_STEPS = 3
"""Voxels the thresholded cement may grow into its half-maximum edge: thin leaks and tracts, whose
blurred peak is lower, keep their 1500 HU core further inside their true edge than big blobs."""


def threshold_cement(array_hu: np.ndarray, parameters: MeasurementParameters) -> np.ndarray:
    """Cement mask: voxels in ``[cement_min_hu, cement_max_hu]`` (HU, inclusive), ``[k, j, i]``."""
    return (array_hu >= parameters.cement_min_hu) & (array_hu <= parameters.cement_max_hu)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.BinaryDilate(image, [radius] * 3)) > 0


def cement_edge_level(array_hu: np.ndarray, core: np.ndarray, parameters: MeasurementParameters) -> float:
    """Half-maximum level (HU) between the cement ``core`` and the voxels one to two voxels around it."""
    if not core.any():
        return parameters.cement_min_hu
    near = _dilate(core, 1)
    around = _dilate(near, 1) & ~near
    if not around.any():
        return parameters.cement_min_hu
    level = 0.5 * (float(np.median(array_hu[core])) + float(np.median(array_hu[around])))
    return float(np.clip(level, CEMENT_EDGE_FLOOR_HU, parameters.cement_min_hu))


def segment_cement(array_hu: np.ndarray, parameters: MeasurementParameters) -> tuple[np.ndarray, float]:
    """Cement mask ``[k, j, i]`` of ``array_hu`` (HU) and the edge level (HU) of the largest piece.

    Each connected piece of thresholded cement gets its own half-maximum level
    (:func:`cement_edge_level` of that piece: small leaks, whose blurred peak is lower than a
    large blob's, get a lower level) and grows by up to ``EDGE_GROWTH_STEPS`` voxels
    (26-neighbourhood) through voxels at or above that level and at or below ``cement_max_hu``.
    """
    core = threshold_cement(array_hu, parameters)
    if not core.any():
        return core, parameters.cement_min_hu
    labels = sitk.GetArrayFromImage(
        sitk.ConnectedComponent(sitk.GetImageFromArray(core.astype(np.uint8)), True)
    )
    count = int(labels.max())
    levels = np.full(count + 1, np.inf)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    # Each piece's level from its own neighbourhood: its box, grown by the two voxels the ring
    # around it reaches (the same voxels as in the whole array, at a fraction of the work).
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        box = tuple(
            slice(max(0, axis.start - 2), min(size, axis.stop + 2)) for axis, size in zip(box, labels.shape)
        )
        levels[label] = cement_edge_level(array_hu[box], labels[box] == label, parameters)
    largest_level = float(levels[1 + int(np.argmax(sizes[1:]))])
    grown = labels.astype(np.int32)
    below_top = array_hu <= parameters.cement_max_hu
    for _ in range(EDGE_GROWTH_STEPS):
        reached = sitk.GetArrayFromImage(
            sitk.GrayscaleDilate(sitk.GetImageFromArray(grown), [1, 1, 1], sitk.sitkBox)
        )
        add = (grown == 0) & (reached > 0) & below_top & (array_hu >= levels[reached])
        if not add.any():
            break
        grown = np.where(add, reached, grown)
    return grown > 0, largest_level
