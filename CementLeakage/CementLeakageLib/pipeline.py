"""Measure one vertebra of a CT: segment (or take given masks), then measure.

This is the function the command line, the Slicer logic and the tests share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk

from .body_segmentation import BodySegmentationSettings, segment_vertebral_body
from .cement_past_points import cement_past_point_warnings, is_cement_past_point_warning
from .cement_segmentation import segment_cement
from .ct_checks import check_ct_intensities, check_points_in_volume
from .ct_volume import CtVolume
from .errors import CementLeakageError
from .faint_disc_cement import find_faint_disc_cement
from .geometry import VolumeGeometry
from .leakage_components import ExtravertebralCement, describe_extravertebral_cement
from .measurement import bounding_box, measure_masks, puncture_side_voxels
from .metal_artifacts import find_metal, grow, metal_warning, streak_warning
from .parameters import MeasurementParameters
from .results import VertebraMeasurement
from .slice_centred_points import slice_centre_warnings
from .split_plane import check_endplate_points, check_side, split_plane_from_endplates

CEMENT_SEARCH_MARGIN_MM = 8.0
"""How far beyond the body's axial extent (mm) the centre of a piece of cement may lie for it to
count as this vertebra's (a leak into the disc does; cement in the next vertebra does not)."""


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
    extravertebral: ExtravertebralCement | None = None
    array_hu: np.ndarray | None = field(default=None, repr=False)
    """The CT (HU, ``[k, j, i]`` on ``geometry``) the masks were measured on, when at hand: each
    extravertebral component then carries its peak intensity."""

    def masks_by_segment_name(self, with_components: bool = False) -> dict[str, np.ndarray]:
        """The four output masks keyed by their segment names (see :mod:`segments`), and with
        ``with_components`` one mask per listed extravertebral component
        (``Extravertebral 1: paravertebral, left``)."""
        from .segments import (
            BODY,
            CEMENT,
            EXTRAVERTEBRAL_CEMENT,
            PUNCTURE_SIDE_CEMENT,
            component_segment_name,
        )

        masks = {
            BODY: self.body_mask,
            CEMENT: self.cement_mask & self.body_mask,
            PUNCTURE_SIDE_CEMENT: self.puncture_side_cement_mask,
            EXTRAVERTEBRAL_CEMENT: self.extravertebral_cement_mask,
        }
        if with_components and self.extravertebral is not None:
            for component in self.extravertebral.components:
                name = component_segment_name(component.index, component.location, component.side)
                masks[name] = self.extravertebral.component_mask(component.index, self.body_mask.shape)
        return masks

    def describe_extravertebral_cement(self) -> None:
        """List the cement components outside the body into the measurement (see
        :mod:`leakage_components`); called again when the extravertebral cement changes."""
        measurement = self.measurement
        defaults = MeasurementParameters()
        cement_min_hu = measurement.parameters.get("cement_min_hu", defaults.cement_min_hu)
        bone_min_hu = measurement.parameters.get("bone_min_hu", defaults.bone_min_hu)
        self.extravertebral = describe_extravertebral_cement(
            self.body_mask,
            self.cement_mask,
            self.geometry,
            np.asarray(measurement.upper_ras),
            np.asarray(measurement.lower_ras),
            measurement.side,
            array_hu=self.array_hu,
            cement_min_hu=float(cement_min_hu),
            bone_min_hu=float(bone_min_hu),
        )
        described = self.extravertebral.as_dict()
        measurement.extravertebral_components = described["components"]
        measurement.leakage_cement_cm3 = described["leakage_volume_cm3"]
        measurement.unlisted_extravertebral_cement_cm3 = (
            described["ignored_volume_cm3"] + described["outside_box_volume_cm3"]
        )
        kept = [text for text in measurement.warnings if not is_cement_past_point_warning(text)]
        measurement.warnings = kept + cement_past_point_warnings(
            self.extravertebral.components, measurement.bcv_cm3
        )


def check_body_inside_field_of_view(body: np.ndarray, geometry: VolumeGeometry) -> None:
    """Refuse a body mask that reaches a face of the CT volume: the image cuts the vertebra, so
    its volume would be too small."""
    directions = {0: "right", 1: "anterior", 2: "superior"}
    for axis in range(3):
        for end, index in (("first", 0), ("last", body.shape[axis] - 1)):
            if not np.take(body, index, axis=axis).any():
                continue
            # The RAS direction that leaves the volume through this face.
            column = 2 - axis  # array axis k, j, i is IJK column 2, 1, 0
            outward = geometry.ijk_to_ras[:3, column] * (-1.0 if end == "first" else 1.0)
            dominant = int(np.argmax(np.abs(outward)))
            name = (
                directions[dominant]
                if outward[dominant] > 0
                else {0: "left", 1: "posterior", 2: "inferior"}[dominant]
            )
            raise CementLeakageError(
                f"the vertebral body reaches the {name} edge of the CT: the image cuts the vertebra and its "
                "volume would be too small; use a CT (or field of view) that covers the whole vertebra"
            )


class AutomaticMasks(NamedTuple):
    """What :func:`automatic_masks` found: body and cement (bool ``[k, j, i]`` on the CT grid),
    the warnings to show with them, the CT's blur measured on the bolus (SD, mm; None when
    the standard kernel's was assumed, see :mod:`ct_blur`), what dishes unseen between thick
    slices could add to VBV (%, :mod:`unseen_dishes`; None on slices up to 1 mm) and, where the
    body was segmented along its own axis, two points on that axis (upper, lower; RAS mm)."""

    body: np.ndarray
    cement: np.ndarray
    warnings: list[str]
    ct_blur_sigma_mm: float | None = None
    unseen_dish_vbv_pct: float | None = None
    body_axis_ras: tuple[np.ndarray, np.ndarray] | None = None


def automatic_masks(
    ct: CtVolume,
    upper_ras: np.ndarray,
    lower_ras: np.ndarray,
    parameters: MeasurementParameters,
    settings: BodySegmentationSettings | None = None,
) -> AutomaticMasks:
    """Body and cement masks of the vertebra between the endplate points, on the CT grid.

    Cement is thresholded with its edges at half maximum (see :mod:`cement_segmentation`); thin
    leaks into the discs that partial volume keeps under the threshold are added
    (:mod:`faint_disc_cement`), each with a warning to confirm it.
    The cement mask holds the cement within the body's neighbourhood: the region searched for
    the body, in whole connected pieces whose centre lies within ``CEMENT_SEARCH_MARGIN_MM`` of
    its axial extent.
    """
    body_result = segment_vertebral_body(ct, upper_ras, lower_ras, parameters, settings)
    body = np.zeros(ct.geometry.shape, dtype=bool)
    body[body_result.box] = body_result.mask
    check_body_inside_field_of_view(body, ct.geometry)

    crop_hu = ct.array_hu[body_result.box]
    axis_kji = ct.geometry.direction_kji(body_result.frame.axial_ras)
    found_cement = segment_cement(crop_hu, parameters, ct.geometry.spacing_mm, axis_kji, body_result.mask)
    crop_cement = found_cement.mask
    warnings = slice_centre_warnings(ct.geometry, upper_ras, lower_ras) + body_result.warnings
    faint, faint_leaks = find_faint_disc_cement(
        crop_hu,
        body_result.mask,
        found_cement,
        body_result.geometry,
        body_result.frame,
        parameters,
    )
    crop_cement |= faint
    warnings.extend(leak.warning(parameters.cement_min_hu) for leak in faint_leaks)
    voxel_mm3 = float(np.prod(ct.geometry.spacing_mm))
    metal = find_metal(crop_hu, voxel_mm3)
    if metal.any():
        crop_cement &= ~grow(metal, 1)
        warnings.append(metal_warning(metal, voxel_mm3))
    streaks = streak_warning(crop_hu, body_result.mask, voxel_mm3)
    if streaks:
        warnings.append(streaks)
    k, j, i = np.nonzero(crop_cement)
    if k.size:
        axial = body_result.frame.to_frame(body_result.geometry.voxel_centers_ras((k, j, i)))[:, 2]
        body_k = np.nonzero(body_result.mask)
        body_axial = body_result.frame.to_frame(body_result.geometry.voxel_centers_ras(body_k))[:, 2]
        low = min(0.0, float(body_axial.min())) - CEMENT_SEARCH_MARGIN_MM
        high = max(body_result.frame.height_mm, float(body_axial.max())) + CEMENT_SEARCH_MARGIN_MM
        # Whole pieces of cement are this vertebra's when their centre lies within the margin:
        # a leak into the disc stays whole, cement in the next vertebra stays out.
        labels = sitk.GetArrayFromImage(
            sitk.ConnectedComponent(sitk.GetImageFromArray(crop_cement.astype(np.uint8)), True)
        )[k, j, i]
        counts = np.bincount(labels)
        centres = np.bincount(labels, weights=axial) / np.maximum(counts, 1)
        outside = (centres[labels] < low) | (centres[labels] > high)
        crop_cement[k[outside], j[outside], i[outside]] = False
    cement = np.zeros(ct.geometry.shape, dtype=bool)
    cement[body_result.box] = crop_cement
    share = body_result.unseen_dish_share
    return AutomaticMasks(
        body,
        cement,
        warnings,
        found_cement.blur_sigma_mm,
        None if share is None else 100.0 * share,
        body_result.frame.endplate_points_ras if body_result.along_own_axis else None,
    )


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
    blur_sigma_mm = unseen_dish_vbv_pct = body_axis_ras = None
    if body_mask is None:
        parameters, intensity_warnings = check_ct_intensities(ct, parameters)
        warnings.extend(intensity_warnings)
        masks = automatic_masks(ct, upper, lower, parameters, settings)
        body, cement = masks.body, masks.cement
        blur_sigma_mm, unseen_dish_vbv_pct = masks.ct_blur_sigma_mm, masks.unseen_dish_vbv_pct
        body_axis_ras = masks.body_axis_ras
        warnings.extend(masks.warnings)
        source = "automatic"
    else:
        body = np.asarray(body_mask, dtype=bool)
        cement = np.asarray(cement_mask, dtype=bool)
        source = "given"
        try:
            check_body_inside_field_of_view(body, ct.geometry)
        except CementLeakageError as error:
            warnings.append(f"{error} (the given mask is measured as it is)")
    measurement = measure_masks(
        body,
        cement,
        ct.geometry,
        upper,
        lower,
        side,
        level=level,
        parameters=parameters,
        unseen_dish_share=None if unseen_dish_vbv_pct is None else unseen_dish_vbv_pct / 100.0,
        body_axis_ras=body_axis_ras,
    )
    measurement.warnings = warnings + measurement.warnings
    measurement.segmentation_source = source
    measurement.ct_blur_sigma_mm = blur_sigma_mm
    measurement.unseen_dish_vbv_pct = unseen_dish_vbv_pct
    measurement.input_sha256 = ct.sha256
    measurement.input_source = ct.source
    measurement.parameters = parameters.as_dict()
    plane = split_plane_from_endplates(upper, lower, side)
    # Only the body's box holds cement inside it: the full-size masks are filled there alone.
    box = bounding_box(body)
    # np.zeros leaves the untouched pages of a full-size mask unwritten; zeros_like writes them.
    puncture_side = np.zeros(body.shape, dtype=bool)
    puncture_side[box] = puncture_side_voxels(cement[box] & body[box], ct.geometry.cropped(box), plane)
    # Cement outside the body, filled within the cement's own box (a copy of the full-size mask
    # costs more than finding the box).
    extravertebral = np.zeros(cement.shape, dtype=bool)
    cement_box = bounding_box(cement)
    if cement_box is not None:
        extravertebral[cement_box] = cement[cement_box] & ~body[cement_box]
    result = VertebraResult(
        measurement=measurement,
        geometry=ct.geometry,
        body_mask=body,
        cement_mask=cement,
        puncture_side_cement_mask=puncture_side,
        extravertebral_cement_mask=extravertebral,
        segmentation_source=source,
        array_hu=ct.array_hu,
    )
    result.describe_extravertebral_cement()
    return result
