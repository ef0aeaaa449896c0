"""When a PSBCV/VBV% flag lies too close to the cut-off to be trusted, and the warnings saying so.

Two margins make a flag uncertain. The measurement's own error: a ratio within
``NEAR_CUTOFF_BAND_PT`` of the cut-off may fall either way. And dishes that thick slices may
leave out (:mod:`unseen_dishes`): they make VBV read low, and so the ratio high, by up to the
share of VBV they could hold, so a flag raised by less than that may fall too.
"""

from __future__ import annotations

NEAR_CUTOFF_BAND_PT = 0.5
"""PSBCV/VBV% within this many percentage points of the cut-off is near it: the phantom sweeps
(``benchmarks/results``) put 90% of the automatic ratios within 0.3 points of the truth and
95% within 0.38 (the worst 0.97), so a flag this close may fall either way and the masks deserve
a look."""
UNSEEN_SHARE_NAMED = 0.04
"""Share of VBV the unseen dishes could hold from which the result names them: the 4% VBV
accuracy the segmentation is held to."""


def flag_may_fall_with_unseen_dishes(psbcv_vbv_pct: float, cutoff_pct: float, share: float) -> bool:
    """Whether a flag raised at ``psbcv_vbv_pct`` (%, above ``cutoff_pct``) could fall with the
    dishes that thick slices may leave out: with VBV up to ``share`` (0 to 1) low the ratio could
    be as low as ``psbcv_vbv_pct / (1 + share)``. Only a share that is named counts
    (``UNSEEN_SHARE_NAMED``); left-out dishes can only lower the ratio, never raise it."""
    if share < UNSEEN_SHARE_NAMED:
        return False
    return cutoff_pct < psbcv_vbv_pct <= cutoff_pct * (1.0 + share)


def near_cutoff_warnings(
    psbcv_vbv_pct: float, cutoff_pct: float, unseen_dish_share: float | None
) -> list[str]:
    """The warnings that the flag at ``psbcv_vbv_pct`` (%) may fall either way against
    ``cutoff_pct`` (%): empty when it is not near the cut-off. ``unseen_dish_share`` is the share
    of VBV (0 to 1) dishes between the CT's slices could hold, None when not estimated (slices up
    to 1 mm, or masks given)."""
    if abs(psbcv_vbv_pct - cutoff_pct) <= NEAR_CUTOFF_BAND_PT:
        return [
            f"PSBCV/VBV {psbcv_vbv_pct:.2f}% lies within {NEAR_CUTOFF_BAND_PT:g} percentage points of the "
            f"{cutoff_pct:g}% cut-off, within the measurement's error: the flag may fall either "
            "way; review the body and cement masks"
        ]
    if unseen_dish_share is not None and flag_may_fall_with_unseen_dishes(
        psbcv_vbv_pct, cutoff_pct, unseen_dish_share
    ):
        lowest = psbcv_vbv_pct / (1.0 + unseen_dish_share)
        share_pct = 100.0 * unseen_dish_share
        return [
            f"PSBCV/VBV {psbcv_vbv_pct:.2f}% lies above the {cutoff_pct:g}% cut-off, but with dished "
            f"endplates that these slices may leave out (VBV up to {share_pct:.0f}% low) it could be "
            f"{lowest:.2f}%: the flag may fall either way; check the endplates on a sagittal view"
        ]
    return []
