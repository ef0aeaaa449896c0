"""Published cement risk rules (``risk_rules.json``) and what a flag means at a prevalence.

A rule flags a metric of a measurement (``psbcv_vbv_pct``, ``bcv_vbv_pct`` in percent,
``total_cement_cm3`` in cm³) strictly above its threshold. Every published figure carries
whether it was read in the source named beside it; unverified figures are reported as such.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import CementLeakageError

RULES_FILE = Path(__file__).with_name("risk_rules.json")

METRIC_UNITS = {"psbcv_vbv_pct": "%", "bcv_vbv_pct": "%", "total_cement_cm3": "cm3"}
"""The metrics a rule may use and their units."""


@dataclass(frozen=True)
class PublishedFigure:
    """One number of a rule (threshold, sensitivity in %, AUC...) and whether it was read in its source."""

    value: float
    verified: bool
    source: str


@dataclass(frozen=True)
class RiskRule:
    """A published threshold on a metric, with its accuracy and the cohort behind it."""

    name: str
    title: str
    metric: str
    threshold: float
    direction: str
    outcome: str
    population: str
    citation: str
    verified: bool
    verification_note: str
    figures: dict = field(default_factory=dict)
    cohort: dict = field(default_factory=dict)
    leakage_by_level: dict = field(default_factory=dict)
    leakage_by_level_note: str = ""

    def figure(self, key: str) -> PublishedFigure | None:
        """A published figure by key (``sensitivity_pct``, ``specificity_pct``, ``auc``...), or None."""
        return self.figures.get(key)

    @property
    def unit(self) -> str:
        """Unit of the metric and threshold (``%`` or ``cm3``)."""
        return METRIC_UNITS[self.metric]


def _figure(entry: dict) -> PublishedFigure:
    return PublishedFigure(
        float(entry["value"]), bool(entry.get("verified", False)), str(entry.get("source", ""))
    )


@lru_cache(maxsize=1)
def load_rules() -> dict[str, RiskRule]:
    """All rules of the package's ``risk_rules.json``, keyed by name."""
    document = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    rules = {}
    for entry in document["rules"]:
        if entry["metric"] not in METRIC_UNITS or entry["direction"] != "above":
            raise ValueError(f"risk rule {entry['name']!r}: unsupported metric or direction")
        rules[entry["name"]] = RiskRule(
            name=entry["name"],
            title=entry["title"],
            metric=entry["metric"],
            threshold=float(entry["threshold"]),
            direction=entry["direction"],
            outcome=entry["outcome"],
            population=entry.get("population", ""),
            citation=entry["citation"],
            verified=bool(entry.get("verified", False)),
            verification_note=entry.get("verification_note", ""),
            figures={key: _figure(value) for key, value in entry.get("figures", {}).items()},
            cohort={key: _figure(value) for key, value in entry.get("cohort", {}).items()},
            leakage_by_level=entry.get("leakage_by_level", {}),
            leakage_by_level_note=entry.get("leakage_by_level_note", ""),
        )
    return rules


def default_rule_name() -> str:
    """The rule used when none is asked for: the paper's PSBCV/VBV% > 13.68%."""
    return json.loads(RULES_FILE.read_text(encoding="utf-8"))["default_rule"]


def get_rule(name: str) -> RiskRule:
    """The rule called ``name``; an unknown name lists the known ones."""
    rules = load_rules()
    if name not in rules:
        raise CementLeakageError(f"unknown risk rule {name!r}: choose one of {', '.join(sorted(rules))}")
    return rules[name]


@dataclass(frozen=True)
class PredictiveValues:
    """Positive and negative predictive values (%) of a flag at a prevalence (%)."""

    prevalence_pct: float
    ppv_pct: float
    npv_pct: float


def predictive_values(
    sensitivity_pct: float, specificity_pct: float, prevalence_pct: float
) -> PredictiveValues:
    """PPV and NPV (%) by Bayes' rule from sensitivity, specificity and prevalence (all %)."""
    sens, spec, prev = sensitivity_pct / 100.0, specificity_pct / 100.0, prevalence_pct / 100.0
    true_positive = sens * prev
    false_positive = (1.0 - spec) * (1.0 - prev)
    true_negative = spec * (1.0 - prev)
    false_negative = (1.0 - sens) * prev
    ppv = true_positive / (true_positive + false_positive) if true_positive + false_positive else float("nan")
    npv = true_negative / (true_negative + false_negative) if true_negative + false_negative else float("nan")
    return PredictiveValues(prevalence_pct, 100.0 * ppv, 100.0 * npv)


def metric_value(rule: RiskRule, record: dict) -> float:
    """The value of ``rule``'s metric in a measurement record (``VertebraMeasurement.as_dict()``).

    ``total_cement_cm3`` is the cement inside the body plus the extravertebral cement.
    """
    if rule.metric == "total_cement_cm3":
        return float(record["bcv_cm3"]) + float(record.get("extravertebral_cement_cm3", 0.0))
    return float(record[rule.metric])


def evaluate_rule(rule: RiskRule, record: dict) -> dict:
    """Whether a measurement is flagged by ``rule``, with the rule's evidence, as plain data.

    Includes PPV and NPV at the rule cohort's prevalence when its sensitivity, specificity and
    event counts are published, each figure with its ``verified`` mark.
    """
    value = metric_value(rule, record)
    result = {
        "rule": rule.name,
        "title": rule.title,
        "metric": rule.metric,
        "unit": rule.unit,
        "value": value,
        "threshold": rule.threshold,
        "flagged": value > rule.threshold,
        "outcome": rule.outcome,
        "citation": rule.citation,
        "verified": rule.verified,
        "verification_note": rule.verification_note,
        "figures": {key: vars(figure) for key, figure in rule.figures.items()},
    }
    sensitivity, specificity = rule.figure("sensitivity_pct"), rule.figure("specificity_pct")
    events, vertebrae = rule.cohort.get("events"), rule.cohort.get("vertebrae")
    if sensitivity and specificity and events and vertebrae:
        prevalence = 100.0 * events.value / vertebrae.value
        values = predictive_values(sensitivity.value, specificity.value, prevalence)
        result["cohort_events"] = int(events.value)
        result["cohort_vertebrae"] = int(vertebrae.value)
        result["predictive_values"] = {
            "prevalence_pct": values.prevalence_pct,
            "ppv_pct": values.ppv_pct,
            "npv_pct": values.npv_pct,
            "verified": sensitivity.verified
            and specificity.verified
            and events.verified
            and vertebrae.verified,
            "meaning": (
                f"In a cohort like the paper's ({int(events.value)} of {int(vertebrae.value)} vertebrae "
                f"leaked, {prevalence:.1f}%), {values.ppv_pct:.1f}% of flagged vertebrae leak and "
                f"{values.npv_pct:.1f}% of unflagged vertebrae do not."
            ),
        }
    result["leakage_by_level"] = level_leakage(rule, str(record.get("level", "")))
    return result


def level_leakage(rule: RiskRule, level: str) -> dict:
    """The rule cohort's leakage count for ``level`` (its per-level table), or why there is none."""
    counts = rule.leakage_by_level.get(level)
    if counts:
        leaked, treated = int(counts["leaked"]), int(counts["treated"])
        return {
            "level": level,
            "leaked": leaked,
            "treated": treated,
            "rate_pct": 100.0 * leaked / treated if treated else float("nan"),
            "verified": bool(counts.get("verified", False)),
        }
    return {"level": level, "available": False, "note": rule.leakage_by_level_note}


def cement_budget(rule: RiskRule, vbv_cm3: float) -> dict:
    """The largest cement volume (cm³ = mL) that keeps a vertebra of ``vbv_cm3`` at the threshold.

    For ratio rules the budget is ``threshold% × VBV`` (of puncture-side cement for
    ``psbcv_vbv_pct``, of all cement in the body for ``bcv_vbv_pct``); for volume rules it is
    the threshold itself. A flag is raised only strictly above the threshold.
    """
    if rule.metric == "psbcv_vbv_pct":
        budget, applies_to = rule.threshold / 100.0 * vbv_cm3, "puncture-side cement inside the body"
    elif rule.metric == "bcv_vbv_pct":
        budget, applies_to = rule.threshold / 100.0 * vbv_cm3, "cement inside the body"
    else:
        budget, applies_to = rule.threshold, "all injected cement"
    return {
        "rule": rule.name,
        "metric": rule.metric,
        "threshold": rule.threshold,
        "unit": rule.unit,
        "max_cement_ml": budget,
        "applies_to": applies_to,
        "verified": rule.verified,
        "citation": rule.citation,
    }
