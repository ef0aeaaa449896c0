"""Metal next to the cement (pedicle screws, needles) and the streaks it casts.

Metal is far denser than cement. On the usual 12-bit scale it saturates at the top value
(3071 HU) in solid blocks, where cement only touches the top in scattered voxels; on an
extended scale it lies above ``METAL_EXTENDED_HU``. Metal is not cement: it is removed from the
cement mask (with a one-voxel margin for its blooming) and reported. Streak artefacts show as
air-dark voxels inside bone; they are reported so the reader reviews the body mask.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .parameters import CT_SCALE_TOP_HU

METAL_EXTENDED_HU = 6000.0
"""Above this (HU, extended CT scales) a voxel is metal, not cement (cement stays below ~4000 HU)."""
MIN_METAL_MM3 = 10.0
"""Smallest saturated blob (mm³) taken as metal rather than noise in dense cement."""
STREAK_HU = -300.0
"""Voxels this dark inside bone are streak artefacts (no air lies inside a vertebral body)."""
MIN_STREAK_MM3 = 20.0
"""Streak volume (mm³) inside the body above which a warning is given."""


def find_metal(array_hu: np.ndarray, voxel_mm3: float) -> np.ndarray:
    """Metal voxels of ``array_hu`` (HU, ``[k, j, i]``): above ``METAL_EXTENDED_HU``, or, on the
    12-bit scale (nothing above 3071 HU), saturated voxels that form solid cores (they survive a
    one-voxel opening) of at least ``MIN_METAL_MM3``. Cement touches the top of the scale only in
    scattered voxels; a cement core so dense that it saturates solidly would be taken for metal,
    and the warning asks the reader to check exactly that."""
    metal = array_hu > METAL_EXTENDED_HU
    if array_hu.size == 0 or float(array_hu.max()) > CT_SCALE_TOP_HU + 0.5:
        return metal  # an extended scale: nothing saturates, dense cement lies above 3071 HU
    saturated = array_hu >= CT_SCALE_TOP_HU - 0.5
    if not saturated.any():
        return metal
    image = sitk.GetImageFromArray(saturated.astype(np.uint8))
    core = sitk.BinaryMorphologicalOpening(image, [1, 1, 1])
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(core, True))
    counts = np.bincount(labels.ravel())
    large = np.flatnonzero(counts * voxel_mm3 >= MIN_METAL_MM3)
    large = large[large > 0]
    if large.size:
        metal |= grow(np.isin(labels, large), 1) & saturated
    return metal


def grow(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """``mask`` dilated by ``radius`` voxels (box neighbourhood)."""
    if not mask.any():
        return mask
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.BinaryDilate(image, [radius] * 3)) > 0


def metal_warning(metal: np.ndarray, voxel_mm3: float) -> str | None:
    """The warning for metal found near the vertebra, or None."""
    if not metal.any():
        return None
    volume = float(metal.sum()) * voxel_mm3 / 1000.0
    return (
        f"{volume:.2f} cm3 of metal-dense voxels near the vertebra (pedicle screws or a needle?) were not "
        "counted as cement; review the cement segment next to them (cement so dense that it saturates the "
        "CT scale would be left out too)"
    )


def streak_warning(array_hu: np.ndarray, body: np.ndarray, voxel_mm3: float) -> str | None:
    """A warning when the body holds air-dark voxels (streak artefacts), or None."""
    dark = body & (array_hu < STREAK_HU)
    volume = float(dark.sum()) * voxel_mm3
    if volume < MIN_STREAK_MM3:
        return None
    return (
        f"{volume / 1000.0:.2f} cm3 inside the vertebral body is darker than {STREAK_HU:.0f} HU (streak "
        "artefacts from metal?): review the body mask before trusting VBV"
    )
