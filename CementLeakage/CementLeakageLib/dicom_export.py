"""DICOM Segmentation (SEG) and Structured Report (SR, TID 1500) export of a case, with highdicom.

Masks are boolean ``[k, j, i]`` on the grid of the source CT series as returned by
:func:`~CementLeakageLib.dicom_series.read_series_datasets` (slices sorted along the normal);
grids are compared in RAS mm (DICOM itself is LPS). Volumes are in cm³ (UCUM ``cm3``), ratios
in % (UCUM ``%``).

Codes
-----
SEG segmented property (category / type), chosen by segment name:

- a name containing ``cement``: SCT 105590001 "Substance" / SCT 261712009 "Acrylic resin"
  (PMMA bone cement is an acrylic resin);
- any other name (the vertebral body): SCT 85756007 "Tissue" / SCT 272673000 "Bone".

SR measurements, one TID 1411 volumetric group per level, tracking identifier
``"<level> vertebral body"``, referencing the SEG's body segment:

- VBV: SCT 118565006 "Volume" (the volume of the referenced body segment), cm³;
- local scheme ``99CMTLK`` (:data:`LOCAL_CODES`): ``BCV`` bone cement volume inside the body
  (cm³), ``PSBCV`` puncture-side bone cement volume (cm³), ``BCVVBV`` BCV/VBV (%),
  ``PSBCVVBV`` PSBCV/VBV (%), ``PSBCVVBVCUT`` the PSBCV/VBV cutoff (%);
- qualitative evaluations: ``EXCEEDS`` (PSBCV/VBV exceeds the cutoff) valued SCT 373066001
  "Yes" / SCT 373067005 "No"; ``PUNCSIDE`` (puncture side) valued SCT 7771000 "Left" /
  SCT 24028007 "Right".
"""

from __future__ import annotations

import os
from pathlib import Path

import highdicom as hd
import numpy as np
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from .dicom_series import series_geometry, write_dataset_atomically
from .errors import CementLeakageError
from .geometry import VolumeGeometry

LOCAL_SCHEME = "99CMTLK"
"""Private coding scheme designator of the CementLeakage measurement codes."""
LOCAL_CODES = {
    "bcv_cm3": Code("BCV", LOCAL_SCHEME, "Bone cement volume in vertebral body"),
    "psbcv_cm3": Code("PSBCV", LOCAL_SCHEME, "Puncture-side bone cement volume"),
    "bcv_vbv_pct": Code("BCVVBV", LOCAL_SCHEME, "Bone cement volume to vertebral body volume ratio"),
    "psbcv_vbv_pct": Code("PSBCVVBV", LOCAL_SCHEME, "Puncture-side cement volume to body volume ratio"),
    "cutoff_pct": Code("PSBCVVBVCUT", LOCAL_SCHEME, "PSBCV/VBV cutoff"),
    "exceeds_cutoff": Code("EXCEEDS", LOCAL_SCHEME, "PSBCV/VBV exceeds cutoff"),
    "side": Code("PUNCSIDE", LOCAL_SCHEME, "Puncture side"),
}
"""Local codes by level-record key; VBV uses SCT "Volume" instead."""
MEASUREMENT_CODES = {
    "vbv_cm3": codes.SCT.Volume,
    **{
        key: LOCAL_CODES[key]
        for key in ("bcv_cm3", "psbcv_cm3", "bcv_vbv_pct", "psbcv_vbv_pct", "cutoff_pct")
    },
}
"""Concept name of each numeric measurement, by level-record key."""
UNITS = {
    key: (codes.UCUM.CubicCentimeter if key.endswith("_cm3") else codes.UCUM.Percent)
    for key in MEASUREMENT_CODES
}
"""UCUM unit of each numeric measurement: ``cm3`` or ``%``."""
ACRYLIC_RESIN = Code("261712009", "SCT", "Acrylic resin")
SIDE_CODES = {"left": Code("7771000", "SCT", "Left"), "right": Code("24028007", "SCT", "Right")}
ALGORITHM_NAME = "CementLeakage"
MAX_GRID_MISMATCH_MM = 1e-3
"""Largest difference (mm) between the masks' IJK-to-RAS matrix and the source series' grid."""


def _property_codes(name: str) -> tuple[Code, Code]:
    """Segmented property category and type for a segment name (see the module docstring)."""
    if "cement" in name.lower():
        return codes.SCT.Substance, ACRYLIC_RESIN
    return codes.SCT.Tissue, codes.SCT.Bone


def _check_grid(source_datasets: list[Dataset], masks_by_name: dict, geometry: VolumeGeometry) -> None:
    source = series_geometry(source_datasets)
    if tuple(geometry.shape) != tuple(source.shape) or not np.allclose(
        geometry.ijk_to_ras, source.ijk_to_ras, atol=MAX_GRID_MISMATCH_MM, rtol=0.0
    ):
        raise CementLeakageError(
            f"the masks' grid (shape {tuple(geometry.shape)}) does not match the source DICOM series "
            f"(shape {tuple(source.shape)}): give masks on the grid of the series as read by "
            "read_series_datasets"
        )
    for name, mask in masks_by_name.items():
        if np.shape(mask) != tuple(source.shape):
            raise CementLeakageError(
                f"mask {name!r} has shape {np.shape(mask)}, the source series {tuple(source.shape)}: "
                "give masks on the grid of the series"
            )


def write_dicom_seg(
    path: str | os.PathLike,
    source_datasets: list[Dataset],
    masks_by_name: dict[str, np.ndarray],
    geometry: VolumeGeometry,
    colors_rgb: dict[str, tuple],
    *,
    series_number: int = 900,
    software_version: str,
) -> Path:
    """Write a BINARY DICOM Segmentation with one segment per mask, atomically; returns the path.

    ``source_datasets`` are the CT slices sorted as by ``read_series_datasets``; ``geometry``
    is the masks' grid (RAS mm), which must equal the series' grid. Segment numbers follow the
    order of ``masks_by_name`` (from 1); labels are the names; colours are RGB 0-1, stored as
    CIELab. An empty mask is kept as a segment without frames (empty frames are omitted), so
    reading it back gives an all-false mask. Raises :class:`CementLeakageError` when there are
    no masks or a grid does not match.
    """
    if not masks_by_name:
        raise CementLeakageError("no masks to export: give at least one segment")
    _check_grid(source_datasets, masks_by_name, geometry)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME, family=codes.cid7162.MorphologicalOperations, version=software_version
    )
    descriptions = []
    for number, name in enumerate(masks_by_name, start=1):
        category, property_type = _property_codes(name)
        rgb = np.clip(np.asarray(colors_rgb.get(name, (1.0, 1.0, 0.0)), dtype=float), 0.0, 1.0) * 255.0
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name,
                segmented_property_category=category,
                segmented_property_type=property_type,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
                algorithm_identification=algorithm,
                tracking_uid=generate_uid(),
                tracking_id=name,
                display_color=hd.color.CIELabColor.from_rgb(*rgb),
            )
        )
    pixels = np.stack([np.asarray(mask, dtype=bool) for mask in masks_by_name.values()], axis=-1)
    seg = hd.seg.Segmentation(
        source_images=source_datasets,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="CementLeakage",
        manufacturer_model_name="CementLeakage",
        software_versions=software_version,
        device_serial_number="0",
        series_description="CementLeakage segmentation",
        omit_empty_frames=True,
    )
    return write_dataset_atomically(seg, Path(path))


def read_dicom_seg_masks(path: str | os.PathLike, source_datasets: list[Dataset]) -> dict[str, np.ndarray]:
    """Boolean ``[k, j, i]`` masks by segment label from a SEG, on the grid of ``source_datasets``.

    ``source_datasets`` are the SEG's source slices sorted as by ``read_series_datasets``; slices
    without a frame (omitted because empty) read as all false, so an empty segment reads back
    as an all-false mask.
    """
    seg = hd.seg.segread(path)
    numbers = [int(item.SegmentNumber) for item in seg.SegmentSequence]
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[str(ds.SOPInstanceUID) for ds in source_datasets],
        segment_numbers=numbers,
        assert_missing_frames_are_empty=True,
    )
    return {
        str(item.SegmentLabel): pixels[..., index].astype(bool)
        for index, item in enumerate(seg.SegmentSequence)
    }


def _body_segment_number(seg_dataset: Dataset, level: str) -> int:
    """The segment the level's measurements refer to: a Bone segment, preferably labelled with the level."""
    bones = [
        item
        for item in seg_dataset.SegmentSequence
        if item.SegmentedPropertyTypeCodeSequence[0].CodeValue == codes.SCT.Bone.value
    ]
    if not bones:
        raise CementLeakageError("the DICOM SEG holds no vertebral body (Bone) segment: export the body mask")
    for item in bones:
        if level.lower() in str(item.SegmentLabel).lower():
            return int(item.SegmentNumber)
    return int(bones[0].SegmentNumber)


def _level_group(
    record: dict, seg_dataset: Dataset, algorithm: hd.sr.AlgorithmIdentification
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    level = str(record["level"])
    side = str(record["side"]).lower()
    if side not in SIDE_CODES:
        raise CementLeakageError(f"puncture side {record['side']!r} of {level} must be left or right")
    measurements = [
        hd.sr.Measurement(name=code, value=float(record[key]), unit=UNITS[key], algorithm_id=algorithm)
        for key, code in MEASUREMENT_CODES.items()
    ]
    evaluations = [
        hd.sr.QualitativeEvaluation(
            name=LOCAL_CODES["exceeds_cutoff"],
            value=codes.SCT.Yes if bool(record["exceeds_cutoff"]) else codes.SCT.No,
        ),
        hd.sr.QualitativeEvaluation(name=LOCAL_CODES["side"], value=SIDE_CODES[side]),
    ]
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(), identifier=f"{level} vertebral body"
        ),
        referenced_segment=hd.sr.ReferencedSegment.from_segmentation(
            seg_dataset, _body_segment_number(seg_dataset, level)
        ),
        finding_type=codes.SCT.Bone,
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=evaluations,
    )


def write_dicom_sr(
    path: str | os.PathLike,
    source_datasets: list[Dataset],
    seg_dataset: Dataset,
    level_records: list[dict],
    *,
    software_version: str,
    series_number: int = 901,
) -> Path:
    """Write a Comprehensive 3D SR (TID 1500) with one volumetric group per level, atomically.

    ``level_records`` hold ``level, side, vbv_cm3, bcv_cm3, psbcv_cm3, bcv_vbv_pct,
    psbcv_vbv_pct, cutoff_pct, exceeds_cutoff`` (cm³, %); each group references the SEG's
    body segment. Returns the path.
    """
    if not level_records:
        raise CementLeakageError("no level results to report: measure at least one level")
    algorithm = hd.sr.AlgorithmIdentification(name=ALGORITHM_NAME, version=software_version)
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=ALGORITHM_NAME, model_name=software_version
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.cid100.CTUnspecifiedBodyRegion,
        imaging_measurements=[_level_group(record, seg_dataset, algorithm) for record in level_records],
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*source_datasets, seg_dataset],
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="CementLeakage",
        series_description="CementLeakage measurements",
        coding_schemes=[
            CodingSchemeIdentificationItem(
                designator=LOCAL_SCHEME,
                name="CementLeakage measurement codes",
                responsible_organization="CementLeakage contributors",
            )
        ],
    )
    return write_dataset_atomically(sr, Path(path))


def read_dicom_sr_measurements(path: str | os.PathLike) -> list[dict]:
    """Per level: ``level``, ``side``, ``exceeds_cutoff`` and ``measurements`` {record key: (value, unit)}.

    Record keys are those of the level records (``vbv_cm3`` ... ``cutoff_pct``); units are the
    UCUM code values (``cm3``, ``%``).
    """
    sr = hd.sr.srread(path)
    keys_by_code = {(code.scheme_designator, code.value): key for key, code in MEASUREMENT_CODES.items()}
    results = []
    for group in sr.content.get_volumetric_roi_measurement_groups():
        identifier = str(group.tracking_identifier)
        record: dict = {"level": identifier.removesuffix(" vertebral body"), "measurements": {}}
        for measurement in group.get_measurements():
            key = keys_by_code.get((measurement.name.scheme_designator, measurement.name.value))
            if key is not None:
                record["measurements"][key] = (float(measurement.value), str(measurement.unit.value))
        for evaluation in group.get_qualitative_evaluations():
            if evaluation.name == LOCAL_CODES["exceeds_cutoff"]:
                record["exceeds_cutoff"] = evaluation.value == codes.SCT.Yes
            elif evaluation.name == LOCAL_CODES["side"]:
                record["side"] = "left" if evaluation.value == SIDE_CODES["left"] else "right"
        results.append(record)
    return results
