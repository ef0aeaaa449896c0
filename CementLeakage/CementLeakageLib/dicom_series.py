"""Writing a CtVolume as a DICOM CT Image Storage series, and reading a series back with pydicom.

Frames: :class:`CtVolume` geometry is RAS (mm); DICOM is LPS, ``LPS = diag(-1, -1, 1) @ RAS``.
Arrays are ``[k, j, i]``; in a slice the column index is ``i`` and the row index is ``j``, so
ImageOrientationPatient holds the LPS directions of the i axis (along a row) then the j axis
(down a column), PixelSpacing is ``(j spacing, i spacing)`` mm and slice ``k`` is one file.
Pixels are stored unsigned: stored value = HU + 1024 (uint16), RescaleIntercept -1024,
RescaleSlope 1.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Optional

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

from . import __version__
from .ct_volume import CtVolume
from .errors import CementLeakageError
from .geometry import LPS_TO_RAS, VolumeGeometry

RESCALE_INTERCEPT_HU = -1024
"""HU of stored value 0; stored values are HU + 1024 (uint16)."""
ORTHOGONALITY_TOLERANCE = 1e-6
"""Largest |cosine| between the slice axis and the in-plane axes a DICOM series can carry."""


def _lps_matrix(geometry: VolumeGeometry) -> np.ndarray:
    """The 4x4 IJK-to-LPS matrix (mm) of a RAS grid."""
    return LPS_TO_RAS @ geometry.ijk_to_ras


def _check_slice_axis(geometry: VolumeGeometry) -> None:
    directions = geometry.directions_ras
    cosines = directions[:, 2] @ directions[:, :2]
    if np.any(np.abs(cosines) > ORTHOGONALITY_TOLERANCE):
        raise CementLeakageError(
            "the volume's slice axis is not perpendicular to its slices (sheared grid), which a DICOM "
            "CT series cannot represent: resample the volume onto an orthogonal grid first"
        )


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters) for ``value``."""
    return pydicom.valuerep.format_number_as_ds(float(value))


def _stored_pixels(array_hu: np.ndarray) -> np.ndarray:
    """HU ``[k, j, i]`` rounded to integers and shifted to uint16 stored values (HU + 1024)."""
    hu = np.rint(np.asarray(array_hu, dtype=float))
    if not np.all(np.isfinite(hu)):
        raise CementLeakageError("the CT holds non-finite values: fix the image before writing DICOM")
    low, high = RESCALE_INTERCEPT_HU, RESCALE_INTERCEPT_HU + 65535
    if hu.min() < low or hu.max() > high:
        raise CementLeakageError(
            f"the CT spans {hu.min():g}..{hu.max():g} HU, outside {low}..{high} HU that the DICOM "
            "series stores: clip the image first"
        )
    return (hu - RESCALE_INTERCEPT_HU).astype(np.uint16)


def _common_dataset(
    ct: CtVolume,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    series_description: str,
    now: datetime,
) -> Dataset:
    """Attributes shared by every slice: patient, study, series, frame of reference, equipment."""
    geometry = ct.geometry
    lps = _lps_matrix(geometry)
    spacing = geometry.spacing_mm
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = time
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = "CementLeakage"
    ds.ManufacturerModelName = "CementLeakage DICOM writer"
    ds.SoftwareVersions = __version__
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = series_description
    ds.PatientName = f"{patient_id}^"
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.BodyPartExamined = "SPINE"
    ds.KVP = "120"
    ds.SliceThickness = _ds(spacing[2] if ct.slice_thickness_mm is None else ct.slice_thickness_mm)
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = [_ds(v) for v in (*(lps[:3, 0] / spacing[0]), *(lps[:3, 1] / spacing[1]))]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(geometry.shape[1])
    ds.Columns = int(geometry.shape[2])
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = str(RESCALE_INTERCEPT_HU)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    return ds


def write_dataset_atomically(ds: Dataset, path: Path) -> Path:
    """Save a DICOM dataset to ``path`` (Part 10 file) under a temporary name, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".dcm")
    os.close(handle)
    try:
        ds.save_as(temporary, enforce_file_format=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_ct_series(
    folder: str | os.PathLike,
    ct: CtVolume,
    *,
    patient_id: str = "ANON",
    study_uid: Optional[str] = None,
    series_uid: Optional[str] = None,
    frame_of_reference_uid: Optional[str] = None,
    series_description: str = "CementLeakage phantom",
) -> list[Path]:
    """Write ``ct`` as a CT Image Storage series, one file per slice ``k``, into ``folder``.

    HU are rounded to integers. Positions and orientation come from ``ct.geometry`` (RAS,
    converted to LPS). Missing UIDs are generated. Each file is written under a temporary
    name and renamed into place. Returns the paths in slice order ``k = 0, 1, ...``.
    Raises :class:`CementLeakageError` for a sheared grid or HU outside the storable range.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _check_slice_axis(ct.geometry)
    stored = _stored_pixels(ct.array_hu)
    common = _common_dataset(
        ct,
        patient_id,
        study_uid or generate_uid(),
        series_uid or generate_uid(),
        frame_of_reference_uid or generate_uid(),
        series_description,
        datetime.now(),
    )
    lps = _lps_matrix(ct.geometry)
    normal = np.cross(lps[:3, 0], lps[:3, 1])
    normal /= np.linalg.norm(normal)
    paths = []
    for k in range(stored.shape[0]):
        ds = Dataset()
        ds.update(common)
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        position = lps @ np.array([0.0, 0.0, float(k), 1.0])
        ds.ImagePositionPatient = [_ds(v) for v in position[:3]]
        ds.SliceLocation = _ds(float(normal @ position[:3]))
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        path = folder / f"CT{k + 1:05d}.dcm"
        write_dataset_atomically(ds, path)
        paths.append(path)
    return paths


def _slice_normal(ds: Dataset) -> np.ndarray:
    orientation = np.array(ds.ImageOrientationPatient, dtype=float)
    return np.cross(orientation[:3], orientation[3:])


def read_series_datasets(folder: str | os.PathLike, series_uid: Optional[str] = None) -> list[Dataset]:
    """The image datasets of one series in ``folder``, sorted by position along the slice normal.

    Files that are not DICOM images are skipped. Raises :class:`CementLeakageError` when the
    folder holds no image series, or several and ``series_uid`` does not choose one.
    """
    folder = Path(folder)
    by_series: dict[str, list[Dataset]] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
        except (pydicom.errors.InvalidDicomError, OSError):
            continue
        if "ImagePositionPatient" in ds and "PixelData" in ds:
            by_series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    if series_uid is not None:
        if series_uid not in by_series:
            raise CementLeakageError(f"series {series_uid} is not in {folder}: check the series UID")
        datasets = by_series[series_uid]
    elif len(by_series) == 1:
        datasets = next(iter(by_series.values()))
    elif not by_series:
        raise CementLeakageError(f"{folder} holds no DICOM image series: give a DICOM series folder")
    else:
        raise CementLeakageError(
            f"{folder} holds {len(by_series)} DICOM series ({', '.join(by_series)}): choose one by its UID"
        )
    normal = _slice_normal(datasets[0])
    return sorted(datasets, key=lambda ds: float(normal @ np.array(ds.ImagePositionPatient, dtype=float)))


def series_geometry(datasets: list[Dataset]) -> VolumeGeometry:
    """The RAS grid (mm) of datasets sorted as by :func:`read_series_datasets` (k follows the list).

    The slice step is taken from the first and last positions; a single slice uses
    SliceThickness (or 1 mm) along the slice normal.
    """
    first = datasets[0]
    orientation = np.array(first.ImageOrientationPatient, dtype=float)
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    matrix = np.eye(4)
    matrix[:3, 0] = orientation[:3] * column_spacing
    matrix[:3, 1] = orientation[3:] * row_spacing
    origin = np.array(first.ImagePositionPatient, dtype=float)
    if len(datasets) > 1:
        last = np.array(datasets[-1].ImagePositionPatient, dtype=float)
        matrix[:3, 2] = (last - origin) / (len(datasets) - 1)
    else:
        matrix[:3, 2] = _slice_normal(first) * float(first.get("SliceThickness") or 1.0)
    matrix[:3, 3] = origin
    shape = (len(datasets), int(first.Rows), int(first.Columns))
    return VolumeGeometry(LPS_TO_RAS @ matrix, shape)
