"""Measure one vertebra of a CT: segment (or take given masks), then measure.

This is the function the command line, the Slicer logic and the tests share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body_segmentation import BodySegmentationSettings, segment_vertebral_body
from .cement_segmentation import segment_cement
from .ct_checks import check_ct_intensities, check_points_in_volume
from .ct_volume import CtVolume
from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .measurement import measure_masks, puncture_side_voxels
from .parameters import MeasurementParameters
from .results import VertebraMeasurement
from .split_plane import check_endplate_points, check_side, split_plane_from_endplates

CEMENT_SEARCH_MARGIN_MM = 5.0
"""How far beyond the body's axial extent (mm) cement still counts as this vertebra's."""


@dataclass
class VertebraResult:
    """One vertebra's measurement with the masks behind it.

    Masks are boolean ``[k, j, i]`` arrays on ``geometry`` (the CT's grid).
    ``segmentation_source`` is ``automatic`` or ``given``.
    """

    measurement: VertebraMeasurement
    geometry: VolumeGeometry
    body_mask: np.ndarray
    cement_mask: np.ndarray
    puncture_side_cement_mask: np.ndarray
    extravertebral_cement_mask: np.ndarray
    segmentation_source: str

    def masks_by_segment_name(self) -> dict[str, np.ndarray]:
        """The four output masks keyed by their segment names (see :mod:`segments`)."""
        from .segments import BODY, CEMENT, EXTRAVERTEBRAL_CEMENT, PUNCTURE_SIDE_CEMENT

        return {
            BODY: self.body_mask,
            CEMENT: self.cement_mask & self.body_mask,
            PUNCTURE_SIDE_CEMENT: self.puncture_side_cement_mask,
            EXTRAVERTEBRAL_CEMENT: self.extravertebral_cement_mask,
        }


def automatic_masks(
    ct: CtVolume,
    upper_ras: np.ndarray,
    lower_ras: np.ndarray,
    parameters: MeasurementParameters,
    settings: BodySegmentationSettings | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Body and cement masks of the vertebra between the endplate points, on the CT grid.

    Cement is thresholded with its edges at half maximum (see :mod:`cement_segmentation`).
    The cement mask holds the cement within the body's neighbourhood: the region searched for
    the body, up to ``CEMENT_SEARCH_MARGIN_MM`` beyond its axial extent.
    """
    body_result = segment_vertebral_body(ct, upper_ras, lower_ras, parameters, settings)
    body = np.zeros(ct.geometry.shape, dtype=bool)
    body[body_result.box] = body_result.mask

    crop_cement, _ = segment_cement(ct.array_hu[body_result.box], parameters)
    k, j, i = np.nonzero(crop_cement)
    if k.size:
        axial = body_result.frame.to_frame(body_result.geometry.voxel_centers_ras((k, j, i)))[:, 2]
        body_k = np.nonzero(body_result.mask)
        body_axial = body_result.frame.to_frame(body_result.geometry.voxel_centers_ras(body_k))[:, 2]
        low = min(0.0, float(body_axial.min())) - CEMENT_SEARCH_MARGIN_MM
        high = max(body_result.frame.height_mm, float(body_axial.max())) + CEMENT_SEARCH_MARGIN_MM
        outside = (axial < low) | (axial > high)
        crop_cement[k[outside], j[outside], i[outside]] = False
    cement = np.zeros(ct.geometry.shape, dtype=bool)
    cement[body_result.box] = crop_cement
    return body, cement, list(body_result.warnings)


def measure_vertebra(
    ct: CtVolume,
    upper_ras: np.ndarray,
    lower_ras: np.ndarray,
    side: str,
    *,
    level: str = "",
    parameters: MeasurementParameters | None = None,
    body_mask: np.ndarray | None = None,
    cement_mask: np.ndarray | None = None,
    settings: BodySegmentationSettings | None = None,
) -> VertebraResult:
    """Measure one vertebra of ``ct`` between its endplate midpoints (RAS mm).

    Without masks the body and cement are segmented automatically. With both masks given
    (boolean ``[k, j, i]`` on the CT grid, e.g. corrected by hand) they are measured as they
    are, without re-segmenting.
    """
    parameters = parameters or MeasurementParameters()
    side = check_side(side)
    upper, lower = check_endplate_points(upper_ras, lower_ras)
    check_points_in_volume(ct.geometry, upper, lower)
    split_plane_from_endplates(upper, lower, side)
    if (body_mask is None) != (cement_mask is None):
        raise CementLeakageError("give both the vertebral body and the cement mask, or neither")
    warnings: list[str] = []
    if body_mask is None:
        parameters, intensity_warnings = check_ct_intensities(ct, parameters)
        warnings.extend(intensity_warnings)
        body, cement, segmentation_warnings = automatic_masks(ct, upper, lower, parameters, settings)
        warnings.extend(segmentation_warnings)
        source = "automatic"
    else:
        body = np.asarray(body_mask, dtype=bool)
        cement = np.asarray(cement_mask, dtype=bool)
        source = "given"
    measurement = measure_masks(
        body, cement, ct.geometry, upper, lower, side, level=level, parameters=parameters
    )
    measurement.warnings = warnings + measurement.warnings
    measurement.segmentation_source = source
    measurement.input_sha256 = ct.sha256
    measurement.input_source = ct.source
    measurement.parameters = parameters.as_dict()
    plane = split_plane_from_endplates(upper, lower, side)
    cement_in_body = cement & body
    return VertebraResult(
        measurement=measurement,
        geometry=ct.geometry,
        body_mask=body,
        cement_mask=cement,
        puncture_side_cement_mask=puncture_side_voxels(cement_in_body, ct.geometry, plane),
        extravertebral_cement_mask=cement & ~body,
        segmentation_source=source,
    )
