"""DICOM export: a CT series, a SEG of the body and cement and a TID 1500 SR of the numbers.

The series is checked against independent readers (SimpleITK/GDCM and the package's own
``read_ct``), every file against the standard with dciodvfy (dicom3tools), and the SEG and SR
by reading them back with highdicom.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from CementLeakageLib import __version__
from CementLeakageLib.ct_volume import CtVolume
from CementLeakageLib.dicom_export import (
    read_dicom_seg_masks,
    read_dicom_sr_measurements,
    write_dicom_seg,
    write_dicom_sr,
)
from CementLeakageLib.dicom_series import read_series_datasets, series_geometry, write_ct_series
from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.image_io import read_ct
from CementLeakageLib.phantom import PhantomSpec, make_phantom

ORIENTATIONS = ("axial", "oblique")
GEOMETRY_ATOL_MM = 1e-4
LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])
COLORS = {"L1 body": (0.95, 0.84, 0.57), "L1 cement": (0.35, 0.75, 1.0), "leak": (1.0, 0.0, 0.0)}
MEASUREMENT_KEYS = ("vbv_cm3", "bcv_cm3", "psbcv_cm3", "bcv_vbv_pct", "psbcv_vbv_pct", "cutoff_pct")


@functools.cache
def cropped_phantom(orientation: str):
    """A 1 mm phantom cropped to the target body plus 2 voxels: (CtVolume, body mask, cement mask, truth)."""
    phantom = make_phantom(PhantomSpec(orientation=orientation, spacing_mm=(1.0, 1.0, 1.0)))
    index = np.argwhere(phantom.body_mask)
    low = np.maximum(index.min(axis=0) - 2, 0)
    high = np.minimum(index.max(axis=0) + 3, phantom.body_mask.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    shift = np.eye(4)
    shift[:3, 3] = [low[2], low[1], low[0]]
    geometry = VolumeGeometry(
        phantom.ct.geometry.ijk_to_ras @ shift, tuple(int(b - a) for a, b in zip(low, high))
    )
    ct = CtVolume(array_hu=phantom.ct.array_hu[box], geometry=geometry, source="phantom")
    return ct, phantom.body_mask[box], phantom.cement_in_body_mask[box], phantom.truth


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Per orientation: the series folder, its sorted datasets, the SEG and SR paths and the inputs."""
    cases = {}
    for orientation in ORIENTATIONS:
        ct, body, cement, truth = cropped_phantom(orientation)
        folder = tmp_path_factory.mktemp(f"ct_{orientation}")
        paths = write_ct_series(folder / "series", ct)
        datasets = read_series_datasets(folder / "series")
        masks = {"L1 body": body, "L1 cement": cement, "leak": np.zeros_like(body)}
        seg_path = write_dicom_seg(
            folder / "seg.dcm", datasets, masks, ct.geometry, COLORS, software_version=__version__
        )
        records = [
            {
                "level": truth.level,
                "side": truth.side,
                "vbv_cm3": truth.vbv_cm3,
                "bcv_cm3": truth.bcv_cm3,
                "psbcv_cm3": truth.psbcv_cm3,
                "bcv_vbv_pct": truth.bcv_vbv_pct,
                "psbcv_vbv_pct": truth.psbcv_vbv_pct,
                "cutoff_pct": truth.cutoff_pct,
                "exceeds_cutoff": truth.exceeds_cutoff,
            },
            {
                "level": "L2",
                "side": "right",
                "vbv_cm3": 31.25,
                "bcv_cm3": 2.0 / 3.0,
                "psbcv_cm3": 1e-3,
                "bcv_vbv_pct": 100.0 * (2.0 / 3.0) / 31.25,
                "psbcv_vbv_pct": 0.1 / 31.25,
                "cutoff_pct": 13.68,
                "exceeds_cutoff": False,
            },
        ]
        sr_path = write_dicom_sr(
            folder / "sr.dcm", datasets, pydicom.dcmread(seg_path), records, software_version=__version__
        )
        cases[orientation] = {
            "ct": ct,
            "paths": paths,
            "folder": folder / "series",
            "datasets": datasets,
            "masks": masks,
            "seg": seg_path,
            "sr": sr_path,
            "records": records,
        }
    return cases


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_series_reads_back_with_gdcm_to_the_same_hu_and_lps_geometry(written, orientation):
    case = written[orientation]
    ct = case["ct"]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(case["folder"])))
    image = reader.Execute()
    assert np.array_equal(sitk.GetArrayFromImage(image), np.rint(ct.array_hu).astype(int))
    linear_lps = LPS_FROM_RAS @ ct.geometry.ijk_to_ras[:3, :3]
    spacing = np.linalg.norm(linear_lps, axis=0)
    np.testing.assert_allclose(image.GetSpacing(), spacing, atol=GEOMETRY_ATOL_MM)
    np.testing.assert_allclose(
        np.reshape(image.GetDirection(), (3, 3)), linear_lps / spacing, atol=GEOMETRY_ATOL_MM
    )
    np.testing.assert_allclose(
        image.GetOrigin(), LPS_FROM_RAS @ ct.geometry.ijk_to_ras[:3, 3], atol=GEOMETRY_ATOL_MM
    )


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_series_reads_back_with_read_ct_to_the_same_hu_and_ras_geometry(written, orientation):
    case = written[orientation]
    back = read_ct(case["folder"])
    assert np.array_equal(back.array_hu, np.rint(case["ct"].array_hu))
    np.testing.assert_allclose(
        back.geometry.ijk_to_ras, case["ct"].geometry.ijk_to_ras, atol=GEOMETRY_ATOL_MM
    )
    assert back.geometry.shape == case["ct"].geometry.shape


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_series_stores_unsigned_values_with_a_rescale(written, orientation):
    first = pydicom.dcmread(written[orientation]["paths"][0])
    assert (first.PixelRepresentation, first.RescaleIntercept, first.RescaleSlope) == (0, -1024, 1)
    raw = first.pixel_array
    assert raw.dtype == np.uint16
    assert np.array_equal(raw.astype(int) - 1024, np.rint(written[orientation]["ct"].array_hu[0]).astype(int))


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_sorted_datasets_give_the_written_grid(written, orientation):
    geometry = series_geometry(written[orientation]["datasets"])
    np.testing.assert_allclose(
        geometry.ijk_to_ras, written[orientation]["ct"].geometry.ijk_to_ras, atol=GEOMETRY_ATOL_MM
    )


def _dciodvfy_errors(path) -> list[str]:
    executable = shutil.which("dciodvfy")
    if executable is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    result = subprocess.run([executable, "-new", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if "Error" in line]


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("kind", ("ct", "seg", "sr"))
def test_dciodvfy_reports_no_errors(written, orientation, kind):
    case = written[orientation]
    path = {"ct": case["paths"][len(case["paths"]) // 2], "seg": case["seg"], "sr": case["sr"]}[kind]
    assert _dciodvfy_errors(path) == []


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_seg_round_trip_is_voxel_exact_including_an_empty_segment(written, orientation):
    case = written[orientation]
    back = read_dicom_seg_masks(case["seg"], case["datasets"])
    assert list(back) == list(case["masks"])
    for name, mask in case["masks"].items():
        assert back[name].shape == mask.shape
        assert np.array_equal(back[name], mask), name
    assert case["masks"]["L1 body"].sum() > 10_000 and case["masks"]["L1 cement"].sum() > 1_000
    assert not back["leak"].any()


def test_seg_describes_segments_with_codes_colours_and_algorithm(written):
    seg = pydicom.dcmread(written["axial"]["seg"])
    assert seg.SegmentationType == "BINARY"
    items = {item.SegmentLabel: item for item in seg.SegmentSequence}
    assert items["L1 body"].SegmentedPropertyTypeCodeSequence[0].CodeValue == "272673000"
    assert items["L1 cement"].SegmentedPropertyCategoryCodeSequence[0].CodeValue == "105590001"
    for item in items.values():
        assert item.SegmentAlgorithmType == "SEMIAUTOMATIC"
        assert item.SegmentAlgorithmName == "CementLeakage"
        assert item.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == __version__
    # CIELab of pure red (L* 53.24, a* 80.09, b* 67.20), scaled as DICOM stores it.
    expected = np.array([53.24 / 100, (80.09 + 128) / 255, (67.20 + 128) / 255]) * 65535
    np.testing.assert_allclose(items["leak"].RecommendedDisplayCIELabValue, expected, atol=0.002 * 65535)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_sr_round_trip_gives_the_level_records(written, orientation):
    case = written[orientation]
    back = read_dicom_sr_measurements(case["sr"])
    assert len(back) == len(case["records"])
    for record, level in zip(case["records"], back):
        assert (level["level"], level["side"], level["exceeds_cutoff"]) == (
            record["level"],
            record["side"],
            record["exceeds_cutoff"],
        )
        assert set(level["measurements"]) == set(MEASUREMENT_KEYS)
        for key in MEASUREMENT_KEYS:
            value, unit = level["measurements"][key]
            assert value == pytest.approx(record[key], rel=1e-9, abs=0.0), key
            assert unit == ("cm3" if key.endswith("_cm3") else "%")


def test_sr_groups_reference_the_body_segment_of_the_seg(written):
    case = written["axial"]
    seg = pydicom.dcmread(case["seg"])
    groups = hd.sr.srread(case["sr"]).content.get_volumetric_roi_measurement_groups()
    assert [str(group.tracking_identifier) for group in groups] == ["L1 vertebral body", "L2 vertebral body"]
    for group in groups:
        assert group.referenced_segment.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert group.referenced_segment.referenced_segment_numbers == [1]


def test_masks_on_another_grid_are_refused(written, tmp_path):
    case = written["axial"]
    geometry = case["ct"].geometry
    matrix = geometry.ijk_to_ras.copy()
    matrix[0, 3] += 0.5
    shifted = VolumeGeometry(matrix, geometry.shape)
    with pytest.raises(CementLeakageError, match="does not match"):
        write_dicom_seg(
            tmp_path / "seg.dcm",
            case["datasets"],
            case["masks"],
            shifted,
            COLORS,
            software_version=__version__,
        )
    cropped = {name: mask[1:] for name, mask in case["masks"].items()}
    smaller = VolumeGeometry(geometry.ijk_to_ras, (geometry.shape[0] - 1, *geometry.shape[1:]))
    with pytest.raises(CementLeakageError, match="does not match"):
        write_dicom_seg(
            tmp_path / "seg.dcm", case["datasets"], cropped, smaller, COLORS, software_version=__version__
        )
    assert not (tmp_path / "seg.dcm").exists()
