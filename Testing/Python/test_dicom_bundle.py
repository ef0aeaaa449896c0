"""A phantom written as a DICOM CT series measures as its NRRD does, and its bundle carries a
DICOM Segmentation and Structured Report that read back to the same masks and numbers and that
the dicom3tools validator accepts."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from CementLeakageLib.cli import main
from CementLeakageLib.dicom_export import read_dicom_seg_masks, read_dicom_sr_measurements
from CementLeakageLib.dicom_series import read_series_datasets, series_geometry, write_ct_series
from CementLeakageLib.image_io import read_ct, write_volume
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.segmentation_files import read_segment_masks, read_segment_names
from CementLeakageLib.segments import SEGMENT_NAMES
from CementLeakageLib.sitk_bridge import resample_onto, to_sitk

QUANTITIES = ("vbv_cm3", "bcv_cm3", "psbcv_cm3", "bcv_vbv_pct", "psbcv_vbv_pct", "extravertebral_cement_cm3")


def point(values) -> str:
    return ",".join(f"{v:.4f}" for v in values)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The same phantom as NRRD and as a DICOM series, each measured with --out."""
    folder = tmp_path_factory.mktemp("dicom_case")
    phantom = make_phantom(PhantomSpec(spacing_mm=(1.0, 1.0, 1.0), n_vertebrae=1, orientation="oblique"))
    nrrd = folder / "ct.nrrd"
    write_volume(phantom.ct.array_hu, phantom.ct.geometry, nrrd)
    write_ct_series(folder / "series", phantom.ct, patient_id="PID-0815")
    truth = phantom.truth
    records = {}
    for name, source in (("nrrd", nrrd), ("dicom", folder / "series")):
        out = folder / f"bundle_{name}"
        argv = ["measure", str(source), "--upper", point(truth.upper_ras), "--lower", point(truth.lower_ras)]
        assert main([*argv, "--side", truth.side, "--level", "L1", "--out", str(out), "--json"]) == 0
        records[name] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return phantom, folder, records


def test_the_dicom_series_measures_as_the_nrrd(case):
    _, _, records = case
    from_nrrd, from_dicom = records["nrrd"]["levels"][0], records["dicom"]["levels"][0]
    for key in QUANTITIES:
        assert from_dicom[key] == pytest.approx(from_nrrd[key], rel=1e-9, abs=1e-12), key
    assert from_dicom["exceeds_cutoff"] is from_nrrd["exceeds_cutoff"]
    identity = records["dicom"]["input"]
    assert identity["SeriesInstanceUID"] and identity["StudyInstanceUID"] and identity["FrameOfReferenceUID"]


def test_the_dicom_seg_reads_back_voxel_for_voxel(case):
    phantom, folder, records = case
    bundle = folder / "bundle_dicom"
    record = records["dicom"]["levels"][0]
    assert record["files"]["dicom_seg"] == "L1.seg.dcm" and record["files"]["dicom_sr"] == "L1.sr.dcm"
    datasets = read_series_datasets(folder / "series")
    from_seg = read_dicom_seg_masks(bundle / "L1.seg.dcm", datasets)
    ct = read_ct(folder / "series")
    from_nrrd = read_segment_masks(bundle / "L1.seg.nrrd", list(SEGMENT_NAMES), ct.geometry)
    series = series_geometry(datasets)
    for name in SEGMENT_NAMES:
        expected = resample_onto(
            to_sitk(from_nrrd[name].astype(np.uint8), ct.geometry), series, linear=False, default_value=0
        )
        assert np.array_equal(from_seg[name], expected > 0), name
    assert from_seg["Vertebral body"].sum() == record["body_voxels"]


def test_the_dicom_sr_holds_the_numbers(case):
    _, folder, records = case
    record = records["dicom"]["levels"][0]
    (level,) = read_dicom_sr_measurements(folder / "bundle_dicom" / "L1.sr.dcm")
    assert level["level"] == "L1" and level["exceeds_cutoff"] is record["exceeds_cutoff"]
    for key, (value, _unit) in level["measurements"].items():
        if key in record:
            assert value == pytest.approx(record[key], rel=1e-9), key


def test_the_bundle_segmentation_loads_with_its_segments(case):
    _, folder, _ = case
    names = read_segment_names(folder / "bundle_dicom" / "L1.seg.nrrd")
    assert names[:4] == list(SEGMENT_NAMES)
    # Then one segment per extravertebral component: the pedicle tract and the paravertebral leak.
    assert sorted(name.split(": ")[1] for name in names[4:]) == ["paravertebral, left", "pedicle tract, left"]


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools (dciodvfy) is not installed")
@pytest.mark.parametrize("name", ["L1.seg.dcm", "L1.sr.dcm"])
def test_dciodvfy_finds_no_errors(case, name):
    _, folder, _ = case
    run = subprocess.run(
        ["dciodvfy", "-new", str(folder / "bundle_dicom" / name)], capture_output=True, text=True
    )
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert errors == []
