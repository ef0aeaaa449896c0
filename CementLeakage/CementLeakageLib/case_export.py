"""The audit bundle of one case: what was measured, from what, by which version, and how.

A bundle is a folder holding

- ``results.json``: provenance (software version, UTC time, input identity) and one record
  per level with every number, the parameters, the endplate points (RAS mm) and, per
  measured segment, whether it was edited by hand and the SHA-256 of the mask measured;
- ``results.csv``: one row per level, the numbers and the provenance a spreadsheet needs;
- ``segmentation.seg.nrrd``: the case's segments, names and colours as in Slicer;
- ``<level>.mrk.json``: each level's endplate midpoints as a Slicer point list.

The folder is written under a temporary name beside its destination and renamed into place,
so a failure half-way leaves no partial bundle, and an existing bundle is only replaced when
asked (``force``). File names carry only the level, never a patient's name.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import CementLeakageError

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
SEGMENTATION_FILE = "segmentation.seg.nrrd"
REPORT_FILE = "report.html"
BUNDLE_SCHEMA_VERSION = 1

CSV_COLUMNS = (
    "level",
    "side",
    "vbv_cm3",
    "bcv_cm3",
    "psbcv_cm3",
    "bcv_vbv_pct",
    "psbcv_vbv_pct",
    "cutoff_pct",
    "exceeds_cutoff",
    "near_cutoff",
    "extravertebral_cement_cm3",
    "segmentation_source",
    "ct_blur_sigma_mm",
    "unseen_dish_vbv_pct",
    "points_off_centre_mm",
    "body_segment",
    "body_edited_by_hand",
    "body_mask_sha256",
    "cement_segment",
    "cement_edited_by_hand",
    "cement_mask_sha256",
    "upper_ras",
    "lower_ras",
    "input_source",
    "input_sha256",
    "patient_id",
    "study_instance_uid",
    "series_instance_uid",
    "software_version",
    "exported_utc",
    "warnings",
)
"""Columns of ``results.csv``; points are ``R A S`` in mm, the points' distances from the body's
centre line ``upper lower`` in mm, warnings joined with ``; ``."""


def level_file_stem(level: str) -> str:
    """A safe file name stem for a level label (``vertebra`` when empty)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", level.strip()).strip("._")
    return stem or "vertebra"


def default_bundle_name(now: datetime | None = None) -> str:
    """A bundle folder name from the UTC time (``cementleakage-20261125-093000``): no patient data."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("cementleakage-%Y%m%d-%H%M%S")


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-11-25T09:30:00Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_row(record: dict, exported_utc: str, identity: dict | None = None) -> dict[str, str]:
    """One ``results.csv`` row from a level record of ``results.json`` and the input identity."""
    identity = identity or {}
    segments = record.get("segments", {})
    body = segments.get("body", {})
    cement = segments.get("cement", {})
    row = {
        **{key: record.get(key, "") for key in CSV_COLUMNS},
        "body_segment": body.get("name", ""),
        "body_edited_by_hand": body.get("edited_by_hand", ""),
        "body_mask_sha256": body.get("mask_sha256", ""),
        "cement_segment": cement.get("name", ""),
        "cement_edited_by_hand": cement.get("edited_by_hand", ""),
        "cement_mask_sha256": cement.get("mask_sha256", ""),
        "upper_ras": " ".join(f"{v:.3f}" for v in record.get("upper_ras", [])),
        "lower_ras": " ".join(f"{v:.3f}" for v in record.get("lower_ras", [])),
        "points_off_centre_mm": " ".join(f"{v:.2f}" for v in record.get("points_off_centre_mm") or []),
        "exported_utc": exported_utc,
        "patient_id": identity.get("PatientID", ""),
        "study_instance_uid": identity.get("StudyInstanceUID", ""),
        "series_instance_uid": identity.get("SeriesInstanceUID", ""),
        "warnings": "; ".join(record.get("warnings", [])),
    }
    return {key: str(value) for key, value in row.items()}


def check_bundle_destination(out_dir: Path, force: bool) -> None:
    """Refuse a destination that is a file, or an existing bundle unless ``force`` is set."""
    if out_dir.exists() and not out_dir.is_dir():
        raise CementLeakageError(f"{out_dir} is a file, not a folder: give a folder for the bundle")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise CementLeakageError(
            f"{out_dir} already holds files: choose another folder or replace it on purpose (--force)"
        )


def write_case_bundle(
    out_dir: str | os.PathLike,
    level_records: list[dict],
    input_identity: dict,
    write_files: Callable[[Path], None],
    force: bool = False,
    write_after_results: Callable[[Path, dict], None] | None = None,
) -> list[Path]:
    """Write a case's audit bundle into ``out_dir`` and return the files written.

    ``level_records`` are measurement dicts (``VertebraMeasurement.as_dict()``) with the
    ``segments`` that were measured and the bundle ``files`` of the level;
    ``input_identity`` says which CT was measured (file SHA-256 or DICOM UIDs);
    ``write_files(folder)`` writes the segmentation, markups and any other file into the
    staging folder, and ``write_after_results(folder, document)`` what needs the finished
    ``results.json`` document (the report). Nothing appears at ``out_dir`` until all is written.
    """
    out_dir = Path(out_dir)
    if not level_records:
        raise CementLeakageError("nothing to export: measure at least one vertebra first")
    levels = [record["level"] for record in level_records]
    stems = [level_file_stem(level) for level in levels]
    if len(set(stems)) != len(stems):
        raise CementLeakageError(f"levels {levels} give the same file names: name each level differently")
    check_bundle_destination(out_dir, force)
    exported = utc_now()
    document = {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "software": "CementLeakage",
        "software_version": __version__,
        "exported_utc": exported,
        "input": input_identity,
        "levels": level_records,
    }
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    except OSError as error:
        raise CementLeakageError(unwritable_bundle_message(out_dir, error)) from None
    try:
        write_files(staging)
        (staging / RESULTS_JSON).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        with open(staging / RESULTS_CSV, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for record in level_records:
                writer.writerow(csv_row(record, exported, input_identity))
        if write_after_results is not None:
            write_after_results(staging, document)
        _apply_default_permissions(staging)
        _move_into_place(staging, out_dir)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise CementLeakageError(unwritable_bundle_message(out_dir, error)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(out_dir.iterdir())


def unwritable_bundle_message(out_dir: Path, error: OSError) -> str:
    """What a user is told when the bundle cannot be written to ``out_dir``: the system's reason
    (no such folder, no permission, a full disk) and what to do. Nothing is left behind."""
    reason = error.strerror or str(error) or type(error).__name__
    return (
        f"the bundle could not be written to {out_dir}: {reason}; nothing was written: "
        "give a folder you can write to, on a disk with room for it"
    )


def _apply_default_permissions(folder: Path) -> None:
    """Give the staged folder and files the permissions of ordinary new files (umask), not the
    private ones temporary files are created with."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` to ``out_dir``, replacing an existing folder only after the new one is whole."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    retired = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.replaced-"))
    os.rmdir(retired)
    os.replace(out_dir, retired)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(retired, out_dir)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def read_case_bundle(out_dir: str | os.PathLike) -> dict:
    """The ``results.json`` document of a bundle."""
    path = Path(out_dir) / RESULTS_JSON
    if not path.is_file():
        raise CementLeakageError(
            f"{Path(out_dir)} holds no {RESULTS_JSON}: give a folder written by an export"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CementLeakageError(
            f"{path} could not be read as JSON ({error}): export the case again"
        ) from None
