"""The background under a flat leak in a disc on thick slices, from the layers around it along the
vertebra's axis.

A lens of cement thinner than the slices, in a disc tilted against them (a wedged or tilted
vertebra), meets each slice in a band of disc between stripes of endplate. A ring around the lens
in its own slices lies partly in those stripes: on the phantoms its median stood 50-150 HU above
the disc under the lens, and such leaks read a third low. The disc and its endplates are layers
across the vertebra's axis, and a scene of flat layers reads the same at every voxel whose centre
lies at the same height along the axis, whatever the slices' tilt: the slice and the blur average
the same layers alike. The surroundings' median in thin bins along the axis is therefore the
background of every voxel around the lens, and the lens's region may reach past its faint rim
without taking in the endplates' blur as cement.
"""

from __future__ import annotations

import numpy as np

PROFILE_BIN_MM = 0.25
"""Height (mm) of a bin along the axis: a fraction of the blur and of an endplate's thickness."""


def background_along_axis(
    array_hu: np.ndarray,
    surroundings: np.ndarray,
    axis_kji: np.ndarray,
    spacing_kji: np.ndarray,
    bin_mm: float = PROFILE_BIN_MM,
) -> np.ndarray:
    """Background (HU, float32, shape of ``array_hu``) of every voxel of a box (``[k, j, i]``).

    The voxels of ``surroundings`` (bool, same shape) are binned by the height of their centres
    along ``axis_kji`` (unit vector in the box's k, j, i axes scaled to mm; voxels ``spacing_kji``
    mm) in bins of ``bin_mm``; each voxel takes the median of the bins at its height, linearly
    interpolated between bin centres, and the end bins' median beyond them.
    """
    step_mm = np.asarray(spacing_kji, np.float32)[:, None, None, None]
    grid_mm = np.indices(array_hu.shape, dtype=np.float32) * step_mm
    height_mm = np.tensordot(np.asarray(axis_kji, np.float32), grid_mm, axes=1)
    bins = np.floor(height_mm[surroundings] / bin_mm).astype(np.int64)
    values = array_hu[surroundings].astype(np.float32)
    occupied, which = np.unique(bins, return_inverse=True)
    medians = np.array([np.median(values[which == n]) for n in range(occupied.size)], dtype=np.float32)
    centres_mm = (occupied + 0.5) * bin_mm
    return np.interp(height_mm, centres_mm, medians).astype(np.float32)
