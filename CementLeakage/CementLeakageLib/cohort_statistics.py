"""Cohort statistics of a leakage study: univariate comparison, logistic regression and ROC.

The analysis follows Gao et al. 2022 (done there in SPSS): a table of cases, one row per
treated vertebra, a binary outcome column (cement leakage yes/no) and candidate risk
factors (for example ``psbcv_vbv_pct`` in %, age in years, sex). For each factor the two
outcome groups are compared (Student's t-test or Pearson's chi-square), the factors are
entered together into a binary logistic regression, and each continuous factor is scored
by the area under its ROC curve with the Youden-optimal cut-off.

"Event group" means outcome 1 (for example leakage), "no-event group" outcome 0.
"""

from __future__ import annotations

import csv
import math
import os
import re
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
from scipy import stats

from .csv_text import column_separator
from .errors import CementLeakageError

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null"})
"""Cell values (lower case, stripped) read as missing."""

OUTCOME_ONE = frozenset({"1", "1.0", "yes", "y", "true", "t"})
OUTCOME_ZERO = frozenset({"0", "0.0", "no", "n", "false", "f"})
"""Cell values (lower case, stripped) read as outcome 1 (event) and outcome 0 (no event)."""

IDENTIFIER_WORDS = frozenset({"case", "id", "level", "side", "path", "file", "uid", "flag", "warning"})
"""Words of a column name that mark it as an identifier, never a default factor."""

MIN_EVENTS_PER_VARIABLE = 10.0
"""Events per regression variable below which estimates are flagged as possibly unstable."""

CONFIDENCE = 0.95
"""Level of every confidence interval."""

MAX_ITERATIONS = 100
"""Newton iterations allowed for the logistic regression fit."""


@dataclass
class CohortTable:
    """A cohort read from CSV: column names in file order and rows of raw text cells."""

    columns: list[str]
    rows: list[dict[str, str]]
    source: str = ""


@dataclass
class ContinuousComparison:
    """Mean ± SD (sample SD, ddof=1, in the factor's units) per group and Student's t-test.

    ``t`` and ``p`` are from ``scipy.stats.ttest_ind(event, no_event, equal_var=True)``,
    SPSS's "equal variances assumed" row; ``df`` = n_event + n_no_event - 2.
    """

    factor: str
    event_n: int
    event_mean: float
    event_sd: float
    no_event_n: int
    no_event_mean: float
    no_event_sd: float
    t: float
    df: int
    p: float
    kind: str = "continuous"


@dataclass
class CategoricalComparison:
    """Counts per level in each group and Pearson's chi-square test of independence.

    ``levels`` are sorted (numerically when all numeric); ``event_counts[i]`` and
    ``no_event_counts[i]`` count rows with ``levels[i]``. ``chi2`` and ``p`` are from
    ``scipy.stats.chi2_contingency(table, correction=False)`` for every table size, i.e.
    Pearson's chi-square without Yates' continuity correction (SPSS's "Pearson Chi-Square"
    row). ``min_expected`` is the smallest expected cell count.
    """

    factor: str
    levels: list[str]
    event_counts: list[int]
    no_event_counts: list[int]
    chi2: float
    df: int
    p: float
    min_expected: float
    kind: str = "categorical"


@dataclass
class RegressionTerm:
    """One row of the logistic regression table, as SPSS's "Variables in the Equation".

    ``b`` is the log odds ratio per unit of the factor (per 1 for a 0/1 coded factor),
    ``se`` its standard error, ``wald`` = (b / se)², ``df`` = 1, ``p`` the Wald test's p,
    ``exp_b`` the odds ratio and ``ci_low``/``ci_high`` its 95% confidence interval
    (exp of b ± z·se). ``coding`` says how a categorical factor was coded.
    """

    name: str
    b: float
    se: float
    wald: float
    df: int
    p: float
    exp_b: float
    ci_low: float
    ci_high: float
    coding: str = ""


@dataclass
class LogisticRegression:
    """Binary logistic regression of the outcome on all chosen factors at once (with constant).

    ``minus_two_log_likelihood`` is -2·LL of the fitted model; ``cox_snell_r2`` and
    ``nagelkerke_r2`` are the pseudo R² SPSS reports in its "Model Summary".
    """

    terms: list[RegressionTerm]
    constant: RegressionTerm
    n: int
    iterations: int
    minus_two_log_likelihood: float
    cox_snell_r2: float
    nagelkerke_r2: float


@dataclass
class RocResult:
    """ROC analysis of one continuous factor.

    ``direction`` is ``"higher"`` when higher values predict the outcome, ``"lower"`` when
    lower values do (the AUC is then that of the negated scores, so it is ≥ 0.5).
    ``se`` is the Hanley–McNeil (1982) standard error of the AUC::

        Q1 = A / (2 - A),  Q2 = 2 A² / (1 + A)
        SE = sqrt((A (1 - A) + (n1 - 1)(Q1 - A²) + (n0 - 1)(Q2 - A²)) / (n1 n0))

    with n1 events and n0 non-events; ``ci_low``/``ci_high`` = A ± z·SE clipped to [0, 1]
    and ``p`` the two-sided z test of (A - 0.5) / SE. ``cutoff`` (factor units) maximises
    Youden's J = sensitivity + specificity - 1 over the observed values; a case is called
    positive when its value is ≥ ``cutoff`` (``"higher"``) or ≤ ``cutoff`` (``"lower"``).
    Sensitivity and specificity at the cut-off are in %. ``fpr``/``tpr`` are the curve's
    points (fractions, from ``sklearn.metrics.roc_curve``).
    """

    factor: str
    auc: float
    se: float
    ci_low: float
    ci_high: float
    p: float
    direction: str
    cutoff: float
    sensitivity_pct: float
    specificity_pct: float
    youden_j: float
    fpr: list[float] = field(default_factory=list)
    tpr: list[float] = field(default_factory=list)


@dataclass
class CohortAnalysis:
    """Everything computed for one cohort.

    ``rows_read`` rows were in the table, ``rows_dropped`` of them had a missing outcome or
    factor value and ``rows_used`` were analysed; ``events`` (outcome 1) and ``non_events``
    (outcome 0) count the analysed rows. ``events_per_variable`` = min(events, non_events)
    / number of regression factors.
    """

    outcome: str
    factors: list[str]
    categorical: list[str]
    rows_read: int
    rows_dropped: int
    rows_used: int
    events: int
    non_events: int
    events_per_variable: float
    univariate: list[Union[ContinuousComparison, CategoricalComparison]]
    regression: LogisticRegression
    roc: list[RocResult]
    warnings: list[str] = field(default_factory=list)
    source: str = ""


# Reading


def read_cohort_csv(path: Union[str, os.PathLike]) -> CohortTable:
    """Read a cohort table (comma, semicolon or tab separated, UTF-8 with or without BOM)."""
    path = Path(path)
    if not path.is_file():
        raise CementLeakageError(f"Cohort file {path} does not exist; give the path of a CSV table.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise CementLeakageError(
            f"Cohort file {path} could not be read ({error}); save it as UTF-8 CSV."
        ) from error
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise CementLeakageError(f"Cohort file {path} is empty; it needs a header row and one row per case.")
    reader = csv.reader(lines, delimiter=column_separator(lines))
    records = [record for record in reader if any(cell.strip() for cell in record)]
    columns = [name.strip() for name in records[0]]
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates or "" in columns:
        problem = f"repeats column(s) {', '.join(duplicates)}" if duplicates else "has an unnamed column"
        raise CementLeakageError(f"Cohort file {path} {problem}; give every column a unique name.")
    rows = []
    for number, record in enumerate(records[1:], start=2):
        if len(record) > len(columns):
            raise CementLeakageError(
                f"Row {number} of {path} has {len(record)} cells but the header has {len(columns)}; "
                "fix the row or quote cells that contain the separator."
            )
        cells = [cell.strip() for cell in record] + [""] * (len(columns) - len(record))
        rows.append(dict(zip(columns, cells)))
    if not rows:
        raise CementLeakageError(f"Cohort file {path} has a header but no rows; add one row per case.")
    return CohortTable(columns=columns, rows=rows, source=str(path))


# Column helpers


def is_missing(value: str) -> bool:
    """True for an empty, NA or nan cell."""
    return value.strip().lower() in MISSING_TOKENS


def as_number(value: str) -> Optional[float]:
    """The cell as a finite float, or None when it is not a number."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def is_numeric_column(values: list[str]) -> bool:
    """True when every non-missing cell is a finite number and at least one is present."""
    present = [value for value in values if not is_missing(value)]
    return bool(present) and all(as_number(value) is not None for value in present)


def is_identifier(name: str) -> bool:
    """True for a column named like an identifier (case, id, level, side, path, file, ...)."""
    words = [word.rstrip("s") for word in re.split(r"[^a-z0-9]+", name.lower()) if word]
    return any(word in IDENTIFIER_WORDS for word in words) or name.lower() in {"uid", "uuid", "filename"}


def sorted_levels(values: list[str]) -> list[str]:
    """Distinct cell values, in numeric order when all are numbers, otherwise alphabetical."""
    distinct = set(values)
    if all(as_number(value) is not None for value in distinct):
        return sorted(distinct, key=lambda value: (float(value), value))
    return sorted(distinct)


def outcome_code(value: str) -> Optional[int]:
    """1 for an event, 0 for no event, None for anything else."""
    token = value.strip().lower()
    if token in OUTCOME_ONE:
        return 1
    if token in OUTCOME_ZERO:
        return 0
    return None


# Choosing factors


def choose_factors(
    table: CohortTable, outcome: str, factors: Optional[list[str]], categorical: list[str]
) -> tuple[list[str], list[str]]:
    """The factors to analyse and warnings about default columns left out."""
    notes: list[str] = []
    if factors is not None:
        chosen = list(dict.fromkeys(factors))
        unknown = [name for name in chosen + categorical if name not in table.columns]
        if unknown:
            raise CementLeakageError(
                f"Factor column(s) {', '.join(unknown)} are not in the cohort table; "
                f"available columns: {', '.join(table.columns)}."
            )
        if outcome in chosen:
            raise CementLeakageError(f"The outcome column '{outcome}' cannot also be a factor; remove it.")
    else:
        chosen = []
        for name in table.columns:
            if name == outcome or is_identifier(name):
                continue
            values = [row[name] for row in table.rows]
            if name in categorical or is_numeric_column(values):
                present = {value for value in values if not is_missing(value)}
                if len(present) == 1 and name not in categorical:
                    notes.append(f"Column '{name}' has the same value in every row and was not used.")
                    continue
                chosen.append(name)
    if not chosen:
        raise CementLeakageError(
            "No factor columns to analyse; name them with --factors (numeric columns are used by default)."
        )
    return chosen, notes


# Univariate comparison


def compare_continuous(factor: str, x: np.ndarray, y: np.ndarray) -> ContinuousComparison:
    """Mean ± SD per group and Student's t-test of a continuous factor."""
    event, no_event = x[y == 1], x[y == 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(event, no_event, equal_var=True)
        event_sd = float(np.std(event, ddof=1)) if event.size > 1 else float("nan")
        no_event_sd = float(np.std(no_event, ddof=1)) if no_event.size > 1 else float("nan")
    return ContinuousComparison(
        factor=factor,
        event_n=int(event.size),
        event_mean=float(np.mean(event)),
        event_sd=event_sd,
        no_event_n=int(no_event.size),
        no_event_mean=float(np.mean(no_event)),
        no_event_sd=no_event_sd,
        t=float(result.statistic),
        df=int(event.size + no_event.size - 2),
        p=float(result.pvalue),
    )


def compare_categorical(factor: str, values: list[str], y: np.ndarray) -> CategoricalComparison:
    """Counts per level and group, and Pearson's chi-square (no Yates' correction)."""
    levels = sorted_levels(values)
    column = np.array(values, dtype=object)
    event_counts = [int(np.sum((column == level) & (y == 1))) for level in levels]
    no_event_counts = [int(np.sum((column == level) & (y == 0))) for level in levels]
    chi2, p, df, expected = stats.chi2_contingency(
        np.array([event_counts, no_event_counts]), correction=False
    )
    return CategoricalComparison(
        factor=factor,
        levels=levels,
        event_counts=event_counts,
        no_event_counts=no_event_counts,
        chi2=float(chi2),
        df=int(df),
        p=float(p),
        min_expected=float(np.min(expected)),
    )


# Logistic regression


def fit_logistic(names: list[str], codings: list[str], x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """Binary logistic regression (statsmodels ``Logit`` with a constant) of y on the columns of x."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    design = sm.add_constant(x, prepend=True, has_constant="add")
    separation = (
        f"The outcome is perfectly separated by {', '.join(names)}, so odds ratios are infinite; "
        "remove the separating factor with --factors or collect more cases."
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = sm.Logit(y, design).fit(disp=0, maxiter=MAX_ITERATIONS)
    except PerfectSeparationError as error:
        raise CementLeakageError(separation) from error
    except np.linalg.LinAlgError as error:
        raise CementLeakageError(
            f"The logistic regression could not be fitted because factors {', '.join(names)} are collinear "
            "(one is a combination of the others); remove one with --factors."
        ) from error
    linear = design @ fit.params
    separated = np.min(linear[y == 1]) >= np.max(linear[y == 0]) or np.max(linear[y == 1]) <= np.min(
        linear[y == 0]
    )
    if separated or any(isinstance(item.message, PerfectSeparationWarning) for item in caught):
        raise CementLeakageError(separation)
    if not fit.mle_retvals.get("converged", False) or not np.all(np.isfinite(fit.bse)):
        raise CementLeakageError(
            f"The logistic regression did not converge in {MAX_ITERATIONS} iterations (possibly quasi-"
            "separation or too few events); use fewer factors with --factors or more cases."
        )
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    terms = []
    for index, (name, coding) in enumerate(zip(["Constant"] + names, [""] + codings)):
        b, se = float(fit.params[index]), float(fit.bse[index])
        terms.append(
            RegressionTerm(
                name=name,
                b=b,
                se=se,
                wald=(b / se) ** 2,
                df=1,
                p=float(fit.pvalues[index]),
                exp_b=math.exp(b),
                ci_low=math.exp(b - z * se),
                ci_high=math.exp(b + z * se),
                coding=coding,
            )
        )
    n = int(y.size)
    cox_snell = 1.0 - math.exp(2.0 * (fit.llnull - fit.llf) / n)
    max_cox_snell = 1.0 - math.exp(2.0 * fit.llnull / n)
    return LogisticRegression(
        terms=terms[1:],
        constant=terms[0],
        n=n,
        iterations=int(fit.mle_retvals.get("iterations", 0)),
        minus_two_log_likelihood=float(-2.0 * fit.llf),
        cox_snell_r2=float(cox_snell),
        nagelkerke_r2=float(cox_snell / max_cox_snell),
    )


# ROC


def hanley_mcneil_se(auc: float, n_events: int, n_non_events: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC with n_events positives and n_non_events negatives."""
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc**2 / (1.0 + auc)
    variance = (auc * (1.0 - auc) + (n_events - 1) * (q1 - auc**2) + (n_non_events - 1) * (q2 - auc**2)) / (
        n_events * n_non_events
    )
    return math.sqrt(max(variance, 0.0))


def roc_of_factor(factor: str, x: np.ndarray, y: np.ndarray) -> RocResult:
    """AUC, its Hanley–McNeil CI and p, and the Youden-optimal cut-off of one continuous factor."""
    from sklearn.metrics import roc_auc_score, roc_curve

    auc = float(roc_auc_score(y, x))
    direction = "higher"
    scores = x
    if auc < 0.5:
        direction, scores, auc = "lower", -x, float(roc_auc_score(y, -x))
    n1, n0 = int(np.sum(y == 1)), int(np.sum(y == 0))
    se = hanley_mcneil_se(auc, n1, n0)
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    p = float(2.0 * stats.norm.sf(abs(auc - 0.5) / se)) if se > 0 else 0.0
    fpr, tpr, thresholds = roc_curve(y, scores, drop_intermediate=False)
    true_positives = np.rint(tpr * n1).astype(np.int64)
    false_positives = np.rint(fpr * n0).astype(np.int64)
    finite = np.isfinite(thresholds)
    youden_scaled = np.where(finite, true_positives * n0 - false_positives * n1, np.iinfo(np.int64).min)
    best = int(np.argmax(youden_scaled))
    cutoff = float(thresholds[best]) if direction == "higher" else float(-thresholds[best])
    return RocResult(
        factor=factor,
        auc=auc,
        se=se,
        ci_low=max(0.0, auc - z * se),
        ci_high=min(1.0, auc + z * se),
        p=p,
        direction=direction,
        cutoff=cutoff,
        sensitivity_pct=100.0 * true_positives[best] / n1,
        specificity_pct=100.0 * (n0 - false_positives[best]) / n0,
        youden_j=float(tpr[best] - fpr[best]),
        fpr=[float(value) for value in fpr],
        tpr=[float(value) for value in tpr],
    )


# The analysis


def analyse_cohort(
    table: CohortTable,
    outcome: str,
    factors: Optional[list[str]] = None,
    categorical: Optional[list[str]] = None,
) -> CohortAnalysis:
    """Univariate comparison, logistic regression and ROC of ``factors`` against a binary ``outcome``.

    ``factors`` default to every numeric column other than the outcome and identifiers
    (names with case, id, level, side, path, file, uid, flag or warnings), plus the columns
    named in ``categorical``; default columns with a single value are left out with a
    warning. A factor is categorical when named in ``categorical``, when its values are not
    numbers, or when it has at most two distinct values (e.g. sex); it enters the regression
    coded 0 for its first sorted level (reference) and 1 for the other. Rows with a missing
    outcome or factor value are dropped.
    """
    categorical = list(categorical or [])
    if outcome not in table.columns:
        raise CementLeakageError(
            f"Outcome column '{outcome}' is not in the cohort table; available columns: "
            f"{', '.join(table.columns)}."
        )
    outcome_values = [row[outcome] for row in table.rows if not is_missing(row[outcome])]
    not_binary = sorted({value for value in outcome_values if outcome_code(value) is None})
    if not_binary:
        found = sorted(set(outcome_values))
        raise CementLeakageError(
            f"Outcome column '{outcome}' must be binary (0/1, yes/no or true/false) but holds "
            f"{', '.join(repr(value) for value in found[:20])}; recode it."
        )
    chosen, notes = choose_factors(table, outcome, factors, categorical)
    kept = [row for row in table.rows if not any(is_missing(row[name]) for name in [outcome] + chosen)]
    rows_dropped = len(table.rows) - len(kept)
    messages = list(notes)
    if rows_dropped:
        messages.append(
            f"{rows_dropped} of {len(table.rows)} rows had a missing value in '{outcome}' or a factor "
            "and were left out."
        )
    y = np.array([outcome_code(row[outcome]) for row in kept], dtype=float)
    events, non_events = int(np.sum(y == 1)), int(np.sum(y == 0))
    if events == 0 or non_events == 0:
        raise CementLeakageError(
            f"Outcome '{outcome}' needs both events and non-events in the analysed rows but has "
            f"{events} events and {non_events} non-events; check the column."
        )

    univariate: list[Union[ContinuousComparison, CategoricalComparison]] = []
    roc: list[RocResult] = []
    categorical_factors: list[str] = []
    design_columns: list[np.ndarray] = []
    codings: list[str] = []
    for name in chosen:
        values = [row[name] for row in kept]
        levels = sorted_levels(values)
        numeric = is_numeric_column(values)
        distinct = len({float(value) for value in values}) if numeric else len(levels)
        if distinct < 2:
            raise CementLeakageError(
                f"Factor '{name}' has the single value {levels[0]!r} in every analysed row, so it cannot "
                "be tested; remove it with --factors."
            )
        if name in categorical or not numeric or distinct <= 2:
            categorical_factors.append(name)
            comparison = compare_categorical(name, values, y)
            univariate.append(comparison)
            if comparison.min_expected < 5:
                messages.append(
                    f"Factor '{name}' has an expected cell count of {comparison.min_expected:.1f} (< 5); "
                    "the chi-square p-value is approximate."
                )
            if len(levels) > 2:
                raise CementLeakageError(
                    f"Categorical factor '{name}' has {len(levels)} levels ({', '.join(levels)}); the "
                    "regression supports only two-level factors, so recode it or remove it with --factors."
                )
            empty = [
                f"{level}/{'event' if group else 'no event'}"
                for index, level in enumerate(levels)
                for group, counts in ((1, comparison.event_counts), (0, comparison.no_event_counts))
                if counts[index] == 0
            ]
            if empty:
                raise CementLeakageError(
                    f"Factor '{name}' has no rows in cell(s) {', '.join(empty)}, so the outcome is "
                    "perfectly separated and its odds ratio is infinite; remove it with --factors."
                )
            design_columns.append(np.array([1.0 if value == levels[1] else 0.0 for value in values]))
            codings.append(f"{levels[1]} = 1, {levels[0]} = 0 (reference)")
        else:
            x = np.array([float(value) for value in values])
            univariate.append(compare_continuous(name, x, y))
            roc.append(roc_of_factor(name, x, y))
            design_columns.append(x)
            codings.append("")

    events_per_variable = min(events, non_events) / len(chosen)
    if events_per_variable < MIN_EVENTS_PER_VARIABLE:
        messages.append(
            f"Events per variable is {events_per_variable:.1f} (< {MIN_EVENTS_PER_VARIABLE:.0f}: "
            f"{min(events, non_events)} events for {len(chosen)} factors); regression estimates may be "
            "unstable."
        )
    regression = fit_logistic(chosen, codings, np.column_stack(design_columns), y)
    for result in roc:
        if result.direction == "lower":
            messages.append(f"For '{result.factor}' lower values predict the outcome; its AUC is for -value.")
    return CohortAnalysis(
        outcome=outcome,
        factors=chosen,
        categorical=categorical_factors,
        rows_read=len(table.rows),
        rows_dropped=rows_dropped,
        rows_used=len(kept),
        events=events,
        non_events=non_events,
        events_per_variable=float(events_per_variable),
        univariate=univariate,
        regression=regression,
        roc=roc,
        warnings=messages,
        source=table.source,
    )


# Output


def write_roc_plot(analysis: CohortAnalysis, path: Union[str, os.PathLike]) -> Path:
    """Write a PNG with the ROC curve of every continuous factor and the chance diagonal.

    The image is written to a temporary file in the destination folder and renamed into
    place, so a failure leaves no partial file. Returns the path written.
    """
    # The object API with the Agg canvas draws off-screen without touching the global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    if not analysis.roc:
        raise CementLeakageError(
            "There is no continuous factor to draw a ROC curve for; add one with --factors."
        )
    if not path.parent.is_dir():
        raise CementLeakageError(f"Folder {path.parent} does not exist; create it or choose another path.")
    figure = Figure(figsize=(5.5, 5.5), dpi=150)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for result in analysis.roc:
        label = f"{result.factor} (AUC {result.auc:.3f})"
        if result.direction == "lower":
            label += ", lower values"
        axes.plot(result.fpr, result.tpr, linewidth=1.5, label=label)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="Chance")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_aspect("equal")
    axes.set_xlabel("1 - specificity")
    axes.set_ylabel("Sensitivity")
    axes.set_title(f"ROC: {analysis.outcome}")
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            figure.savefig(stream, format="png")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def format_p(p: float) -> str:
    """A p-value as a paper prints it: three decimals, ``<0.001`` below that."""
    if not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown pipe table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def format_tables_markdown(analysis: CohortAnalysis) -> str:
    """The univariate, logistic regression and ROC tables laid out as in a paper, plus warnings."""
    parts = [
        f"# Cohort statistics: {analysis.outcome}",
        "",
        f"{analysis.rows_used} rows analysed ({analysis.events} events, {analysis.non_events} non-events; "
        f"{analysis.rows_dropped} dropped for missing values).",
        "",
        "## Table 1. Univariate comparison",
        "",
    ]
    rows = []
    for item in analysis.univariate:
        if isinstance(item, ContinuousComparison):
            rows.append(
                [
                    item.factor,
                    f"{item.event_mean:.2f} ± {item.event_sd:.2f}",
                    f"{item.no_event_mean:.2f} ± {item.no_event_sd:.2f}",
                    f"t = {item.t:.3f}",
                    format_p(item.p),
                ]
            )
        else:
            rows.append([item.factor, "", "", f"χ² = {item.chi2:.3f}", format_p(item.p)])
            for level, event, no_event in zip(item.levels, item.event_counts, item.no_event_counts):
                rows.append(
                    [
                        f"  {item.factor} = {level}",
                        f"{event} ({100.0 * event / analysis.events:.1f}%)",
                        f"{no_event} ({100.0 * no_event / analysis.non_events:.1f}%)",
                        "",
                        "",
                    ]
                )
    header = [
        "Factor",
        f"Event group (n = {analysis.events})",
        f"No-event group (n = {analysis.non_events})",
        "Statistic",
        "p",
    ]
    parts += [
        markdown_table(header, rows),
        "",
        "Mean ± SD, Student's t-test; n (%), Pearson's chi-square without continuity correction.",
        "",
        "## Table 2. Logistic regression",
        "",
    ]
    rows = []
    for term in analysis.regression.terms + [analysis.regression.constant]:
        name = f"{term.name} ({term.coding})" if term.coding else term.name
        rows.append(
            [
                name,
                f"{term.b:.3f}",
                f"{term.se:.3f}",
                f"{term.wald:.3f}",
                str(term.df),
                format_p(term.p),
                f"{term.exp_b:.3f}",
                f"{term.ci_low:.3f}–{term.ci_high:.3f}",
            ]
        )
    regression = analysis.regression
    parts += [
        markdown_table(["Factor", "B", "S.E.", "Wald", "df", "p", "Exp(B)", "95% CI for Exp(B)"], rows),
        "",
        f"-2 log likelihood {regression.minus_two_log_likelihood:.3f}, Cox & Snell R² "
        f"{regression.cox_snell_r2:.3f}, Nagelkerke R² {regression.nagelkerke_r2:.3f}.",
        "",
        "## Table 3. ROC",
        "",
    ]
    rows = []
    for result in analysis.roc:
        sign = "≥" if result.direction == "higher" else "≤"
        rows.append(
            [
                result.factor,
                f"{result.auc:.3f}",
                f"{result.ci_low:.3f}–{result.ci_high:.3f}",
                format_p(result.p),
                f"{sign} {result.cutoff:.3f}",
                f"{result.sensitivity_pct:.1f}",
                f"{result.specificity_pct:.1f}",
            ]
        )
    parts += [
        markdown_table(
            ["Factor", "AUC", "95% CI", "p", "Cut-off", "Sensitivity (%)", "Specificity (%)"], rows
        )
        if rows
        else "No continuous factors.",
        "",
        "95% CI and p (against AUC 0.5) from the Hanley–McNeil standard error; cut-off maximises "
        "Youden's index.",
    ]
    if analysis.warnings:
        parts += ["", "## Warnings", ""] + [f"- {message}" for message in analysis.warnings]
    return "\n".join(parts) + "\n"


def plain(value):
    """A JSON-ready copy of value: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def analysis_to_dict(analysis: CohortAnalysis) -> dict:
    """The analysis as JSON-serialisable Python values (floats, ints, strings, lists, dicts, None)."""
    return plain(asdict(analysis))
