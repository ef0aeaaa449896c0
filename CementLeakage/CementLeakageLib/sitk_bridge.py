"""Conversions between numpy arrays on a VolumeGeometry and SimpleITK images.

SimpleITK images are in LPS; VolumeGeometry is RAS. Arrays are ``[k, j, i]`` on both sides.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .geometry import LPS_TO_RAS, VolumeGeometry


def to_sitk(array: np.ndarray, geometry: VolumeGeometry) -> sitk.Image:
    """A SimpleITK image (LPS) holding ``array`` ``[k, j, i]`` on ``geometry``."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    lps = LPS_TO_RAS @ geometry.ijk_to_ras
    image.SetSpacing([float(v) for v in geometry.spacing_mm])
    image.SetOrigin([float(v) for v in lps[:3, 3]])
    image.SetDirection([float(v) for v in (lps[:3, :3] / geometry.spacing_mm).ravel()])
    return image


def geometry_of(image: sitk.Image) -> VolumeGeometry:
    """The RAS VolumeGeometry of a SimpleITK image (LPS)."""
    matrix = np.eye(4)
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    matrix[:3, :3] = direction @ np.diag(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    size = image.GetSize()
    return VolumeGeometry(LPS_TO_RAS @ matrix, (size[2], size[1], size[0]))


def box_around_ras_points(
    geometry: VolumeGeometry, points_ras: np.ndarray, margin_voxels: int = 2
) -> tuple[slice, slice, slice] | None:
    """``[k, j, i]`` slices of the grid that hold all RAS points (mm), clipped; None if outside."""
    ijk = geometry.ras_to_ijk_points(points_ras)
    low = np.floor(ijk.min(axis=0)).astype(int) - margin_voxels
    high = np.ceil(ijk.max(axis=0)).astype(int) + margin_voxels + 1
    size_ijk = np.array(geometry.shape[::-1])
    low = np.clip(low, 0, size_ijk)
    high = np.clip(high, 0, size_ijk)
    if np.any(high <= low):
        return None
    return (slice(low[2], high[2]), slice(low[1], high[1]), slice(low[0], high[0]))


def resample_onto(
    image: sitk.Image, reference: VolumeGeometry, *, linear: bool, default_value: float
) -> np.ndarray:
    """Resample a SimpleITK image onto ``reference``; returns ``[k, j, i]`` float32 or original type."""
    reference_image = sitk.Image([int(n) for n in reference.shape[::-1]], sitk.sitkUInt8)
    lps = LPS_TO_RAS @ reference.ijk_to_ras
    reference_image.SetSpacing([float(v) for v in reference.spacing_mm])
    reference_image.SetOrigin([float(v) for v in lps[:3, 3]])
    reference_image.SetDirection([float(v) for v in (lps[:3, :3] / reference.spacing_mm).ravel()])
    interpolator = sitk.sitkLinear if linear else sitk.sitkNearestNeighbor
    output_type = sitk.sitkFloat32 if linear else image.GetPixelID()
    resampled = sitk.Resample(
        image, reference_image, sitk.Transform(), interpolator, float(default_value), output_type
    )
    return sitk.GetArrayFromImage(resampled)
