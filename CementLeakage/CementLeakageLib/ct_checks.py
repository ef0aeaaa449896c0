"""Checks that a CT is in Hounsfield units and that the endplate points lie inside it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .ct_volume import CtVolume
from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .metal_artifacts import METAL_EXTENDED_HU
from .parameters import CT_SCALE_TOP_HU, MeasurementParameters

AIR_EXPECTED_BELOW_HU = -500.0
"""A CT in HU has air (about -1000 HU) around the patient; its low percentile lies below this."""
BONE_EXPECTED_ABOVE_HU = 300.0
_SAMPLE_SIZE = 2_000_000


def _sample(array: np.ndarray) -> np.ndarray:
    flat = array.reshape(-1)
    step = max(1, flat.size // _SAMPLE_SIZE)
    return flat[::step]


def check_finite_intensities(array_hu: np.ndarray) -> None:
    """Refuse a CT (HU, any shape) that is empty or holds voxels that are not finite numbers (NaN
    or infinite: a float image with masked or failed voxels), wherever they lie. A threshold
    takes such a voxel for neither bone nor cement, and a volume through it would read low
    with nothing said. Integer storage holds none; a float CT costs one pass over its voxels."""
    if array_hu.size == 0:
        raise CementLeakageError("the CT holds no voxels: check the file")
    if array_hu.dtype.kind != "f" or np.isfinite(np.sum(array_hu, dtype=np.float64)):
        return
    bad = int(np.count_nonzero(~np.isfinite(array_hu)))
    raise CementLeakageError(
        f"the CT holds {bad} voxel(s) that are not numbers (NaN or infinite) among {array_hu.size}: "
        "give the CT as exported from the scanner, or fill those voxels (e.g. with -1024 HU) "
        "and save it again"
    )


def check_ct_intensities(
    ct: CtVolume, parameters: MeasurementParameters
) -> tuple[MeasurementParameters, list[str]]:
    """Refuse images that are not CT in HU; adapt the upper bounds to an extended CT scale.

    Returns the parameters to use and warnings. When voxels lie above 3071 HU (scanners with
    an extended scale store cement there) and the upper bounds are the default 3071 HU, the
    bounds are raised to the image maximum so the cement's core is kept, with a warning.
    """
    check_finite_intensities(ct.array_hu)
    sample = _sample(ct.array_hu)
    low, high = np.percentile(sample, [0.5, 99.99])
    if float(np.ptp(sample)) == 0.0:
        raise CementLeakageError("the CT is constant (one intensity everywhere): check the file")
    if low > AIR_EXPECTED_BELOW_HU:
        raise CementLeakageError(
            f"intensities look like MR or unscaled CT (lowest values near {low:.0f}, no air near -1000): "
            "expected Hounsfield units; give a CT with rescale slope and intercept applied"
        )
    maximum = float(ct.array_hu.max())
    if maximum < BONE_EXPECTED_ABOVE_HU:
        raise CementLeakageError(
            f"the CT's brightest voxel is {maximum:.0f} HU, so it holds no bone: "
            "check the image and its scaling"
        )
    warnings: list[str] = []
    above = int(np.count_nonzero(ct.array_hu > CT_SCALE_TOP_HU)) if maximum > CT_SCALE_TOP_HU else 0
    if above and parameters.cement_max_hu == CT_SCALE_TOP_HU:
        # Never up to metal: cement stays below METAL_EXTENDED_HU even on extended scales.
        top = float(np.ceil(min(maximum, METAL_EXTENDED_HU)))
        parameters = replace(
            parameters,
            cement_max_hu=top,
            bone_max_hu=max(parameters.bone_max_hu, top),
        )
        warnings.append(
            f"extended CT scale: {above} voxels lie above {CT_SCALE_TOP_HU:.0f} HU (up to {maximum:.0f} HU); "
            f"the cement and bone upper bounds were raised to {top:.0f} HU so the cement's core is kept"
        )
    del high
    return parameters, warnings


def check_points_in_volume(geometry: VolumeGeometry, upper_ras: np.ndarray, lower_ras: np.ndarray) -> None:
    """Refuse endplate points (RAS mm) that lie outside the CT volume, naming the point and the bounds."""
    corners = geometry.ijk_to_ras_points(
        np.array(
            [
                [i, j, k]
                for i in (-0.5, geometry.shape[2] - 0.5)
                for j in (-0.5, geometry.shape[1] - 0.5)
                for k in (-0.5, geometry.shape[0] - 0.5)
            ]
        )
    )
    low, high = corners.min(axis=0), corners.max(axis=0)
    for name, point in (("upper", upper_ras), ("lower", lower_ras)):
        if not geometry.contains_ras(np.asarray(point, dtype=float)):
            coordinates = ", ".join(f"{value:.1f}" for value in np.asarray(point, dtype=float))
            raise CementLeakageError(
                f"the {name} endplate point ({coordinates}) (RAS mm) lies outside the CT volume, which spans "
                f"R {low[0]:.1f}..{high[0]:.1f}, A {low[1]:.1f}..{high[1]:.1f}, "
                f"S {low[2]:.1f}..{high[2]:.1f}: "
                "place it on the vertebra (RAS, not LPS)"
            )
