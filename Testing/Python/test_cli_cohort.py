"""``cementleakage cohort``: the command prints and writes what the statistics module computes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from CementLeakageLib.cli import EXIT_BAD_INPUT, main


@pytest.fixture
def cohort_file(tmp_path):
    rng = np.random.default_rng(7)
    leakage = np.r_[np.ones(59, int), np.zeros(526, int)]
    ratio = np.r_[rng.normal(17.0, 6.0, 59), rng.normal(14.0, 6.0, 526)]
    age = np.r_[rng.normal(74.0, 8.0, 59), rng.normal(72.0, 8.0, 526)]
    sex = np.where(rng.random(585) < 0.25, "M", "F")
    path = tmp_path / "cohort.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case_id", "level", "psbcv_vbv_pct", "age", "sex", "leakage"])
        for index in range(585):
            writer.writerow(
                [f"C{index}", "L1", f"{ratio[index]:.6f}", f"{age[index]:.1f}", sex[index], leakage[index]]
            )
    return path, leakage, np.round(ratio, 6)


def test_cohort_json_and_files_equal_the_direct_computation(cohort_file, tmp_path, capsys):
    path, leakage, ratio = cohort_file
    out = tmp_path / "stats"
    argv = [
        "cohort",
        str(path),
        "--outcome",
        "leakage",
        "--factors",
        "psbcv_vbv_pct,age,sex",
        "--out",
        str(out),
    ]
    assert main([*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    roc = {entry["factor"]: entry for entry in document["roc"]}
    assert roc["psbcv_vbv_pct"]["auc"] == pytest.approx(roc_auc_score(leakage, ratio), abs=1e-12)
    assert sorted(p.name for p in out.iterdir()) == ["cohort.json", "cohort.md", "roc.png"]
    assert json.loads((out / "cohort.json").read_text(encoding="utf-8")) == document
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "psbcv_vbv_pct" in (out / "cohort.md").read_text(encoding="utf-8")
    # An existing result is not replaced unasked; --force replaces it.
    assert main(argv) == EXIT_BAD_INPUT
    assert "--force" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0


def test_cohort_bad_input_is_one_line(cohort_file, capsys):
    path, _, _ = cohort_file
    assert main(["cohort", str(path), "--outcome", "leak"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "leak" in err and "Traceback" not in err
    assert main(["cohort", str(path.with_name("missing.csv")), "--outcome", "leakage"]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.count("\n") == 1


def test_a_cohort_of_categorical_factors_has_no_roc_plot(cohort_file, tmp_path, capsys):
    path, _, _ = cohort_file
    out = tmp_path / "stats"
    assert main(["cohort", str(path), "--outcome", "leakage", "--factors", "sex", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cohort.json", "cohort.md"]
    assert "sex" in capsys.readouterr().out
