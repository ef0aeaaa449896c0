"""Reading CT series from DICOM folders: storage variants that must read to the same HU and
grid, and broken series that must be refused with a message saying what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from CementLeakageLib.ct_volume import CtVolume
from CementLeakageLib.dicom_series import write_ct_series
from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.image_io import read_ct

STUDY_UID = "1.2.826.0.1.3680043.8.498.77"
SERIES_UID = "1.2.826.0.1.3680043.8.498.77.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def write_axial_series(
    folder: Path,
    array_hu: np.ndarray,
    pixel_spacing_mm: tuple[float, float],
    positions_lps: list[tuple[float, float, float]],
    *,
    unsigned: bool = False,
    file_order: list[int] | None = None,
    modality: str = "CT",
) -> None:
    """One file per slice ``array_hu[k]`` with the given ImagePositionPatient (LPS mm).

    ``unsigned`` stores HU + 1024 as unsigned 16-bit values with RescaleIntercept -1024;
    ``file_order`` renames the files (and instance numbers) in another order than position.
    """
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    order = file_order or list(range(len(positions_lps)))
    for k, position in enumerate(positions_lps):
        stored = array_hu[k] + 1024 if unsigned else array_hu[k]
        image = sitk.GetImageFromArray(stored.astype(np.uint16 if unsigned else np.int16))
        image.SetSpacing((pixel_spacing_mm[1], pixel_spacing_mm[0]))
        for tag, value in (
            ("0008|0060", modality),
            ("0020|000d", STUDY_UID),
            ("0020|000e", SERIES_UID),
            ("0020|0032", "\\".join(f"{v:.4f}" for v in position)),
            ("0020|0037", "1\\0\\0\\0\\1\\0"),
            ("0020|0013", str(order[k] + 1)),
            ("0028|0030", f"{pixel_spacing_mm[0]:.4f}\\{pixel_spacing_mm[1]:.4f}"),
            ("0028|1052", "0"),
            ("0028|1053", "1"),
        ):
            image.SetMetaData(tag, value)
        path = folder / f"slice_{order[k]:04d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(image)
        if unsigned:
            # The writer stores the pixels as given; the rescale is set on the file itself.
            dataset = pydicom.dcmread(path)
            dataset.SOPClassUID = CT_IMAGE_STORAGE
            dataset.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
            dataset.PixelRepresentation = 0
            dataset.RescaleIntercept = "-1024"
            dataset.RescaleSlope = "1"
            dataset.save_as(path)


@pytest.fixture
def volume() -> np.ndarray:
    """A small CT (HU) with a bright block, ``[k, j, i]``, distinct in every slice."""
    rng = np.random.default_rng(3)
    array = rng.integers(-200, 200, size=(12, 20, 24)).astype(np.int16)
    array[4:8, 5:12, 6:15] = 1800
    return array


def stack(n: int, spacing: float, start=(-10.0, -20.0, 30.0)) -> list[tuple[float, float, float]]:
    return [(start[0], start[1], start[2] + k * spacing) for k in range(n)]


def test_unsigned_storage_with_rescale_reads_as_hounsfield_units(volume, tmp_path):
    write_axial_series(tmp_path / "s", volume, (0.7, 0.7), stack(12, 1.25), unsigned=True)
    ct = read_ct(tmp_path / "s")
    assert np.array_equal(ct.array_hu, volume.astype(np.float32))
    assert ct.metadata["SeriesInstanceUID"] == SERIES_UID
    assert ct.metadata["StudyInstanceUID"] == STUDY_UID


def test_non_square_pixels_and_shuffled_files_keep_the_grid(volume, tmp_path):
    """Rows 0.9 mm apart, columns 0.6 mm, files named out of position order: same HU and
    the IJK-to-RAS matrix the positions define (LPS on disk, RAS in memory)."""
    shuffled = [5, 2, 9, 0, 11, 7, 1, 10, 3, 8, 4, 6]
    write_axial_series(tmp_path / "s", volume, (0.9, 0.6), stack(12, 2.0), file_order=shuffled)
    ct = read_ct(tmp_path / "s")
    assert np.array_equal(ct.array_hu, volume.astype(np.float32))
    expected = np.array(
        [[-0.6, 0.0, 0.0, 10.0], [0.0, -0.9, 0.0, 20.0], [0.0, 0.0, 2.0, 30.0], [0.0, 0.0, 0.0, 1.0]]
    )
    assert np.allclose(ct.geometry.ijk_to_ras, expected, atol=1e-4)


def test_a_missing_slice_is_refused(volume, tmp_path):
    positions = stack(12, 1.5)
    write_axial_series(tmp_path / "s", volume, (0.7, 0.7), positions)
    (tmp_path / "s" / "slice_0006.dcm").unlink()
    with pytest.raises(CementLeakageError, match=r"misses 1 slice\(s\).*complete series"):
        read_ct(tmp_path / "s")


def test_uneven_spacing_is_refused(volume, tmp_path):
    positions = stack(12, 1.5)
    positions[7] = (positions[7][0], positions[7][1], positions[7][2] + 0.4)
    write_axial_series(tmp_path / "s", volume, (0.7, 0.7), positions)
    with pytest.raises(CementLeakageError, match="uneven slice spacing.*resample"):
        read_ct(tmp_path / "s")


@pytest.mark.parametrize("modality", ["MR", "PT"])
def test_a_series_of_another_modality_is_refused(volume, tmp_path, modality):
    # Its values may even look like HU (an MR series stored with CT-like scaling); the
    # modality tells, and the message names it.
    write_axial_series(tmp_path / "s", volume, (0.7, 0.7), stack(12, 1.5), modality=modality)
    with pytest.raises(CementLeakageError, match=rf"is {modality}, not CT: .*give the CT series"):
        read_ct(tmp_path / "s")


def test_gantry_tilt_is_refused(volume, tmp_path):
    """Axial slices whose positions step 1.5 mm along S and 0.26 mm along P: a 10 degree tilt."""
    tilt = np.radians(10.0)
    positions = [(-10.0, -20.0 + k * 1.5 * np.tan(tilt), 30.0 + k * 1.5) for k in range(12)]
    write_axial_series(tmp_path / "s", volume, (0.7, 0.7), positions)
    with pytest.raises(CementLeakageError, match=r"gantry tilt of 10\.0 degrees"):
        read_ct(tmp_path / "s")


def test_duplicate_positions_are_refused(volume, tmp_path):
    positions = stack(12, 1.5)
    positions[5] = positions[4]
    write_axial_series(tmp_path / "s", volume, (0.7, 0.7), positions)
    with pytest.raises(CementLeakageError, match="same position"):
        read_ct(tmp_path / "s")


def test_the_slice_thickness_is_read_apart_from_the_spacing(tmp_path):
    # 1 mm thick slices every 2 mm: the slices' sensitivity covers half their spacing.
    geometry = VolumeGeometry.from_origin_spacing_directions(
        np.array([-10.0, -20.0, 30.0]), np.array([0.7, 0.7, 2.0]), np.eye(3), (6, 8, 10)
    )
    array = np.arange(6 * 8 * 10, dtype=np.int16).reshape(6, 8, 10)
    write_ct_series(tmp_path / "s", CtVolume(array, geometry, slice_thickness_mm=1.0))
    ct = read_ct(tmp_path / "s")
    assert ct.geometry.spacing_mm == pytest.approx([0.7, 0.7, 2.0])
    assert ct.slice_thickness_mm == pytest.approx(1.0)
    assert ct.slice_profile_share() == pytest.approx(0.5)


@pytest.mark.parametrize("thickness_mm", [0.0, -1.0, float("nan")])
def test_a_slice_thickness_that_is_not_a_positive_number_is_refused(thickness_mm):
    geometry = VolumeGeometry.from_origin_spacing_directions(
        np.zeros(3), np.array([0.7, 0.7, 2.0]), np.eye(3), (2, 3, 4)
    )
    with pytest.raises(CementLeakageError, match="slice thickness"):
        CtVolume(np.zeros((2, 3, 4), np.int16), geometry, slice_thickness_mm=thickness_mm)


def test_a_series_without_a_slice_thickness_takes_its_spacing(volume, tmp_path):
    write_axial_series(tmp_path / "s", volume, (0.7, 0.7), stack(12, 2.0))
    ct = read_ct(tmp_path / "s")
    assert ct.slice_thickness_mm is None and ct.slice_profile_share() == 1.0
