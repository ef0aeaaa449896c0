"""Cement planted into a given CT as solids of known volume: a truth for measuring a real vertebra.

A real scan with expert labels has no analytic cement. Planting solids (:mod:`phantom_shapes`,
RAS mm) into it gives one: each voxel takes the share of its extent inside the solids (exact
inside tests on a fine lattice, as the phantom's cement), that share is blurred as the scanner
blurs (Gaussian, SD in mm) and the voxel is mixed towards the cement's intensity by it. The
blurred share sums to the solids' volume in voxels, so the cement a voxel gains over the anatomy
it held adds up to the solids' own volume against that anatomy. The anatomy keeps its own blur.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import SimpleITK as sitk

from .ct_volume import CtVolume
from .phantom import (
    CEMENT_MEAN_HU,
    CEMENT_SD_HU,
    CT_SCALE_HU,
    box_averaged_occupancy,
    gaussian_blurred,
    index_box,
    slabs,
)
from .phantom_shapes import ImplicitShape
from .sitk_bridge import to_sitk

PLANTED_BLUR_MM = 0.6
"""Gaussian SD (mm) of the planted cement's blur: a standard reconstruction kernel, as the
phantoms' (``PhantomSpec.blur_sigma_mm``)."""


def cement_share(ct: CtVolume, solids: Sequence[ImplicitShape]) -> np.ndarray:
    """Share (0 to 1, float32 ``[k, j, i]`` on ``ct``'s grid) of each voxel's extent inside any of
    ``solids`` (RAS mm; solids that do not overlap one another), before any blur."""
    share = np.zeros(ct.geometry.shape, dtype=np.float32)
    margin_mm = float(np.max(ct.geometry.spacing_mm))
    for solid in solids:
        for slab in slabs(index_box(ct.geometry, solid, 2.0 * margin_mm)):
            share[slab] += box_averaged_occupancy(ct.geometry, solid, slab)
    return np.minimum(share, 1.0)


def plant_cement(
    ct: CtVolume,
    solids: Sequence[ImplicitShape],
    *,
    cement_hu: float = CEMENT_MEAN_HU,
    cement_sd_hu: float = CEMENT_SD_HU,
    blur_sigma_mm: float = PLANTED_BLUR_MM,
    seed: int = 0,
) -> CtVolume:
    """A copy of ``ct`` (HU) with cement of ``cement_hu`` (HU; white noise of ``cement_sd_hu``
    drawn with ``seed``) planted where ``solids`` are (RAS mm), blurred by ``blur_sigma_mm`` (mm,
    Gaussian SD), and kept within the CT scale (``CT_SCALE_HU``) as a scanner stores it. Its
    ``source`` names the planting after the original's."""
    share = cement_share(ct, solids)
    if blur_sigma_mm > 0.0:
        share = sitk.GetArrayFromImage(gaussian_blurred(to_sitk(share, ct.geometry), blur_sigma_mm))
    rng = np.random.default_rng(seed)
    cement = cement_hu + cement_sd_hu * rng.standard_normal(share.shape, dtype=np.float32)
    anatomy = ct.array_hu.astype(np.float32)
    planted = anatomy + np.clip(share, 0.0, 1.0) * (cement - anatomy)
    planted = np.clip(planted, *CT_SCALE_HU)
    return replace(ct, array_hu=planted.astype(np.float32), source=f"{ct.source} with planted cement".strip())
