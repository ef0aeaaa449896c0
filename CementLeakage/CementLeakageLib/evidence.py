"""Published figures behind the default PSBCV/VBV% cut-off."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedCutoff:
    """A published threshold on a percentage metric, with its diagnostic accuracy."""

    metric: str
    cutoff_pct: float
    outcome: str
    sensitivity_pct: float
    specificity_pct: float
    auc: float
    odds_ratio_per_point: float
    citation: str


GAO_2022_PSBCV = PublishedCutoff(
    metric="psbcv_vbv_pct",
    cutoff_pct=13.68,
    outcome="paravertebral venous cement leakage",
    sensitivity_pct=84.7,
    specificity_pct=37.8,
    auc=0.690,
    odds_ratio_per_point=1.607,
    citation="Gao et al., BMC Musculoskeletal Disorders 2022;23:184 (495 patients, 585 vertebrae)",
)
"""Gao et al. 2022: PSBCV/VBV% above 13.68% predicts paravertebral venous leakage."""

RISK_INDICATOR_NOTE = (
    "Risk indicator, not a diagnosis: above the cut-off the published risk of paravertebral venous "
    "cement leakage rises (sensitivity {sens:.1f}%, specificity {spec:.1f}%, AUC {auc:.3f}); "
    "confirm any leakage on the images."
)


def risk_note(cutoff: PublishedCutoff = GAO_2022_PSBCV) -> str:
    """The sentence that accompanies every flag, with the cut-off's published accuracy."""
    return RISK_INDICATOR_NOTE.format(
        sens=cutoff.sensitivity_pct, spec=cutoff.specificity_pct, auc=cutoff.auc
    )
