"""Several treated vertebrae in one CT: one result per level, and neither takes the other's cement."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import ndimage

from CementLeakageLib.cli import EXIT_BAD_INPUT, main
from CementLeakageLib.ct_volume import CtVolume
from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.image_io import write_volume
from CementLeakageLib.multi_level import LevelRequest, measure_levels, read_level_requests
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.pipeline import measure_vertebra

DISC_MM = 3.0
BODY_MM = 25.0


@pytest.fixture(scope="module")
def two_treated_levels(tmp_path_factory):
    """The phantom with a 3 mm disc, and the target body's cement copied into the body above it
    with its blurred rim (two voxels around it; the stack repeats every body + disc = 28 mm, 28
    slices of 1 mm on this axial grid)."""
    phantom = make_phantom(PhantomSpec(spacing_mm=(1.0, 1.0, 1.0), disc_height_mm=DISC_MM))
    shift = int(round((BODY_MM + DISC_MM) / phantom.ct.geometry.spacing_mm[2]))
    array = phantom.ct.array_hu.copy()
    with_rim = ndimage.binary_dilation(phantom.cement_in_body_mask, iterations=2) & phantom.body_mask
    k, j, i = np.nonzero(with_rim)
    array[k + shift, j, i] = phantom.ct.array_hu[k, j, i]
    ct = CtVolume(array_hu=array, geometry=phantom.ct.geometry, source="two treated levels")
    truth = phantom.truth
    step = np.array([0.0, 0.0, BODY_MM + DISC_MM])
    requests = [
        LevelRequest("L1", truth.upper_ras, truth.lower_ras, "left"),
        LevelRequest("T12", truth.upper_ras + step, truth.lower_ras + step, "left"),
    ]
    path = tmp_path_factory.mktemp("two_levels") / "ct.nrrd"
    write_volume(ct.array_hu, ct.geometry, path)
    return phantom, ct, requests, path


def test_each_level_gets_its_own_numbers(two_treated_levels):
    phantom, ct, requests, _ = two_treated_levels
    truth = phantom.truth
    l1, t12 = measure_levels(ct, requests)
    for result in (l1, t12):
        measurement = result.measurement
        assert measurement.vbv_cm3 == pytest.approx(truth.vbv_cm3, rel=0.04)
        assert measurement.bcv_cm3 == pytest.approx(truth.bcv_cm3, rel=0.04)
        assert measurement.psbcv_cm3 == pytest.approx(truth.psbcv_cm3, rel=0.04)
        assert measurement.psbcv_vbv_pct == pytest.approx(truth.psbcv_vbv_pct, abs=0.7)
    assert not (l1.body_mask & t12.body_mask).any()
    # The same level measured alone gives the same body cement.
    alone = measure_vertebra(ct, truth.upper_ras, truth.lower_ras, "left", level="L1").measurement
    assert l1.measurement.bcv_cm3 == pytest.approx(alone.bcv_cm3, abs=1e-12)


def test_neither_level_takes_the_others_cement(two_treated_levels):
    """Cement inside one level's body is never the other level's extravertebral cement: the
    extravertebral cement of both levels together is the pedicle tail and the leak of L1."""
    phantom, ct, requests, _ = two_treated_levels
    l1, t12 = measure_levels(ct, requests)
    for result, other in ((l1, t12), (t12, l1)):
        assert not (result.extravertebral_cement_mask & other.body_mask).any()
    total = l1.measurement.extravertebral_cement_cm3 + t12.measurement.extravertebral_cement_cm3
    assert total == pytest.approx(phantom.truth.extravertebral_cement_cm3, rel=0.10)


def test_the_command_line_takes_repeated_options_a_json_or_a_csv_file(two_treated_levels, tmp_path, capsys):
    _, _, requests, path = two_treated_levels

    def point(values):
        return ",".join(f"{v:.4f}" for v in values)

    options = ["measure", str(path), "--json"]
    for request in requests:
        options += ["--level", request.level, "--upper", point(request.upper_ras)]
        options += ["--lower", point(request.lower_ras), "--side", request.side]
    assert main(options) == 0
    from_options = json.loads(capsys.readouterr().out)
    assert [record["level"] for record in from_options["levels"]] == ["L1", "T12"]

    levels_json = tmp_path / "levels.json"
    levels_json.write_text(
        json.dumps(
            [
                {"level": r.level, "upper": point(r.upper_ras), "lower": list(r.lower_ras), "side": r.side}
                for r in requests
            ]
        ),
        encoding="utf-8",
    )
    levels_csv = tmp_path / "levels.csv"
    with open(levels_csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["level", "side", "upper_r", "upper_a", "upper_s", "lower_r", "lower_a", "lower_s"])
        for r in requests:
            writer.writerow([r.level, r.side, *r.upper_ras, *r.lower_ras])
    for levels_file in (levels_json, levels_csv):
        assert main(["measure", str(path), "--levels", str(levels_file), "--json"]) == 0
        from_file = json.loads(capsys.readouterr().out)
        for a, b in zip(from_options["levels"], from_file["levels"]):
            assert a["psbcv_cm3"] == pytest.approx(b["psbcv_cm3"], abs=1e-6)
            assert a["vbv_cm3"] == pytest.approx(b["vbv_cm3"], abs=1e-6)

    out = tmp_path / "bundle"
    assert main(["measure", str(path), "--levels", str(levels_json), "--out", str(out)]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in out.iterdir())
    assert {"L1.seg.nrrd", "T12.seg.nrrd", "L1.mrk.json", "T12.mrk.json", "L1.png", "T12.png"} <= set(names)
    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        assert [row["level"] for row in csv.DictReader(handle)] == ["L1", "T12"]
    assert main(["verify", str(out)]) == 0


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (
            ["--upper", "0,0,30", "--lower", "0,0,5", "--upper", "0,0,60", "--side", "left"],
            "one --upper and one --lower",
        ),
        (
            ["--level", "L1", "--level", "L1", "--upper", "0,0,30", "--lower", "0,0,5", "--upper", "0,0,60"]
            + ["--lower", "0,0,35", "--side", "left"],
            "given more than once",
        ),
        (
            [
                "--upper",
                "0,0,30",
                "--lower",
                "0,0,5",
                "--upper",
                "0,0,60",
                "--lower",
                "0,0,35",
                "--side",
                "left",
            ],
            "one --level per level",
        ),
    ],
)
def test_inconsistent_levels_are_refused(two_treated_levels, capsys, extra, fragment):
    _, _, _, path = two_treated_levels
    assert main(["measure", str(path), *extra]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err


def test_one_body_given_twice_under_two_names_is_refused(two_treated_levels, capsys):
    # The L1's points copied to a second level: both levels segmented the same body and each
    # was reported as a vertebra of its own, its cement counted twice.
    _, ct, requests, path = two_treated_levels
    l1 = requests[0]
    copy = LevelRequest("L2", l1.upper_ras, l1.lower_ras, "left")
    with pytest.raises(
        CementLeakageError, match="levels L1 and L2 mark the same vertebral body .*share 100%"
    ):
        measure_levels(ct, [l1, copy])
    points = ["--upper", ",".join(map(str, l1.upper_ras)), "--lower", ",".join(map(str, l1.lower_ras))]
    argv = ["measure", str(path), "--level", "L1", *points, "--level", "L2", *points, "--side", "left"]
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mark the same vertebral body" in err


def test_bodies_given_by_hand_that_overlap_are_measured_with_the_overlap_named(two_treated_levels):
    # Masks drawn by hand are measured as they are, even where the T12's reaches two slices into
    # the L1's body: both levels name the voxels they share, whose cement counts in both.
    phantom, ct, requests, _ = two_treated_levels
    l1_body = phantom.body_mask
    slices = int(round((BODY_MM + DISC_MM) / ct.geometry.spacing_mm[2]))
    top = int(np.nonzero(l1_body.any(axis=(1, 2)))[0].max())
    t12_body = np.roll(l1_body, slices, axis=0)
    t12_body[top - 1 : top + 1] |= l1_body[top - 1 : top + 1]
    shared = int(np.count_nonzero(l1_body & t12_body))
    assert shared > 0
    cement = phantom.cement_in_body_mask
    given = {"L1": (l1_body, cement), "T12": (t12_body, np.roll(cement, slices, axis=0))}
    l1, t12 = measure_levels(ct, requests, given_masks=given)
    voxel_cm3 = ct.geometry.voxel_volume_mm3 / 1000.0
    assert l1.measurement.vbv_cm3 == pytest.approx(l1_body.sum() * voxel_cm3, rel=1e-12)
    assert t12.measurement.vbv_cm3 == pytest.approx(t12_body.sum() * voxel_cm3, rel=1e-12)
    for result, body, other in ((l1, l1_body, "T12"), (t12, t12_body, "L1")):
        named = [w for w in result.measurement.warnings if "shares" in w]
        assert len(named) == 1
        percent = 100.0 * shared / body.sum()
        assert f"shares {shared * voxel_cm3:.2f} cm3 ({percent:.0f}% of it) with level {other}'s" in named[0]


@pytest.mark.parametrize(
    "content",
    [
        "level;side;upper_r;upper_a;upper_s;lower_r;lower_a;lower_s\nL1;left;4,25;-8;37,5;4;-8,5;12,5\n",
        "level\tside\tupper\tlower\nL1\tleft\t4.25,-8,37.5\t4,-8.5,12.5\n",
        'level,side,upper,lower\nL1,left,"4.25,-8,37.5","4,-8.5,12.5"\n',
    ],
    ids=["semicolons and decimal commas", "tabs", "commas"],
)
def test_a_csv_of_levels_from_a_spreadsheet_of_any_locale_is_read(tmp_path, content):
    # A spreadsheet saved where the comma is the decimal mark separates its columns with
    # semicolons; each was read as one column named by the whole header ("has no level or side").
    path = tmp_path / "levels.csv"
    path.write_text(content, encoding="utf-8")
    (request,) = read_level_requests(path)
    assert request.level == "L1" and request.side == "left"
    assert request.upper_ras.tolist() == [4.25, -8.0, 37.5]
    assert request.lower_ras.tolist() == [4.0, -8.5, 12.5]


def test_a_csv_of_levels_that_is_not_utf8_is_refused_saying_so(tmp_path):
    path = tmp_path / "levels.csv"
    path.write_bytes('level,side,upper,lower\nL\u00fc1,left,"4,-8,37.5","4,-8,12.5"\n'.encode("latin-1"))
    with pytest.raises(CementLeakageError, match="levels.csv is not UTF-8 text: save it as UTF-8"):
        read_level_requests(path)
