"""Reading CT images from files and DICOM folders, writing volumes atomically.

Files store LPS; everything returned here is RAS (:class:`VolumeGeometry`), converted through
the full direction matrix. Arrays are ``[k, j, i]``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .ct_volume import CtVolume, positive_mm
from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .sitk_bridge import geometry_of, to_sitk

IMAGE_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
DICOM_UID_TAGS = {
    "StudyInstanceUID": "0020|000d",
    "SeriesInstanceUID": "0020|000e",
    "FrameOfReferenceUID": "0020|0052",
    "Modality": "0008|0060",
    "SeriesDescription": "0008|103e",
}
SLICE_THICKNESS_TAG = "0018|0050"
"""DICOM SliceThickness: the width (mm) of the slice sensitivity, which may differ from the spacing."""
DICOM_IDENTIFYING_TAGS = {
    "PatientName": "0010|0010",
    "PatientID": "0010|0020",
    "PatientBirthDate": "0010|0030",
    "PatientSex": "0010|0040",
    "AccessionNumber": "0008|0050",
    "StudyDate": "0008|0020",
    "StudyTime": "0008|0030",
    "InstitutionName": "0008|0080",
    "ReferringPhysicianName": "0008|0090",
    "StudyDescription": "0008|1030",
    "StudyID": "0020|0010",
}
"""Attributes that identify the patient or the visit; ``--anonymize`` leaves them out of exports."""
_NRRD_SPACING_KEYS = ("space directions", "spacings", "NRRD_space directions", "NRRD_spacings")
_HASH_CHUNK = 1 << 20
_NRRD_HEADER_MAX_BYTES = 65536
"""How much of an NRRD file is read for its header's fields."""


def sha256_of_files(paths: list[Path]) -> str:
    """SHA-256 over the names and contents of ``paths`` (sorted by name), hex."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        if len(paths) > 1:
            digest.update(path.name.encode("utf-8"))
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _check_geometry(image: sitk.Image, name: str) -> VolumeGeometry:
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise CementLeakageError(
            f"{name} is not a 3D scalar image (dimension {image.GetDimension()}, "
            f"{image.GetNumberOfComponentsPerPixel()} component(s)): give a 3D CT volume"
        )
    spacing = np.array(image.GetSpacing(), dtype=float)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise CementLeakageError(
            f"{name} has voxel spacing {tuple(spacing.tolist())} mm: every spacing must be positive; "
            "fix the file's header"
        )
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    if not np.all(np.isfinite(direction)) or abs(np.linalg.det(direction)) < 1e-6:
        raise CementLeakageError(f"{name} has a degenerate direction matrix: fix the file's header")
    try:
        return geometry_of(image)
    except CementLeakageError as error:
        raise CementLeakageError(f"{name}: {error}") from None


def _check_nrrd_spacing(path: Path) -> None:
    """Refuse an NRRD whose header gives no spacing (SimpleITK would silently assume 1 mm)."""
    with open(path, "rb") as handle:  # the header only: an attached volume can be gigabytes
        start = handle.read(_NRRD_HEADER_MAX_BYTES)
    header = start.split(b"\n\n", 1)[0].decode("latin-1", errors="replace")
    keys = {line.split(":", 1)[0].strip().lower() for line in header.splitlines() if ":" in line}
    if not keys & {"space directions", "spacings"}:
        raise CementLeakageError(
            f"{path.name} gives no voxel spacing (no 'space directions' or 'spacings' field): "
            "volumes would be meaningless; add the spacing to the header"
        )
    for line in header.splitlines():
        if line.lower().startswith("space directions:") and "(0,0,0)" in line.replace(" ", ""):
            raise CementLeakageError(
                f"{path.name} has a zero voxel spacing in 'space directions': fix the header"
            )


def _read_image_file(path: Path) -> CtVolume:
    if path.stat().st_size == 0:
        raise CementLeakageError(f"{path.name} is empty: give a CT image file")
    name = path.name.lower()
    if name.endswith((".nrrd", ".nhdr")):
        _check_nrrd_spacing(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise CementLeakageError(
            f"{path.name} could not be read as an image: give a .nrrd, .nii, .nii.gz or .mha CT file "
            "or a DICOM series folder"
        ) from None
    geometry = _check_geometry(image, path.name)
    array = sitk.GetArrayFromImage(image)
    files = [path]
    if name.endswith((".nhdr", ".mhd")):
        files += [
            p
            for p in path.parent.glob(path.stem + ".*")
            if p != path and p.suffix in (".raw", ".gz", ".zraw")
        ]
    return CtVolume(
        array_hu=array.astype(np.float32) if array.dtype.kind == "f" else array,
        geometry=geometry,
        source=str(path),
        sha256=sha256_of_files(files),
        metadata={"format": "".join(path.suffixes) or path.suffix},
    )


def list_dicom_series(folder: Path) -> dict[str, list[str]]:
    """Series instance UID to its sorted file names, for the DICOM files in ``folder``."""
    reader = sitk.ImageSeriesReader()
    series = {}
    for uid in reader.GetGDCMSeriesIDs(str(folder)) or ():
        series[uid] = list(reader.GetGDCMSeriesFileNames(str(folder), uid))
    return series


def _dicom_tags(path: str, tags: dict[str, str]) -> dict[str, str]:
    """Values (stripped text, empty when absent) of the ``name: 'gggg|eeee'`` tags of one file."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    return {
        name: reader.GetMetaData(tag).strip() if reader.HasMetaDataKey(tag) else ""
        for name, tag in tags.items()
    }


def _dicom_tag(path: str, tag: str) -> str:
    return _dicom_tags(path, {"value": tag})["value"]


MAX_GANTRY_TILT_DEGREES = 0.5
"""Angle (degrees) between the slice normal and the line through the slice positions above
which a series is treated as acquired with a tilted gantry."""
SPACING_TOLERANCE = 0.01
"""Relative deviation of a slice gap from the median gap above which spacing counts as uneven."""


def check_slice_positions(files: list[str], series_uid: str) -> None:
    """Refuse a series whose slices are not an evenly spaced stack along their normal.

    Reads ImagePositionPatient and ImageOrientationPatient (LPS mm) of every file: missing
    slices, uneven spacing, duplicate positions and gantry tilt would all be turned into a
    silently wrong grid by an image reader, so each gets an error that says what to do.
    """
    if len(files) < 2:
        return
    tags = {"position": "0020|0032", "orientation": "0020|0037"}
    values = [_dicom_tags(name, tags) for name in files]
    try:
        positions = np.array([[float(v) for v in item["position"].split("\\")] for item in values])
        orientation = np.array([float(v) for v in values[0]["orientation"].split("\\")])
    except ValueError:
        raise CementLeakageError(
            f"DICOM series {series_uid} lacks image position or orientation: export it again from the scanner"
        ) from None
    if positions.shape[1] != 3 or orientation.shape != (6,):
        raise CementLeakageError(f"DICOM series {series_uid} has malformed image position or orientation")
    normal = np.cross(orientation[:3], orientation[3:])
    normal /= np.linalg.norm(normal)
    along = np.sort(positions @ normal)
    gaps = np.diff(along)
    if np.any(gaps < 1e-3):
        raise CementLeakageError(
            f"DICOM series {series_uid} has several slices at the same position: it mixes two "
            "acquisitions; choose the series again or export each acquisition separately"
        )
    median = float(np.median(gaps))
    if np.any(np.abs(gaps - median) > SPACING_TOLERANCE * median + 1e-3):
        multiples = np.round(gaps / median)
        if np.all(np.abs(gaps - multiples * median) <= SPACING_TOLERANCE * median + 1e-3):
            missing = int(np.sum(multiples - 1))
            raise CementLeakageError(
                f"DICOM series {series_uid} misses {missing} slice(s) (gaps of {gaps.max():.2f} mm in a "
                f"{median:.2f} mm stack): export the complete series"
            )
        raise CementLeakageError(
            f"DICOM series {series_uid} has uneven slice spacing ({gaps.min():.2f} to {gaps.max():.2f} mm): "
            "resample it to even spacing (e.g. Slicer's Resample Scalar Volume) before measuring"
        )
    order = np.argsort(positions @ normal)
    stack = positions[order[-1]] - positions[order[0]]
    cosine = abs(float(stack @ normal)) / float(np.linalg.norm(stack))
    tilt = float(np.degrees(np.arccos(min(1.0, cosine))))
    if tilt > MAX_GANTRY_TILT_DEGREES:
        raise CementLeakageError(
            f"DICOM series {series_uid} was acquired with a gantry tilt of {tilt:.1f} degrees: load it in "
            "Slicer with acquisition geometry regularization (or resample it) and measure the result"
        )


def _read_dicom_folder(folder: Path, series_uid: str | None) -> CtVolume:
    series = list_dicom_series(folder)
    if not series:
        raise CementLeakageError(f"{folder} holds no readable DICOM series: give a CT file or a DICOM folder")
    if series_uid is None and len(series) > 1:
        wanted = {name: DICOM_UID_TAGS[name] for name in ("Modality", "SeriesDescription")}
        first_files = {uid: _dicom_tags(files[0], wanted) for uid, files in series.items()}
        listing = "; ".join(
            f"{uid} ({first_files[uid]['Modality'] or 'no modality'}, {len(files)} files, "
            f"{first_files[uid]['SeriesDescription'] or 'no description'})"
            for uid, files in series.items()
        )
        raise CementLeakageError(
            f"{folder} holds {len(series)} DICOM series: {listing}; choose one with --series-uid"
        )
    if series_uid is not None and series_uid not in series:
        raise CementLeakageError(
            f"series {series_uid} is not in {folder}; it holds {', '.join(series)}: check --series-uid"
        )
    uid = series_uid or next(iter(series))
    files = series[uid]
    metadata = _dicom_tags(files[0], {**DICOM_UID_TAGS, **DICOM_IDENTIFYING_TAGS})
    modality = metadata["Modality"].upper()
    if modality and modality != "CT":
        raise CementLeakageError(
            f"DICOM series {uid} is {modality}, not CT: the thresholds are in Hounsfield units; "
            "give the CT series (--series-uid) or its folder"
        )
    check_slice_positions(files, uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError:
        raise CementLeakageError(
            f"DICOM series {uid} in {folder} could not be read: check its files"
        ) from None
    geometry = _check_geometry(image, f"DICOM series {uid}")
    metadata["number_of_slices"] = len(files)
    return CtVolume(
        array_hu=sitk.GetArrayFromImage(image).astype(np.float32),
        geometry=geometry,
        source=str(folder),
        sha256=sha256_of_files([Path(f) for f in files]),
        metadata=metadata,
        slice_thickness_mm=slice_thickness_of_dicom_file(files[0]),
    )


def slice_thickness_of_dicom_file(path: str | os.PathLike) -> float | None:
    """SliceThickness (mm) of one DICOM file: None when the file is missing or the tag absent,
    unreadable or not positive."""
    if not Path(path).is_file():
        return None
    try:
        return positive_mm(_dicom_tag(str(path), SLICE_THICKNESS_TAG))
    except RuntimeError:  # SimpleITK cannot read the file's header
        return None


def read_ct(path: str | os.PathLike, series_uid: str | None = None) -> CtVolume:
    """Read a CT volume (HU, RAS geometry) from an image file or a DICOM series folder.

    Raises :class:`CementLeakageError` naming the file and what to do when it is missing,
    unreadable, not a 3D scalar image, without a valid spacing, or when a DICOM folder holds
    several series and ``series_uid`` does not choose one.
    """
    path = Path(path)
    if not path.exists():
        raise CementLeakageError(f"{path} does not exist: check the path of the CT")
    if path.is_dir():
        return _read_dicom_folder(path, series_uid)
    return _read_image_file(path)


def _suffix(path: Path) -> str:
    name = path.name
    for suffix in (".seg.nrrd", ".nii.gz", *IMAGE_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[-len(suffix) :]
    return path.suffix


def write_volume(
    array: np.ndarray, geometry: VolumeGeometry, path: str | os.PathLike, compress: bool = True
) -> Path:
    """Write ``array`` ``[k, j, i]`` on ``geometry`` (RAS) as an image file (LPS), atomically.

    The file is written under a temporary name in the same folder and renamed into place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = to_sitk(array, geometry)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=_suffix(path))
    os.close(handle)
    try:
        sitk.WriteImage(image, temporary, useCompression=compress)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
