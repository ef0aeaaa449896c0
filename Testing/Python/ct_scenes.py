"""Scenes painted on a fine grid turned into CT voxels, for the tests: blurred by a CT's point
spread and averaged over each voxel (partial volume)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

CT_BLUR_MM = 0.6
"""The point spread (Gaussian sigma, mm) the test scenes are blurred with."""


def on_ct_voxels(
    fine_hu: np.ndarray,
    fine_mm: float,
    spacing_mm: tuple[float, float, float],
    blur_mm: float = CT_BLUR_MM,
) -> np.ndarray:
    """HU ``[k, j, i]`` on voxels of ``spacing_mm`` (i j k, each a whole number of ``fine_mm``) of a
    scene painted on a grid of ``fine_mm`` (``[k, j, i]``, from the grid's first corner): blurred
    by ``blur_mm`` (Gaussian sigma, mm) and averaged over each voxel; fine points beyond the last
    whole voxel are dropped."""
    image = sitk.GetImageFromArray(fine_hu.astype(np.float32))
    image.SetSpacing([fine_mm] * 3)
    blurred = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(image, blur_mm))
    factors = [int(round(s / fine_mm)) for s in spacing_mm[::-1]]
    shape = [n // f for n, f in zip(blurred.shape, factors)]
    trimmed = blurred[: shape[0] * factors[0], : shape[1] * factors[1], : shape[2] * factors[2]]
    blocks = trimmed.reshape(shape[0], factors[0], shape[1], factors[1], shape[2], factors[2])
    return blocks.mean(axis=(1, 3, 5))
