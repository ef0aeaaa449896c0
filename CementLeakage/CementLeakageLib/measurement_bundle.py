"""The audit bundle of the command line: one CT, one or more measured levels.

Builds on :mod:`case_export` (atomic folder, ``results.json``, ``results.csv``) and adds per
level ``<level>.seg.nrrd`` (segments ``Vertebral body``, ``Cement`` (inside the body),
``Puncture-side cement``, ``Extravertebral cement``) and ``<level>.mrk.json``; for DICOM input a
DICOM Segmentation and Structured Report; and the report (``report.html``, ``<level>.png``)
when its figure module is available.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .case_export import REPORT_FILE, level_file_stem, write_case_bundle
from .ct_volume import CtVolume
from .image_io import DICOM_IDENTIFYING_TAGS
from .markups_files import write_endplate_markups_file
from .mrml_nodes import mask_sha256
from .pipeline import VertebraResult
from .segmentation_files import read_segment_provenance, write_segmentation_file
from .segments import BODY, CEMENT


@dataclass
class MeasuredLevel:
    """A level's record (``VertebraMeasurement.as_dict()`` plus rule evaluations) and its masks.

    ``given_segmentation`` is the ``.seg.nrrd`` the masks came from (None when automatic),
    with the names of its body and cement segments.
    """

    record: dict
    result: VertebraResult
    given_segmentation: str | None = None
    given_body_segment: str = BODY
    given_cement_segment: str = CEMENT


def input_identity(ct: CtVolume, anonymize: bool = False) -> dict:
    """Which CT was measured: file name and SHA-256, DICOM UIDs, the slice thickness it was read
    with (mm; None: taken as the slice spacing) and (unless ``anonymize``) the attributes that
    identify the patient and the visit."""
    identity = {
        "source": os.path.basename(ct.source.rstrip("/\\")) if anonymize else ct.source,
        "sha256": ct.sha256,
        "slice_thickness_mm": ct.slice_thickness_mm,
    }
    for key, value in ct.metadata.items():
        if anonymize and key in DICOM_IDENTIFYING_TAGS:
            continue
        identity[key] = value
    identity["anonymized"] = anonymize
    return identity


def _bundle_record(level: MeasuredLevel, anonymize: bool) -> dict:
    record = dict(level.record)
    if anonymize:
        record["input_source"] = os.path.basename(str(record.get("input_source", "")).rstrip("/\\"))
    masks = level.result.masks_by_segment_name()
    if level.given_segmentation:
        names = [level.given_body_segment, level.given_cement_segment]
        provenance = read_segment_provenance(level.given_segmentation, names, level.result.geometry)
        body_provenance, cement_provenance = provenance[names[0]], provenance[names[1]]
    else:
        body_provenance = cement_provenance = {"source": "automatic", "edited_by_hand": False}
    record["segments"] = {
        "body": {
            "name": BODY,
            **body_provenance,
            "mask_sha256": mask_sha256(masks[BODY]),
            "voxels": int(masks[BODY].sum()),
        },
        "cement": {
            "name": CEMENT,
            **cement_provenance,
            "mask_sha256": mask_sha256(masks[CEMENT]),
            "voxels": int(masks[CEMENT].sum()),
        },
    }
    stem = level_file_stem(record["level"])
    record["files"] = {"segmentation": f"{stem}.seg.nrrd", "markups": f"{stem}.mrk.json"}
    return record


def _masks_on_series_grid(masks: dict, geometry, series) -> dict:
    """The masks on the DICOM series' own grid (the same voxels, possibly in another order)."""
    import numpy as np

    from .sitk_bridge import resample_onto, to_sitk

    if geometry.shape == series.shape and np.allclose(geometry.ijk_to_ras, series.ijk_to_ras, atol=1e-3):
        return masks
    return {
        name: resample_onto(to_sitk(mask.astype(np.uint8), geometry), series, linear=False, default_value=0)
        > 0
        for name, mask in masks.items()
    }


def write_dicom_objects(folder: Path, levels: list[MeasuredLevel], records: list[dict], ct: CtVolume) -> None:
    """For a CT read from DICOM: per level a Segmentation (``<level>.seg.dcm``) referencing the
    source series and a Structured Report (``<level>.sr.dcm``, TID 1500) with the numbers."""
    import pydicom

    from .dicom_export import write_dicom_seg, write_dicom_sr
    from .dicom_series import read_series_datasets, series_geometry
    from .segments import SEGMENT_COLORS_RGB

    source = read_series_datasets(ct.source, ct.metadata.get("SeriesInstanceUID") or None)
    series = series_geometry(source)
    for level, record in zip(levels, records):
        stem = level_file_stem(record["level"])
        masks = _masks_on_series_grid(level.result.masks_by_segment_name(), level.result.geometry, series)
        seg_path = write_dicom_seg(
            folder / f"{stem}.seg.dcm",
            source,
            masks,
            series,
            SEGMENT_COLORS_RGB,
            software_version=record["software_version"],
        )
        write_dicom_sr(
            folder / f"{stem}.sr.dcm",
            source,
            pydicom.dcmread(seg_path),
            [record],
            software_version=record["software_version"],
        )
        record["files"]["dicom_seg"] = f"{stem}.seg.dcm"
        record["files"]["dicom_sr"] = f"{stem}.sr.dcm"


def is_dicom_input(ct: CtVolume) -> bool:
    """Whether the CT was read from a DICOM series folder."""
    return bool(ct.metadata.get("SeriesInstanceUID")) and Path(ct.source).is_dir()


def write_measurement_bundle(
    out_dir: str | os.PathLike,
    levels: list[MeasuredLevel],
    ct: CtVolume,
    *,
    force: bool = False,
    anonymize: bool = False,
    extra_files=None,
) -> list[Path]:
    """Write the bundle of ``levels`` measured on ``ct`` into ``out_dir`` (see module doc).

    ``extra_files(folder, records)`` may add files (e.g. the CT of the demo) to the staging folder.
    """
    records = [_bundle_record(level, anonymize) for level in levels]

    def write_files(folder: Path) -> None:
        for level, record in zip(levels, records):
            metadata = {
                "Source": "given" if level.given_segmentation else "automatic",
                "level": record["level"],
                "side": record["side"],
                "input_sha256": record["input_sha256"],
                "software_version": record["software_version"],
            }
            write_segmentation_file(
                folder / record["files"]["segmentation"],
                level.result.masks_by_segment_name(with_components=True),
                level.result.geometry,
                metadata=metadata,
            )
            write_endplate_markups_file(
                folder / record["files"]["markups"], record["upper_ras"], record["lower_ras"], record["level"]
            )
        write_level_figures(folder, [(level.result, record) for level, record in zip(levels, records)], ct)
        if is_dicom_input(ct):
            try:
                write_dicom_objects(folder, levels, records, ct)
            except (ValueError, AttributeError, KeyError) as error:
                # The source series lacks what a DICOM SEG must reference: keep the rest of the
                # bundle and say why those two files are missing.
                for record in records:
                    record["warnings"].append(
                        f"no DICOM Segmentation or Structured Report written: the source series cannot be "
                        f"referenced ({error}); the .seg.nrrd and results hold the same data"
                    )
        if extra_files is not None:
            extra_files(folder, records)

    return write_case_bundle(
        out_dir, records, input_identity(ct, anonymize), write_files, force, write_report
    )


def write_level_figures(folder: Path, results_and_records: list, ct: CtVolume) -> None:
    """``<level>.png`` per level: slices through the cement with the overlays and a 3D view."""
    from .report_figures import write_level_figure

    for result, record in results_and_records:
        name = f"{level_file_stem(record['level'])}.png"
        title = f"{record['level'] or 'Vertebra'}: puncture side {record['side']}"
        write_level_figure(folder / name, ct, result, title=title)
        record["files"]["figure"] = name


def write_report(folder: Path, document: dict) -> None:
    """``report.html``: the numbers, flags, figures and provenance of every level, self-contained."""
    from .report_html import write_report_html

    figures = {record["level"]: folder / record["files"]["figure"] for record in document["levels"]}
    write_report_html(folder / REPORT_FILE, document, figures)
