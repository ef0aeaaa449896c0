"""Cohort statistics: every number equals the same value computed directly with scipy, statsmodels or
scikit-learn on a simulated cohort shaped like Gao et al. 2022 (59 leakages among 585 vertebrae)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from sklearn.metrics import roc_auc_score

from CementLeakageLib.cohort_statistics import (
    CategoricalComparison,
    ContinuousComparison,
    analyse_cohort,
    analysis_to_dict,
    format_tables_markdown,
    hanley_mcneil_se,
    read_cohort_csv,
    write_roc_plot,
)
from CementLeakageLib.errors import CementLeakageError

REL = 1e-9
FACTORS = ["psbcv_vbv_pct", "age", "sex"]


def write_csv(path, columns: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def simulated_cohort(seed: int = 20220517, events: int = 59, non_events: int = 526) -> dict:
    """Arrays of a cohort: leakage 1/0, PSBCV/VBV% N(17, 6) vs N(14, 6), age (years), sex F/M."""
    rng = np.random.default_rng(seed)
    leakage = np.r_[np.ones(events, int), np.zeros(non_events, int)]
    psbcv = np.r_[rng.normal(17.0, 6.0, events), rng.normal(14.0, 6.0, non_events)]
    age = np.round(np.r_[rng.normal(74.0, 8.0, events), rng.normal(72.0, 8.0, non_events)], 1)
    sex = np.where(
        rng.random(events + non_events) < np.r_[np.full(events, 0.3), np.full(non_events, 0.2)], "M", "F"
    )
    return {"leakage": leakage, "psbcv_vbv_pct": np.round(psbcv, 6), "age": age, "sex": sex}


def cohort_csv(path, data: dict) -> None:
    n = data["leakage"].size
    columns = ["case_id", "level", "leakage", "psbcv_vbv_pct", "age", "sex"]
    rows = [
        [
            f"P{index:04d}",
            "L1",
            data["leakage"][index],
            repr(float(data["psbcv_vbv_pct"][index])),
            repr(float(data["age"][index])),
            data["sex"][index],
        ]
        for index in range(n)
    ]
    write_csv(path, columns, rows)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    data = simulated_cohort()
    path = tmp_path_factory.mktemp("cohort") / "cohort.csv"
    cohort_csv(path, data)
    analysis = analyse_cohort(read_cohort_csv(path), "leakage", factors=FACTORS)
    return data, analysis


def test_text_sex_is_categorical_and_counts_are_exact(cohort):
    _, analysis = cohort
    assert analysis.factors == FACTORS
    assert analysis.categorical == ["sex"]
    counts = (analysis.rows_used, analysis.rows_dropped, analysis.events, analysis.non_events)
    assert counts == (585, 0, 59, 526)
    assert analysis.events_per_variable == pytest.approx(59 / 3, rel=REL)


def test_default_factors_are_numeric_non_identifier_columns(tmp_path):
    data = simulated_cohort()
    path = tmp_path / "numeric_sex.csv"
    columns = ["case_id", "level", "side", "leakage", "psbcv_vbv_pct", "age", "sex", "male", "input_file"]
    values = zip(data["leakage"], data["psbcv_vbv_pct"], data["age"], data["sex"])
    rows = [
        [index, 12, 1, y, x, a, s, int(s == "M"), f"case{index}.nrrd"]
        for index, (y, x, a, s) in enumerate(values)
    ]
    write_csv(path, columns, rows)
    analysis = analyse_cohort(read_cohort_csv(path), "leakage")
    assert analysis.factors == ["psbcv_vbv_pct", "age", "male"]
    assert analysis.categorical == ["male"]
    assert analysis.regression.terms[2].coding == "1 = 1, 0 = 0 (reference)"


def test_t_tests_and_sd_equal_scipy(cohort):
    data, analysis = cohort
    y = data["leakage"]
    for item in analysis.univariate[:2]:
        assert isinstance(item, ContinuousComparison)
        x = data[item.factor]
        truth = stats.ttest_ind(x[y == 1], x[y == 0], equal_var=True)
        assert item.t == pytest.approx(truth.statistic, rel=REL)
        assert item.p == pytest.approx(truth.pvalue, rel=REL)
        assert item.event_mean == pytest.approx(np.mean(x[y == 1]), rel=REL)
        assert item.event_sd == pytest.approx(np.std(x[y == 1], ddof=1), rel=REL)
        assert item.no_event_sd == pytest.approx(np.std(x[y == 0], ddof=1), rel=REL)
        assert item.df == 583


def test_chi_square_equals_scipy_without_yates(cohort):
    data, analysis = cohort
    y, sex = data["leakage"], data["sex"]
    item = analysis.univariate[2]
    assert isinstance(item, CategoricalComparison)
    assert item.levels == ["F", "M"]
    table = [[int(np.sum((sex == level) & (y == group))) for level in ("F", "M")] for group in (1, 0)]
    assert [item.event_counts, item.no_event_counts] == table
    chi2, p, df, _ = stats.chi2_contingency(np.array(table), correction=False)
    assert (item.chi2, item.p, item.df) == (pytest.approx(chi2, rel=REL), pytest.approx(p, rel=REL), df)


def test_logistic_regression_equals_statsmodels(cohort):
    data, analysis = cohort
    design = sm.add_constant(
        np.column_stack([data["psbcv_vbv_pct"], data["age"], (data["sex"] == "M").astype(float)])
    )
    fit = sm.Logit(data["leakage"].astype(float), design).fit(disp=0)
    interval = np.exp(fit.conf_int(alpha=0.05))
    terms = analysis.regression.terms + [analysis.regression.constant]
    order = [1, 2, 3, 0]
    assert [term.name for term in terms] == FACTORS + ["Constant"]
    assert terms[2].coding == "M = 1, F = 0 (reference)"
    for term, index in zip(terms, order):
        assert term.b == pytest.approx(fit.params[index], rel=REL)
        assert term.se == pytest.approx(fit.bse[index], rel=REL)
        assert term.p == pytest.approx(fit.pvalues[index], rel=REL)
        assert term.wald == pytest.approx((term.b / term.se) ** 2, rel=1e-12)
        assert term.wald == pytest.approx(stats.chi2.isf(term.p, 1), rel=1e-6)
        assert term.df == 1
        assert term.exp_b == pytest.approx(math.exp(fit.params[index]), rel=REL)
        assert term.ci_low == pytest.approx(interval[index, 0], rel=REL)
        assert term.ci_high == pytest.approx(interval[index, 1], rel=REL)
    n = 585
    cox_snell = 1 - math.exp(2 * (fit.llnull - fit.llf) / n)
    assert analysis.regression.minus_two_log_likelihood == pytest.approx(-2 * fit.llf, rel=REL)
    assert analysis.regression.nagelkerke_r2 == pytest.approx(
        cox_snell / (1 - math.exp(2 * fit.llnull / n)), rel=REL
    )


def brute_force_youden(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Cut-off, sensitivity % and specificity % maximising Youden's J over every observed value
    (positive when value >= cut-off; ties go to the highest cut-off)."""
    n1, n0 = int(np.sum(y == 1)), int(np.sum(y == 0))
    best = None
    for threshold in np.sort(np.unique(x))[::-1]:
        tp = int(np.sum(x[y == 1] >= threshold))
        tn = int(np.sum(x[y == 0] < threshold))
        scaled_j = tp * n0 + tn * n1
        if best is None or scaled_j > best[0]:
            best = (scaled_j, threshold, 100 * tp / n1, 100 * tn / n0)
    return best[1], best[2], best[3]


def test_roc_auc_youden_and_hanley_mcneil(cohort):
    data, analysis = cohort
    y = data["leakage"]
    assert [result.factor for result in analysis.roc] == ["psbcv_vbv_pct", "age"]
    for result in analysis.roc:
        x = data[result.factor]
        auc = roc_auc_score(y, x)
        scores = x if auc >= 0.5 else -x
        assert result.direction == ("higher" if auc >= 0.5 else "lower")
        assert result.auc == pytest.approx(max(auc, 1 - auc), rel=REL)
        a, n1, n0 = result.auc, 59, 526
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        se = math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
        assert result.se == pytest.approx(se, rel=REL)
        assert hanley_mcneil_se(a, n1, n0) == pytest.approx(se, rel=REL)
        z = stats.norm.ppf(0.975)
        assert result.ci_low == pytest.approx(a - z * se, rel=REL)
        assert result.ci_high == pytest.approx(a + z * se, rel=REL)
        assert result.p == pytest.approx(2 * stats.norm.sf(abs(a - 0.5) / se), rel=REL)
        cutoff, sensitivity, specificity = brute_force_youden(scores, y)
        sign = 1 if result.direction == "higher" else -1
        assert result.cutoff == pytest.approx(sign * cutoff, rel=REL)
        assert result.sensitivity_pct == pytest.approx(sensitivity, rel=REL)
        assert result.specificity_pct == pytest.approx(specificity, rel=REL)
    psbcv = analysis.roc[0]
    assert psbcv.direction == "higher" and 0.55 < psbcv.auc < 0.8 and psbcv.p < 0.05


def test_lower_values_predicting_the_outcome_flip_the_scores(tmp_path):
    data = simulated_cohort(seed=7)
    data["psbcv_vbv_pct"] = -data["psbcv_vbv_pct"]
    path = tmp_path / "flipped.csv"
    cohort_csv(path, data)
    analysis = analyse_cohort(read_cohort_csv(path), "leakage", factors=["psbcv_vbv_pct"])
    result = analysis.roc[0]
    x, y = data["psbcv_vbv_pct"], data["leakage"]
    assert result.direction == "lower"
    assert result.auc == pytest.approx(roc_auc_score(y, -x), rel=REL)
    cutoff, sensitivity, specificity = brute_force_youden(-x, y)
    assert result.cutoff == pytest.approx(-cutoff, rel=REL)
    assert (result.sensitivity_pct, result.specificity_pct) == (
        pytest.approx(sensitivity, rel=REL),
        pytest.approx(specificity, rel=REL),
    )
    assert any("lower values predict the outcome" in message for message in analysis.warnings)


def test_outputs_png_markdown_and_json(cohort, tmp_path):
    _, analysis = cohort
    png = write_roc_plot(analysis, tmp_path / "roc.png")
    content = png.read_bytes()
    assert content[:8] == b"\x89PNG\r\n\x1a\n" and len(content) > 1000
    assert sorted(item.name for item in tmp_path.iterdir()) == ["roc.png"]
    text = format_tables_markdown(analysis)
    for name in FACTORS:
        assert name in text
    for heading in ("Univariate comparison", "Logistic regression", "ROC"):
        assert heading in text
    for result in analysis.roc:
        assert f"{result.auc:.3f}" in text
    document = json.loads(json.dumps(analysis_to_dict(analysis), allow_nan=False))
    assert document["regression"]["terms"][0]["name"] == "psbcv_vbv_pct"
    assert document["roc"][0]["auc"] == analysis.roc[0].auc


def test_missing_values_are_dropped_and_counted(tmp_path):
    data = simulated_cohort(seed=3)
    path = tmp_path / "missing.csv"
    cohort_csv(path, data)
    lines = path.read_text(encoding="utf-8").splitlines()
    for line_index, (column, token) in {5: (3, ""), 9: (4, "NA"), 20: (2, "nan"), 33: (5, "")}.items():
        cells = lines[line_index].split(",")
        cells[column] = token
        lines[line_index] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    analysis = analyse_cohort(read_cohort_csv(path), "leakage", factors=FACTORS)
    assert (analysis.rows_read, analysis.rows_dropped, analysis.rows_used) == (585, 4, 581)
    assert any("4 of 585 rows" in message for message in analysis.warnings)


def test_few_events_warn_about_events_per_variable(tmp_path):
    path = tmp_path / "few.csv"
    cohort_csv(path, simulated_cohort(seed=11, events=12, non_events=100))
    analysis = analyse_cohort(read_cohort_csv(path), "leakage", factors=FACTORS)
    assert analysis.events_per_variable == pytest.approx(4.0)
    assert any("Events per variable is 4.0" in m and "unstable" in m for m in analysis.warnings)


def test_missing_outcome_column_names_it_and_lists_columns(tmp_path):
    path = tmp_path / "cohort.csv"
    cohort_csv(path, simulated_cohort())
    with pytest.raises(CementLeakageError, match=r"'leak'.*available columns: case_id, level, leakage"):
        analyse_cohort(read_cohort_csv(path), "leak")


def test_non_binary_outcome_names_the_values(tmp_path):
    path = tmp_path / "outcome.csv"
    write_csv(path, ["leakage", "x"], [["0", 1.0], ["1", 2.0], ["2", 3.0], ["yes", 4.0]])
    with pytest.raises(CementLeakageError, match=r"must be binary.*'0', '1', '2', 'yes'"):
        analyse_cohort(read_cohort_csv(path), "leakage")


def test_yes_no_outcome_is_accepted(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "yes_no.csv"
    outcome = ["yes"] * 30 + ["No"] * 70
    write_csv(path, ["leakage", "x"], [[value, rng.normal()] for value in outcome])
    analysis = analyse_cohort(read_cohort_csv(path), "leakage")
    assert (analysis.events, analysis.non_events) == (30, 70)


def test_zero_variance_factor_is_an_error(tmp_path):
    data = simulated_cohort()
    path = tmp_path / "constant.csv"
    write_csv(
        path,
        ["leakage", "psbcv_vbv_pct", "cutoff_pct"],
        [[y, x, 19.0] for y, x in zip(data["leakage"], data["psbcv_vbv_pct"])],
    )
    with pytest.raises(CementLeakageError, match=r"'cutoff_pct'.*remove it with --factors"):
        analyse_cohort(read_cohort_csv(path), "leakage", factors=["psbcv_vbv_pct", "cutoff_pct"])
    analysis = analyse_cohort(read_cohort_csv(path), "leakage")
    assert analysis.factors == ["psbcv_vbv_pct"]
    assert any("cutoff_pct" in message for message in analysis.warnings)


def test_perfect_separation_is_an_error(tmp_path):
    path = tmp_path / "separated.csv"
    write_csv(path, ["leakage", "x"], [[int(value > 9), float(value)] for value in range(20)])
    with pytest.raises(CementLeakageError, match="perfectly separated"):
        analyse_cohort(read_cohort_csv(path), "leakage")


def test_many_level_categorical_factor_is_refused_by_the_regression(tmp_path):
    rng = np.random.default_rng(9)
    path = tmp_path / "levels.csv"
    write_csv(path, ["leakage", "approach"], [[i % 2, rng.choice(["a", "b", "c"])] for i in range(90)])
    with pytest.raises(CementLeakageError, match=r"'approach' has 3 levels"):
        analyse_cohort(read_cohort_csv(path), "leakage", factors=["approach"])


def test_missing_or_empty_file_is_an_error(tmp_path):
    with pytest.raises(CementLeakageError, match="does not exist"):
        read_cohort_csv(tmp_path / "absent.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CementLeakageError, match="is empty"):
        read_cohort_csv(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("leakage,x\n")
    with pytest.raises(CementLeakageError, match="no rows"):
        read_cohort_csv(header_only)
