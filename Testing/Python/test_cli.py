"""The ``cementleakage`` command line: its JSON contract, its files and its bad-input messages.

Every bad input must give a non-zero exit, one line on stderr naming the problem, no
traceback, and no result files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from test_unseen_endplates import FAINT_SHALLOW_DISHES

from CementLeakageLib.cli import EXIT_BAD_INPUT, EXIT_MISMATCH, main
from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.image_io import read_ct, write_volume
from CementLeakageLib.markups_files import read_endplate_markups_file
from CementLeakageLib.mrml_nodes import mask_sha256
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.pipeline import measure_vertebra
from CementLeakageLib.segmentation_files import read_segment_masks, write_segmentation_file
from CementLeakageLib.segments import BODY, CEMENT, EXTRAVERTEBRAL_CEMENT, PUNCTURE_SIDE_CEMENT

REQUIRED_KEYS = {
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
    "upper_ras",
    "lower_ras",
    "plane_normal_ras",
    "software_version",
    "input_sha256",
    "warnings",
}


def point(ras) -> str:
    return ",".join(f"{value:.4f}" for value in ras)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(PhantomSpec(level="L1", side="left", spacing_mm=(0.9, 0.9, 1.0)))


@pytest.fixture(scope="module")
def ct_file(phantom, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ct") / "phantom.nrrd"
    write_volume(phantom.ct.array_hu, phantom.ct.geometry, path)
    return path


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def measure_args(ct: Path, upper, lower, *extra: str) -> list[str]:
    return ["measure", str(ct), "--upper", point(upper), "--lower", point(lower), "--side", "left", *extra]


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("cementleakage: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment.lower() in err.lower()


def test_json_is_one_object_with_the_contract_keys_and_the_api_numbers(phantom, ct_file, capsys):
    truth = phantom.truth
    code, out, err = run(
        measure_args(ct_file, truth.upper_ras, truth.lower_ras, "--level", "L1", "--json"), capsys
    )
    assert code == 0, err
    record = json.loads(out)
    assert REQUIRED_KEYS <= set(record)
    assert isinstance(record["warnings"], list)

    api = measure_vertebra(read_ct(ct_file), truth.upper_ras, truth.lower_ras, "left", level="L1").measurement
    for key in (
        "vbv_cm3",
        "bcv_cm3",
        "psbcv_cm3",
        "bcv_vbv_pct",
        "psbcv_vbv_pct",
        "extravertebral_cement_cm3",
    ):
        assert record[key] == pytest.approx(getattr(api, key), abs=1e-12)
    assert record["exceeds_cutoff"] is api.exceeds_cutoff is True
    assert record["input_sha256"] == api.input_sha256 and len(record["input_sha256"]) == 64
    assert record["upper_ras"] == pytest.approx(list(truth.upper_ras), abs=1e-4)
    # Left puncture: the plane's normal points to patient left (-R).
    assert record["plane_normal_ras"][0] < -0.99


def test_cutoff_option_moves_the_flag(phantom, ct_file, capsys):
    truth = phantom.truth
    args = measure_args(ct_file, truth.upper_ras, truth.lower_ras, "--json", "--cutoff", "25")
    code, out, _ = run(args, capsys)
    record = json.loads(out)
    assert code == 0 and record["cutoff_pct"] == 25.0
    assert record["exceeds_cutoff"] is (record["psbcv_vbv_pct"] > 25.0) is False
    assert record["near_cutoff"] is (abs(record["psbcv_vbv_pct"] - 25.0) <= 0.5)
    close_cutoff = f"{record['psbcv_vbv_pct'] - 0.3:.4f}"
    near = measure_args(ct_file, truth.upper_ras, truth.lower_ras, "--json", "--cutoff", close_cutoff)
    code, out, _ = run(near, capsys)
    flagged = json.loads(out)
    assert code == 0 and flagged["exceeds_cutoff"] is True and flagged["near_cutoff"] is True
    assert any("may fall either way" in warning for warning in flagged["warnings"])


def test_out_writes_the_audit_bundle(phantom, ct_file, tmp_path, capsys):
    """--out writes the segmentation, the points and the results with their provenance."""
    truth = phantom.truth
    out = tmp_path / "results"
    code, stdout, err = run(
        measure_args(ct_file, truth.upper_ras, truth.lower_ras, "--level", "L1", "--json", "--out", str(out)),
        capsys,
    )
    assert code == 0, err
    assert sorted(path.name for path in out.iterdir()) == [
        "L1.mrk.json",
        "L1.png",
        "L1.seg.nrrd",
        "report.html",
        "results.csv",
        "results.json",
    ]
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    record = document["levels"][0]
    printed = json.loads(stdout)
    for key in printed:
        assert record[key] == printed[key], key
    assert document["input"]["sha256"] == hashlib.sha256(ct_file.read_bytes()).hexdigest()
    assert (
        document["exported_utc"].endswith("Z") and document["software_version"] == printed["software_version"]
    )
    assert record["parameters"]["cement_min_hu"] == 1500.0 and record["parameters"]["cutoff_pct"] == 13.68
    assert record["segments"]["body"]["source"] == "automatic"
    assert record["segments"]["body"]["edited_by_hand"] is False

    ct = read_ct(ct_file)
    result = measure_vertebra(ct, truth.upper_ras, truth.lower_ras, "left", level="L1")
    names = [BODY, CEMENT, PUNCTURE_SIDE_CEMENT, EXTRAVERTEBRAL_CEMENT]
    masks = read_segment_masks(out / "L1.seg.nrrd", names, ct.geometry)
    for name, expected in result.masks_by_segment_name().items():
        assert np.array_equal(masks[name], expected), name
    assert record["segments"]["body"]["mask_sha256"] == mask_sha256(masks[BODY])
    assert record["segments"]["cement"]["mask_sha256"] == mask_sha256(masks[CEMENT])
    upper, lower = read_endplate_markups_file(out / "L1.mrk.json", level="L1")
    assert upper == pytest.approx(truth.upper_ras, abs=1e-6)
    assert lower == pytest.approx(truth.lower_ras, abs=1e-6)
    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and float(rows[0]["psbcv_vbv_pct"]) == pytest.approx(
        record["psbcv_vbv_pct"], abs=1e-12
    )
    # The blur the automatic segmentation measured on the bolus, in the JSON and the CSV.
    assert 0.3 <= record["ct_blur_sigma_mm"] <= 1.2
    assert float(rows[0]["ct_blur_sigma_mm"]) == pytest.approx(record["ct_blur_sigma_mm"], abs=1e-12)
    # Each point's distance from the body's centre line (mm), upper then lower, within 0.1 mm of
    # the line on the phantom; the CSV gives them to 0.01 mm.
    assert record["points_off_centre_mm"] == pytest.approx([0.0, 0.0], abs=0.1)
    csv_offsets = [float(v) for v in rows[0]["points_off_centre_mm"].split()]
    assert csv_offsets == pytest.approx(record["points_off_centre_mm"], abs=0.005)

    # A second run refuses to replace the results without --force.
    code, stdout, err = run(
        measure_args(ct_file, truth.upper_ras, truth.lower_ras, "--level", "L1", "--out", str(out)), capsys
    )
    assert_one_line_error(code, stdout, err, "--force")

    # verify re-measures the bundle from its masks and points: every number matches ...
    code, stdout, err = run(["verify", str(out), "--json"], capsys)
    assert code == 0, err
    verification = json.loads(stdout)
    # (nine quantities, two mask checksums, and the two points results.json states against the
    # markups file's)
    assert verification["all_match"] is True and len(verification["checks"]) == 13
    # ... and a changed number is named, with exit status 1.
    document["levels"][0]["psbcv_cm3"] += 0.01
    (out / "results.json").write_text(json.dumps(document), encoding="utf-8")
    code, stdout, err = run(["verify", str(out)], capsys)
    assert code == EXIT_MISMATCH
    assert "psbcv_cm3" in stdout and "1 of 13 checks differ" in stdout
    # So is a point of results.json that is not the one the masks were measured from (a hundredth
    # of a millimetre off), or not a point at all.
    document["levels"][0]["psbcv_cm3"] -= 0.01
    for changed in ([*truth.upper_ras[:2], truth.upper_ras[2] + 0.01], "4,-8,37.5"):
        document["levels"][0]["upper_ras"] = (
            [float(v) for v in changed] if isinstance(changed, list) else changed
        )
        (out / "results.json").write_text(json.dumps(document), encoding="utf-8")
        code, stdout, err = run(["verify", str(out)], capsys)
        assert code == EXIT_MISMATCH, err
        assert "upper_ras" in stdout and "1 of 13 checks differ" in stdout


def test_a_bundle_of_a_given_segmentation_records_hand_edits(phantom, ct_file, tmp_path, capsys):
    """A segmentation drawn by hand is marked as such, with the checksum of the mask measured."""
    truth = phantom.truth
    ct = read_ct(ct_file)
    segmentation = tmp_path / "manual.seg.nrrd"
    write_segmentation_file(
        segmentation, {BODY: phantom.body_mask, CEMENT: phantom.cement_in_body_mask}, ct.geometry
    )
    out = tmp_path / "bundle"
    args = measure_args(ct_file, truth.upper_ras, truth.lower_ras, "--segmentation", str(segmentation))
    code, _, err = run([*args, "--out", str(out)], capsys)
    assert code == 0, err
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))["levels"][0]
    assert record["segmentation_source"] == "given"
    assert record["segments"]["body"]["mask_sha256"] == mask_sha256(phantom.body_mask)
    code, _, err = run(["verify", str(out)], capsys)
    assert code == 0, err


def test_a_segmentation_drawn_on_another_scan_is_refused_as_such(phantom, tmp_path, capsys):
    # The same CT moved 300 mm up (another scan's grid): the body segment misses it entirely.
    # This was refused as "the vertebral body mask is empty ... segment the body first".
    truth = phantom.truth
    segmentation = tmp_path / "drawn.seg.nrrd"
    write_segmentation_file(
        segmentation, {BODY: phantom.body_mask, CEMENT: phantom.cement_in_body_mask}, phantom.ct.geometry
    )
    matrix = phantom.ct.geometry.ijk_to_ras.copy()
    matrix[2, 3] += 300.0
    moved = tmp_path / "moved.nrrd"
    write_volume(phantom.ct.array_hu, VolumeGeometry(matrix, phantom.ct.geometry.shape), moved)
    shift = np.array([0.0, 0.0, 300.0])
    args = measure_args(
        moved, truth.upper_ras + shift, truth.lower_ras + shift, "--segmentation", str(segmentation)
    )
    code, out, err = run(args, capsys)
    held = int(np.count_nonzero(phantom.body_mask))
    assert_one_line_error(
        code,
        out,
        err,
        f"segment 'Vertebral body' of drawn.seg.nrrd holds {held} voxels, none of them inside this CT",
    )


def test_given_segmentation_is_measured_as_it_is(phantom, ct_file, tmp_path, capsys):
    """Volumes of a given .seg.nrrd are voxel count times voxel volume, identical to the API."""
    truth = phantom.truth
    geometry = phantom.ct.geometry
    cement = phantom.cement_in_body_mask | phantom.extravertebral_cement_mask
    segmentation = tmp_path / "manual.seg.nrrd"
    write_segmentation_file(segmentation, {"Body (edited)": phantom.body_mask, "Cement": cement}, geometry)
    args = measure_args(
        ct_file,
        truth.upper_ras,
        truth.lower_ras,
        "--json",
        "--segmentation",
        str(segmentation),
        "--body-segment",
        "Body (edited)",
        "--cement-segment",
        "Cement",
    )
    code, out, err = run(args, capsys)
    assert code == 0, err
    record = json.loads(out)
    voxel_cm3 = geometry.voxel_volume_mm3 / 1000.0
    assert record["vbv_cm3"] == pytest.approx(np.count_nonzero(phantom.body_mask) * voxel_cm3, abs=1e-9)
    assert record["bcv_cm3"] == pytest.approx(
        np.count_nonzero(phantom.body_mask & cement) * voxel_cm3, abs=1e-9
    )
    api = measure_vertebra(
        read_ct(ct_file),
        truth.upper_ras,
        truth.lower_ras,
        "left",
        body_mask=phantom.body_mask,
        cement_mask=cement,
    ).measurement
    assert record["psbcv_cm3"] == pytest.approx(api.psbcv_cm3, abs=1e-12)
    assert record["segmentation_source"] == "given"


def test_missing_named_segment_is_named(phantom, ct_file, tmp_path, capsys):
    truth = phantom.truth
    segmentation = tmp_path / "manual.seg.nrrd"
    write_segmentation_file(segmentation, {"Bone": phantom.body_mask}, phantom.ct.geometry)
    args = measure_args(ct_file, truth.upper_ras, truth.lower_ras, "--segmentation", str(segmentation))
    code, out, err = run(args, capsys)
    assert_one_line_error(code, out, err, "Vertebral body", "Bone")


def test_no_cement_gives_zero_bcv_and_a_warning(tmp_path, capsys):
    spec = PhantomSpec(cement_in_body=False, spacing_mm=(1.0, 1.0, 1.0))
    phantom = make_phantom(spec)
    ct_path = tmp_path / "preoperative.nrrd"
    write_volume(phantom.ct.array_hu, phantom.ct.geometry, ct_path)
    code, out, err = run(
        measure_args(ct_path, phantom.truth.upper_ras, phantom.truth.lower_ras, "--json"), capsys
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["bcv_cm3"] == 0.0 and record["psbcv_vbv_pct"] == 0.0 and record["exceeds_cutoff"] is False
    assert any("no cement" in warning for warning in record["warnings"])
    assert record["vbv_cm3"] == pytest.approx(phantom.truth.vbv_cm3, rel=0.03)


BAD_POINTS = {
    "point outside the volume": (lambda u, lo: (u + (0.0, 0.0, 400.0), lo), ("upper", "outside")),
    "points closer than 5 mm": (lambda u, lo: (lo + (0.0, 0.0, 3.0), lo), ("5 mm",)),
    "coincident points": (lambda u, lo: (lo.copy(), lo), ("5 mm",)),
    "upper point below the lower one": (lambda u, lo: (lo, u), ("upper", "below")),
}


@pytest.mark.parametrize("case", list(BAD_POINTS))
def test_bad_points_are_refused(phantom, ct_file, tmp_path, capsys, case):
    truth = phantom.truth
    move, fragments = BAD_POINTS[case]
    upper, lower = move(np.asarray(truth.upper_ras, float), np.asarray(truth.lower_ras, float))
    out = tmp_path / "never"
    code, stdout, err = run(measure_args(ct_file, upper, lower, "--out", str(out)), capsys)
    assert_one_line_error(code, stdout, err, *fragments)
    assert not out.exists() or not any(out.iterdir())


def test_plane_that_misses_the_body_is_refused(phantom, ct_file, tmp_path, capsys):
    """Points 40 mm to the patient's right of the body put all of the body on one side."""
    truth = phantom.truth
    shift = np.array([40.0, 0.0, 0.0])
    cement = phantom.cement_in_body_mask
    segmentation = tmp_path / "manual.seg.nrrd"
    write_segmentation_file(
        segmentation, {"Vertebral body": phantom.body_mask, "Cement": cement}, phantom.ct.geometry
    )
    args = measure_args(
        ct_file,
        np.asarray(truth.upper_ras) + shift,
        np.asarray(truth.lower_ras) + shift,
        "--segmentation",
        str(segmentation),
    )
    code, out, err = run(args, capsys)
    assert_one_line_error(code, out, err, "misses the vertebral body")


def test_mr_like_intensities_are_refused(phantom, tmp_path, capsys):
    truth = phantom.truth
    mr = np.clip((phantom.ct.array_hu + 1024.0) * 0.25, 0, 1000).astype(np.float32)
    path = tmp_path / "mr.nrrd"
    write_volume(mr, phantom.ct.geometry, path)
    code, out, err = run(measure_args(path, truth.upper_ras, truth.lower_ras), capsys)
    assert_one_line_error(code, out, err, "Hounsfield")


def test_a_label_map_without_the_segments_is_refused_naming_a_few_of_its_labels(
    phantom, ct_file, tmp_path, capsys
):
    # A label map (or the CT itself) given as the segmentation reads as one segment per label:
    # the CT as a whole gave a message of about 60 000 characters listing 3807 of them.
    truth = phantom.truth
    labels = (np.arange(phantom.ct.array_hu.size).reshape(phantom.ct.array_hu.shape) % 25 + 1).astype(
        np.int16
    )
    path = tmp_path / "labels.nrrd"
    write_volume(labels, phantom.ct.geometry, path)
    code, out, err = run(
        measure_args(ct_file, truth.upper_ras, truth.lower_ras, "--segmentation", str(path)), capsys
    )
    assert_one_line_error(code, out, err, "labels.nrrd has no segment named", "(25 segments:", "and 15 more)")
    assert err.count("'Segment_") == 10
    assert "give the segmentation (.seg.nrrd) if this file is the CT or a label map" in err


def test_a_bundle_folder_that_cannot_be_made_is_a_bad_input_not_an_internal_error(
    phantom, ct_file, tmp_path, capsys
):
    # --out inside a file: the bundle's folder cannot be made there. This ended in
    # "internal error: FileExistsError" (exit 3).
    truth = phantom.truth
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    out = tmp_path / "notes.txt" / "bundle"
    code, stdout, err = run(
        measure_args(ct_file, truth.upper_ras, truth.lower_ras, "--out", str(out)), capsys
    )
    assert_one_line_error(code, stdout, err, "the bundle could not be written to", "folder you can write to")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_intensities_scaled_to_one_are_refused_as_not_hounsfield(phantom, tmp_path, capsys):
    # A CT normalised to 0-1 spans less than one unit: it was refused as "constant", which it
    # is not; it is told to be no HU instead.
    truth = phantom.truth
    normalised = ((phantom.ct.array_hu + 1024.0) / 4095.0).astype(np.float32)
    path = tmp_path / "normalised.nrrd"
    write_volume(normalised, phantom.ct.geometry, path)
    code, out, err = run(measure_args(path, truth.upper_ras, truth.lower_ras), capsys)
    assert_one_line_error(code, out, err, "Hounsfield", "lowest values near 0")
    assert "constant" not in err


@pytest.mark.parametrize("bad_value", [np.nan, np.inf], ids=["NaN", "infinite"])
def test_voxels_that_are_not_numbers_are_refused_wherever_they_lie(phantom, tmp_path, capsys, bad_value):
    # Three voxels in the middle of the body, far past the first 100 000 voxels that alone were
    # looked at: taken for neither bone nor cement, they were measured with nothing said.
    truth = phantom.truth
    array = phantom.ct.array_hu.astype(np.float32)
    k, j, i = (n // 2 for n in array.shape)
    assert phantom.body_mask[k, j, i] and k * array.shape[1] * array.shape[2] > 100_000
    array[k, j, i : i + 3] = bad_value
    path = tmp_path / "holes.nrrd"
    write_volume(array, phantom.ct.geometry, path)
    code, out, err = run(measure_args(path, truth.upper_ras, truth.lower_ras), capsys)
    assert_one_line_error(
        code, out, err, f"3 voxel(s) that are not numbers (NaN or infinite) among {array.size}"
    )


def test_zero_spacing_is_refused(phantom, tmp_path, capsys):
    truth = phantom.truth
    path = tmp_path / "zero_spacing.nhdr"
    raw = tmp_path / "zero_spacing.raw"
    array = phantom.ct.array_hu.astype(np.int16)
    raw.write_bytes(array.tobytes())
    nk, nj, ni = array.shape
    path.write_text(
        "NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\n"
        f"sizes: {ni} {nj} {nk}\nspace directions: (0,0,0) (0,0.9,0) (0,0,1)\n"
        "kinds: domain domain domain\nendian: little\nencoding: raw\nspace origin: (0,0,0)\n"
        f"data file: {raw.name}\n"
    )
    code, out, err = run(measure_args(path, truth.upper_ras, truth.lower_ras), capsys)
    assert_one_line_error(code, out, err, "spacing")


@pytest.mark.parametrize("content", [b"", b"this is a text file, not an image\n" * 10], ids=["empty", "text"])
def test_unreadable_file_is_refused(phantom, tmp_path, capsys, content):
    truth = phantom.truth
    path = tmp_path / "scan.nrrd"
    path.write_bytes(content)
    code, out, err = run(measure_args(path, truth.upper_ras, truth.lower_ras), capsys)
    assert_one_line_error(code, out, err, "scan.nrrd")


def test_missing_file_is_refused(phantom, tmp_path, capsys):
    truth = phantom.truth
    code, out, err = run(measure_args(tmp_path / "nowhere.nrrd", truth.upper_ras, truth.lower_ras), capsys)
    assert_one_line_error(code, out, err, "nowhere.nrrd")


def _write_dicom_series(
    folder: Path, array_hu: np.ndarray, geometry: VolumeGeometry, series_uid: str
) -> None:
    """Write ``array_hu`` as a CT series of single-frame DICOM files (LPS on disk)."""
    image = sitk.GetImageFromArray(array_hu.astype(np.int16))
    lps = np.diag([-1.0, -1.0, 1.0]) @ geometry.ijk_to_ras[:3, :]
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    image.SetSpacing([float(v) for v in spacing])
    image.SetDirection([float(v) for v in (lps[:, :3] / spacing).ravel()])
    image.SetOrigin([float(v) for v in lps[:, 3]])
    direction = np.array(image.GetDirection()).reshape(3, 3)
    orientation = "\\".join(f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        slice_image = image[:, :, k]
        origin = image.TransformIndexToPhysicalPoint((0, 0, k))
        for tag, value in (
            ("0008|0060", "CT"),
            ("0020|000e", series_uid),
            ("0020|000d", "1.2.826.0.1.3680043.8.498.1"),
            ("0020|0052", "1.2.826.0.1.3680043.8.498.2"),
            ("0018|0050", f"{spacing[2]:.4f}"),
            ("0020|0032", "\\".join(f"{v:.4f}" for v in origin)),
            ("0020|0013", str(k + 1)),
            ("0020|0037", orientation),
            ("0028|1053", "1"),
            ("0028|1052", "0"),
        ):
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{series_uid[-4:]}_{k:04d}.dcm"))
        writer.Execute(slice_image)


@pytest.mark.parametrize("anonymize", [False, True])
def test_a_dicom_bundle_keeps_the_uids_and_anonymize_drops_the_patient(tmp_path, capsys, anonymize):
    import pydicom

    small = make_phantom(PhantomSpec(spacing_mm=(1.0, 1.0, 1.0), n_vertebrae=1))
    folder = tmp_path / "dicom"
    folder.mkdir()
    series_uid = "1.2.826.0.1.3680043.8.498.1003"
    _write_dicom_series(folder, small.ct.array_hu, small.ct.geometry, series_uid)
    for path in folder.iterdir():
        dataset = pydicom.dcmread(path)
        dataset.PatientName, dataset.PatientID, dataset.AccessionNumber = "DOE^JANE", "PID-4711", "ACC-99"
        dataset.save_as(path)
    truth = small.truth
    out = tmp_path / "bundle"
    extra = ["--out", str(out), "--level", "L1"] + (["--anonymize"] if anonymize else [])
    code, _, err = run(measure_args(folder, truth.upper_ras, truth.lower_ras, *extra), capsys)
    assert code == 0, err
    text = (out / "results.json").read_text(encoding="utf-8") + (out / "results.csv").read_text(
        encoding="utf-8"
    )
    identity = json.loads((out / "results.json").read_text(encoding="utf-8"))["input"]
    assert identity["SeriesInstanceUID"] == series_uid
    assert identity["StudyInstanceUID"] == "1.2.826.0.1.3680043.8.498.1"
    assert series_uid in (out / "results.csv").read_text(encoding="utf-8")
    for identifying in ("DOE^JANE", "PID-4711", "ACC-99"):
        assert (identifying in text) is not anonymize, identifying
    assert all("DOE" not in path.name for path in out.iterdir())
    assert (out / "L1.seg.dcm").is_file() and (out / "L1.sr.dcm").is_file()


def test_dicom_folder_with_two_series_asks_for_one(tmp_path, capsys):
    small = make_phantom(PhantomSpec(spacing_mm=(1.5, 1.5, 1.5), n_vertebrae=1, pedicle_tail=False))
    folder = tmp_path / "dicom"
    folder.mkdir()
    crop = small.ct.array_hu[:12]
    _write_dicom_series(folder, crop, small.ct.geometry, "1.2.826.0.1.3680043.8.498.1001")
    _write_dicom_series(folder, crop, small.ct.geometry, "1.2.826.0.1.3680043.8.498.1002")
    truth = small.truth
    code, out, err = run(measure_args(folder, truth.upper_ras, truth.lower_ras), capsys)
    # Each series is named with its modality, its number of files and its description.
    assert_one_line_error(code, out, err, "--series-uid", "1001 (CT, 12 files", "1002 (CT, 12 files")


def test_console_script_reports_bad_input_without_traceback(tmp_path):
    """The installed entry point, run as a process with no stdin: exit 2 and one stderr line."""
    missing = tmp_path / "missing.nrrd"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "CementLeakageLib.cli",
            "measure",
            str(missing),
            "--upper",
            "0,0,30",
            "--lower",
            "-1,-2,3",
            "--side",
            "left",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )
    assert process.returncode == EXIT_BAD_INPUT
    assert process.stdout == ""
    assert process.stderr.count("\n") == 1 and "missing.nrrd" in process.stderr


def test_demo_prints_the_phantom_truth_beside_the_measurement(tmp_path, capsys):
    code, out, err = run(["demo", "--json", "--out", str(tmp_path / "demo")], capsys)
    assert code == 0, err
    record = json.loads(out)
    truth = record["phantom_truth"]
    for key in ("vbv_cm3", "bcv_cm3", "psbcv_cm3"):
        assert record[key] == pytest.approx(truth[key], rel=0.03)
    assert record["psbcv_vbv_pct"] == pytest.approx(truth["psbcv_vbv_pct"], abs=0.5)
    assert record["exceeds_cutoff"] is truth["exceeds_cutoff"]
    assert (tmp_path / "demo" / "L1.seg.nrrd").exists() and (tmp_path / "demo" / "results.json").exists()
    assert (tmp_path / "demo" / "demo_L1_ct.nrrd").exists()


def test_missing_spacing_is_refused(phantom, tmp_path, capsys):
    """An NRRD header without spacing would silently read as 1 mm voxels: refused instead."""
    truth = phantom.truth
    raw = tmp_path / "no_spacing.raw"
    array = phantom.ct.array_hu.astype(np.int16)
    raw.write_bytes(array.tobytes())
    nk, nj, ni = array.shape
    path = tmp_path / "no_spacing.nhdr"
    path.write_text(
        f"NRRD0004\ntype: short\ndimension: 3\nsizes: {ni} {nj} {nk}\n"
        f"endian: little\nencoding: raw\ndata file: {raw.name}\n"
    )
    code, out, err = run(measure_args(path, truth.upper_ras, truth.lower_ras), capsys)
    assert_one_line_error(code, out, err, "no voxel spacing")


def test_api_raises_the_message_the_command_line_prints(phantom, ct_file, capsys):
    """Bad input gives the API a CementLeakageError whose text is the command line's message."""
    truth = phantom.truth
    upper = np.asarray(truth.upper_ras) + (0.0, 0.0, 400.0)
    code, _, err = run(measure_args(ct_file, upper, truth.lower_ras), capsys)
    with pytest.raises(CementLeakageError) as raised:
        measure_vertebra(read_ct(ct_file), upper, truth.lower_ras, "left")
    assert code == EXIT_BAD_INPUT
    assert err.strip() == f"cementleakage: error: {raised.value}"


def test_a_series_that_cannot_be_referenced_still_gives_a_bundle_with_a_warning(tmp_path, capsys):
    import pydicom

    small = make_phantom(PhantomSpec(spacing_mm=(1.0, 1.0, 1.0), n_vertebrae=1))
    folder = tmp_path / "dicom"
    folder.mkdir()
    _write_dicom_series(folder, small.ct.array_hu, small.ct.geometry, "1.2.826.0.1.3680043.8.498.1004")
    for path in folder.iterdir():
        dataset = pydicom.dcmread(path)
        del dataset.FrameOfReferenceUID
        dataset.save_as(path)
    truth = small.truth
    out = tmp_path / "bundle"
    code, stdout, err = run(measure_args(folder, truth.upper_ras, truth.lower_ras, "--out", str(out)), capsys)
    assert code == 0, err
    assert "no DICOM Segmentation" in stdout
    assert not (out / "vertebra.seg.dcm").exists() and (out / "results.json").is_file()


def test_a_stated_slice_thickness_measures_as_the_ct_that_carries_it(tmp_path, capsys):
    # The faint biconcave T6 on 2 mm slices, each about 1 mm thick (the phantom's point-sampled
    # profile): as NRRD, which does not store a slice thickness, it is taken as the spacing until
    # --slice-thickness states it; then it measures as the phantom's own CT, which carries it.
    spec = PhantomSpec.for_level(**FAINT_SHALLOW_DISHES)
    shallow = make_phantom(spec)
    truth = shallow.truth
    path = tmp_path / "t6.nrrd"
    write_volume(shallow.ct.array_hu, shallow.ct.geometry, path)
    in_memory = measure_vertebra(shallow.ct, truth.upper_ras, truth.lower_ras, "left", level="T6").measurement
    thickness = f"{shallow.ct.slice_thickness_mm:.17g}"
    records = {}
    for name, extra in (("stated", ["--slice-thickness", thickness]), ("spacing", [])):
        out = tmp_path / name
        argv = measure_args(path, truth.upper_ras, truth.lower_ras, "--out", str(out), *extra)
        code, _, err = run(argv, capsys)
        assert code == 0, err
        records[name] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    stated = records["stated"]["levels"][0]
    assert stated["vbv_cm3"] == pytest.approx(in_memory.vbv_cm3, rel=1e-12)
    assert records["stated"]["input"]["slice_thickness_mm"] == pytest.approx(shallow.ct.slice_thickness_mm)
    assert records["spacing"]["input"]["slice_thickness_mm"] is None
    # Within 4% of the analytic truth with its thickness stated; 4.9% low without.
    assert abs(stated["vbv_cm3"] / truth.vbv_cm3 - 1.0) <= 0.04
    assert records["spacing"]["levels"][0]["vbv_cm3"] / truth.vbv_cm3 - 1.0 < -0.045


@pytest.mark.parametrize("value", ["0", "-1", "thick"])
def test_a_slice_thickness_that_is_not_a_positive_number_is_refused(phantom, ct_file, capsys, value):
    truth = phantom.truth
    code, out, err = run(
        measure_args(ct_file, truth.upper_ras, truth.lower_ras, f"--slice-thickness={value}"), capsys
    )
    assert_one_line_error(code, out, err, "slice thickness", value)
