"""Volumes and ratios of given body and cement masks (no segmentation here).

Slicer's Segment Statistics counts a segment's volume as voxel count times voxel volume on
its binary labelmap; this module does the same, so numbers agree with what a Slicer user
sees for the same segments.
"""

from __future__ import annotations

import numpy as np

from .body_centre_line import off_centre_warning, points_off_centre
from .cutoff_margin import near_cutoff_warnings
from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .parameters import MeasurementParameters
from .results import VertebraMeasurement
from .split_plane import SplitPlane, check_side, split_plane_from_endplates

MM3_PER_CM3 = 1000.0


def bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """The smallest ``[k, j, i]`` slices holding every true voxel of a 3D mask, or None if empty.

    Each axis is searched within the extent already found along the axes before it, so a large
    volume is read about once.
    """
    boxes: list[slice] = []
    for axis in range(3):
        view = mask[tuple(boxes) + (slice(None),) * (3 - axis)]
        other_axes = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(np.any(view, axis=other_axes))
        if present.size == 0:
            return None
        boxes.append(slice(int(present[0]), int(present[-1]) + 1))
    return tuple(boxes)


def voxels_across(length_mm: float, step_mm: float) -> int:
    """A length (a radius, a band's width, a reach) of ``length_mm`` in whole voxels of ``step_mm``:
    the nearest count, halves rounded up, at least one. Spacing read with rounding noise (a DICOM
    slice spacing of 1.0000000000000029 mm) counts as the spacing it stands for."""
    return max(1, int(np.floor(length_mm / step_mm + 0.5 + 1e-6)))


def grown_box(
    box: tuple[slice, ...], margins: tuple[int, ...] | np.ndarray, shape: tuple[int, ...]
) -> tuple[slice, ...]:
    """``box`` (``[k, j, i]`` slices with explicit starts and stops) grown by ``margins`` voxels
    along each of its axes, within an array of ``shape``."""
    return tuple(
        slice(max(0, b.start - int(m)), min(size, b.stop + int(m))) for b, m, size in zip(box, margins, shape)
    )


def puncture_side_voxels(mask: np.ndarray, geometry: VolumeGeometry, plane: SplitPlane) -> np.ndarray:
    """Boolean array, same shape as ``mask``: its voxels on the puncture side, as many as that side
    holds.

    Each voxel of ``mask`` holds the share of it beyond the plane, ``0.5 + d / w`` kept within 0
    and 1, with ``d`` the signed distance (mm) of its centre and ``w`` its extent (mm) along the
    plane's normal (exact for a plane parallel to a face of the voxel, the mean share otherwise).
    The voxels wholly beyond are taken and, of those the plane cuts, the ones with the largest
    share until the count is the shares' sum rounded (among equal shares the ones nearest the
    plane's point, then by R, A, S: the same voxels whatever the crop). Counting each voxel by its
    centre instead would put a layer the plane cuts wholly on one side: up to half a voxel times
    the cement's cross-section, 3% of PSBCV on 0.6 mm pixels, when the plane runs through a layer of
    voxel centres (as it does when both endplate points are marked on one sagittal slice).
    """
    result = np.zeros(mask.shape, dtype=bool)
    box = bounding_box(mask)
    if box is None:
        return result
    local = np.nonzero(mask[box])
    kji = tuple(index + box[axis].start for axis, index in enumerate(local))
    centres = geometry.voxel_centers_ras(kji)
    extent_mm = float(np.abs(plane.normal_ras @ geometry.ijk_to_ras[:3, :3]).sum())
    share = np.clip(0.5 + plane.signed_distance_mm(centres) / extent_mm, 0.0, 1.0)
    wanted = int(round(float(share.sum())))
    from_point = np.linalg.norm(centres - plane.point_ras, axis=1)
    order = np.lexsort((centres[:, 2], centres[:, 1], centres[:, 0], from_point, -share))[:wanted]
    result[tuple(index[order] for index in kji)] = True
    return result


def _check_mask(name: str, mask: np.ndarray, geometry: VolumeGeometry) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != geometry.shape:
        raise CementLeakageError(
            f"the {name} mask has shape {mask.shape} but its grid is {geometry.shape}; "
            "resample the masks onto one grid"
        )
    return mask.astype(bool, copy=False)


def measure_masks(
    body_mask: np.ndarray,
    cement_mask: np.ndarray,
    geometry: VolumeGeometry,
    upper_ras: np.ndarray,
    lower_ras: np.ndarray,
    side: str,
    *,
    level: str = "",
    parameters: MeasurementParameters | None = None,
    unseen_dish_share: float | None = None,
    body_axis_ras: tuple[np.ndarray, np.ndarray] | None = None,
) -> VertebraMeasurement:
    """Measure VBV, BCV, PSBCV and both ratios from masks on one grid.

    Args:
        body_mask: vertebral body, boolean ``[k, j, i]`` on ``geometry``.
        cement_mask: cement belonging to this vertebra (inside and outside the body),
            boolean ``[k, j, i]`` on ``geometry``. Cement outside the body is reported as
            extravertebral cement, never in BCV.
        geometry: the masks' grid (IJK-to-RAS, mm).
        upper_ras, lower_ras: upper and lower endplate midpoints (RAS mm).
        side: puncture side, ``left`` (patient left) or ``right``.
        level: vertebra label such as ``L1`` (free text).
        parameters: cut-off and thresholds (only the cut-off is used here).
        unseen_dish_share: share of VBV (0 to 1) that dishes between thick CT slices could hold
            beyond the endplate points (:mod:`unseen_dishes`), None when not estimated; a flag
            they could lower below the cut-off is marked near it.
        body_axis_ras: two points on the body's own axis (upper, lower; RAS mm) where the body
            was segmented along it, not along the points' line; the body's centre line, against
            which points off it are named, is fitted in their frame.

    Returns:
        The measurement; volumes are voxel count times voxel volume (cm³).
    """
    parameters = parameters or MeasurementParameters()
    side = check_side(side)
    body = _check_mask("vertebral body", body_mask, geometry)
    cement = _check_mask("cement", cement_mask, geometry)
    plane = split_plane_from_endplates(upper_ras, lower_ras, side)

    body_voxels = int(np.count_nonzero(body))
    if body_voxels == 0:
        raise CementLeakageError(
            "the vertebral body mask is empty, so VBV is zero and no ratio exists: segment the body first"
        )
    body_box = bounding_box(body)
    body_centres = geometry.voxel_centers_ras(
        tuple(index + body_box[axis].start for axis, index in enumerate(np.nonzero(body[body_box])))
    )
    distances = plane.signed_distance_mm(body_centres)
    if distances.min() > 0.0 or distances.max() <= 0.0:
        raise CementLeakageError(
            "the split plane through the endplate points misses the vertebral body (all of the body lies "
            "on one side): check that the points mark the midpoints of this vertebra's endplates"
        )

    # The body lies within its box, and so does the cement inside it.
    cement_in_body = body[body_box] & cement[body_box]
    cement_in_body_voxels = int(np.count_nonzero(cement_in_body))
    body_box_geometry = geometry.cropped(body_box)
    puncture_side_cement_voxels = int(
        np.count_nonzero(puncture_side_voxels(cement_in_body, body_box_geometry, plane))
    )
    extravertebral_voxels = int(np.count_nonzero(cement)) - cement_in_body_voxels

    voxel_cm3 = geometry.voxel_volume_mm3 / MM3_PER_CM3
    vbv = body_voxels * voxel_cm3
    bcv = cement_in_body_voxels * voxel_cm3
    psbcv = puncture_side_cement_voxels * voxel_cm3
    bcv_pct = 100.0 * cement_in_body_voxels / body_voxels
    psbcv_pct = 100.0 * puncture_side_cement_voxels / body_voxels
    warnings = near_cutoff_warnings(psbcv_pct, parameters.cutoff_pct, unseen_dish_share)
    near_cutoff = bool(warnings)
    off_centre = points_off_centre(body_centres, upper_ras, lower_ras, plane, body_axis_ras)
    if off_centre is not None and off_centre.named:
        centred_side = puncture_side_voxels(cement_in_body, body_box_geometry, off_centre.centred_plane(side))
        centred_pct = 100.0 * np.count_nonzero(centred_side) / body_voxels
        warnings.append(off_centre_warning(off_centre, side, psbcv_pct, centred_pct))
    if cement_in_body_voxels == 0:
        warnings.append(
            "no cement inside the vertebral body (BCV = 0): check the level, the endplate points and the "
            "cement threshold"
        )
    return VertebraMeasurement(
        level=level,
        side=side,
        vbv_cm3=vbv,
        bcv_cm3=bcv,
        psbcv_cm3=psbcv,
        bcv_vbv_pct=bcv_pct,
        psbcv_vbv_pct=psbcv_pct,
        cutoff_pct=float(parameters.cutoff_pct),
        exceeds_cutoff=bool(psbcv_pct > parameters.cutoff_pct),
        near_cutoff=near_cutoff,
        extravertebral_cement_cm3=extravertebral_voxels * voxel_cm3,
        upper_ras=[float(v) for v in np.asarray(upper_ras, float)],
        lower_ras=[float(v) for v in np.asarray(lower_ras, float)],
        plane_normal_ras=[float(v) for v in plane.normal_ras],
        body_voxels=body_voxels,
        cement_in_body_voxels=cement_in_body_voxels,
        puncture_side_cement_voxels=puncture_side_cement_voxels,
        voxel_volume_mm3=geometry.voxel_volume_mm3,
        parameters=parameters.as_dict(),
        warnings=warnings,
        points_off_centre_mm=None if off_centre is None else [off_centre.upper_mm, off_centre.lower_mm],
    )
