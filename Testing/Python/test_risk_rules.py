"""Published risk rules, predictive values, the cement budget (``plan``) and the ``rules`` listing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from CementLeakageLib.cli import EXIT_BAD_INPUT, main
from CementLeakageLib.image_io import write_volume
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.risk_rules import (
    cement_budget,
    default_rule_name,
    evaluate_rule,
    get_rule,
    load_rules,
    predictive_values,
)


def point(values) -> str:
    return ",".join(f"{v:.4f}" for v in values)


def test_the_default_rule_is_the_papers():
    rule = get_rule(default_rule_name())
    assert rule.name == "gao2022-psbcv"
    assert (rule.metric, rule.threshold, rule.direction) == ("psbcv_vbv_pct", 13.68, "above")
    assert rule.figure("sensitivity_pct").value == 84.7
    assert rule.figure("specificity_pct").value == 37.8
    assert rule.cohort["events"].value == 59 and rule.cohort["vertebrae"].value == 585


def test_every_figure_says_whether_it_was_verified_and_where_it_comes_from():
    for rule in load_rules().values():
        assert rule.citation
        for figure in list(rule.figures.values()) + list(rule.cohort.values()):
            assert isinstance(figure.verified, bool)
            assert figure.source


def test_predictive_values_equal_counts_in_a_cohort_of_the_papers_size():
    """At 59 of 585 and sens 84.7% / spec 37.8%: PPV and NPV equal the 2x2 table's (1e-9)."""
    events, vertebrae = 59, 585
    values = predictive_values(84.7, 37.8, 100.0 * events / vertebrae)
    true_positive = 0.847 * events
    false_negative = events - true_positive
    true_negative = 0.378 * (vertebrae - events)
    false_positive = (vertebrae - events) - true_negative
    assert values.ppv_pct == pytest.approx(100 * true_positive / (true_positive + false_positive), abs=1e-9)
    assert values.npv_pct == pytest.approx(100 * true_negative / (true_negative + false_negative), abs=1e-9)
    # A positive flag raises the risk only a little above the 10.1% base rate; a negative one is reassuring.
    assert values.ppv_pct == pytest.approx(13.25, abs=0.01)
    assert values.npv_pct == pytest.approx(95.65, abs=0.05)


def test_a_rule_flags_strictly_above_its_threshold():
    rule = get_rule("gao2022-psbcv")
    record = {"level": "L1", "psbcv_vbv_pct": 13.68, "bcv_cm3": 3.0, "extravertebral_cement_cm3": 0.0}
    assert evaluate_rule(rule, record)["flagged"] is False
    record["psbcv_vbv_pct"] = 13.6801
    evaluation = evaluate_rule(rule, record)
    assert evaluation["flagged"] is True
    assert evaluation["predictive_values"]["verified"] is False  # sens/spec not read in the article
    assert evaluation["leakage_by_level"]["available"] is False
    volume_rule = get_rule("cement-volume-4ml")
    total = {"level": "L1", "bcv_cm3": 3.5, "extravertebral_cement_cm3": 0.6}
    assert evaluate_rule(volume_rule, total)["value"] == pytest.approx(4.1)
    assert evaluate_rule(volume_rule, total)["flagged"] is True


def test_cement_budget_is_the_threshold_share_of_the_body():
    vbv = 31.25
    assert cement_budget(get_rule("gao2022-psbcv"), vbv)["max_cement_ml"] == pytest.approx(
        0.1368 * vbv, abs=1e-12
    )
    assert cement_budget(get_rule("infusion-ratio-25.52"), vbv)["max_cement_ml"] == pytest.approx(
        0.2552 * vbv
    )
    assert cement_budget(get_rule("cement-volume-4ml"), vbv)["max_cement_ml"] == 4.0


@pytest.fixture(scope="module")
def preoperative(tmp_path_factory):
    phantom = make_phantom(
        PhantomSpec(
            spacing_mm=(1.0, 1.0, 1.0), cement_in_body=False, pedicle_tail=False, paravertebral_leak=False
        )
    )
    path = tmp_path_factory.mktemp("preop") / "preop.nrrd"
    write_volume(phantom.ct.array_hu, phantom.ct.geometry, path)
    return phantom, path


def test_plan_gives_the_vbv_and_the_budget_of_a_preoperative_ct(preoperative, capsys):
    phantom, path = preoperative
    truth = phantom.truth
    argv = ["plan", str(path), "--upper", point(truth.upper_ras), "--lower", point(truth.lower_ras)]
    code = main([*argv, "--side", "left", "--level", "L1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    record = json.loads(out)
    assert record["vbv_cm3"] == pytest.approx(truth.vbv_cm3, rel=0.03)
    budgets = {budget["rule"]: budget for budget in record["budgets"]}
    assert set(budgets) == set(load_rules())
    assert budgets["gao2022-psbcv"]["max_cement_ml"] == pytest.approx(0.1368 * record["vbv_cm3"], abs=1e-12)
    assert not any("postoperative" in warning for warning in record["warnings"])


def test_plan_on_a_ct_with_cement_warns(capsys, tmp_path):
    phantom = make_phantom(PhantomSpec(spacing_mm=(1.0, 1.0, 1.0)))
    path = tmp_path / "postop.nrrd"
    write_volume(phantom.ct.array_hu, phantom.ct.geometry, path)
    truth = phantom.truth
    argv = ["plan", str(path), "--upper", point(truth.upper_ras), "--lower", point(truth.lower_ras)]
    code = main([*argv, "--side", "left", "--rule", "gao2022-psbcv", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    record = json.loads(out)
    assert [budget["rule"] for budget in record["budgets"]] == ["gao2022-psbcv"]
    assert any("postoperative" in warning for warning in record["warnings"])


def test_an_unknown_rule_lists_the_known_ones(preoperative, capsys):
    phantom, path = preoperative
    truth = phantom.truth
    argv = ["plan", str(path), "--upper", point(truth.upper_ras), "--lower", point(truth.lower_ras)]
    code = main([*argv, "--side", "left", "--rule", "nonsense"])
    _, err = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and "gao2022-psbcv" in err and "nonsense" in err


def test_measure_reports_the_papers_rule_and_any_rule_asked_for(capsys, tmp_path):
    phantom = make_phantom(PhantomSpec(spacing_mm=(1.0, 1.0, 1.0)))
    path = tmp_path / "postop.nrrd"
    write_volume(phantom.ct.array_hu, phantom.ct.geometry, path)
    truth = phantom.truth
    argv = ["measure", str(path), "--upper", point(truth.upper_ras), "--lower", point(truth.lower_ras)]
    code = main([*argv, "--side", "left", "--rule", "cement-volume-4ml", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    record = json.loads(out)
    rules = {rule["rule"]: rule for rule in record["risk_rules"]}
    assert list(rules) == ["gao2022-psbcv", "cement-volume-4ml"]
    assert rules["gao2022-psbcv"]["flagged"] is record["exceeds_cutoff"]
    assert rules["gao2022-psbcv"]["value"] == record["psbcv_vbv_pct"]
    total = record["bcv_cm3"] + record["extravertebral_cement_cm3"]
    assert rules["cement-volume-4ml"]["value"] == pytest.approx(total, abs=1e-12)
    assert rules["cement-volume-4ml"]["flagged"] is (total > 4.0)
    code = main([*argv, "--side", "left"])
    out, _ = capsys.readouterr()
    assert "of flagged vertebrae leak" in out and "not verified" in out


def test_rules_listing_marks_unverified_figures(capsys):
    assert main(["rules", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["default_rule"] == "gao2022-psbcv"
    gao = next(rule for rule in document["rules"] if rule["name"] == "gao2022-psbcv")
    assert gao["figures"]["sensitivity_pct"] == {
        "value": 84.7,
        "verified": False,
        "source": gao["figures"]["sensitivity_pct"]["source"],
    }
    assert main(["rules"]) == 0
    assert "UNVERIFIED" in capsys.readouterr().out
    assert np.isfinite(gao["threshold"])
