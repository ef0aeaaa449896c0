"""Fillets where the pedicles join the body cut off the slices that carry them (frame grid,
0.5 mm pixels, rows increasing towards anterior).

Synthetic stack: 10 pedicle-free slices with the body's elliptical cross-section, then 30
slices where the corners behind the axis are filled out towards the pedicles (the fillets),
with the pedicles' bone beyond them. Exact pixel counts say what is cut and what is kept.
"""

from __future__ import annotations

import numpy as np

from CementLeakageLib.pedicle_cuts import (
    FILLET_MAX_FRACTION,
    FILLET_REFERENCE_AGREEMENT,
    cut_pedicle_fillets,
)

SHAPE = (40, 120, 120)
CENTRE = (60, 60)
FREE_SLICES = list(range(10))
PEDICLE_SLICES = list(range(10, 40))
ROWS, COLS = np.mgrid[: SHAPE[1], : SHAPE[2]]
BONE_MIN_HU = 226.0


def ellipse(half_x: float, half_y: float) -> np.ndarray:
    return ((COLS - CENTRE[1]) / half_x) ** 2 + ((ROWS - CENTRE[0]) / half_y) ** 2 <= 1.0


BODY = ellipse(36.0, 28.0)
POSTEROLATERAL = (ROWS < CENTRE[0] - 8) & (np.abs(COLS - CENTRE[1]) >= 18)
FILLETS = ellipse(39.0, 31.0) & ~BODY & POSTEROLATERAL
PEDICLES = ellipse(46.0, 38.0) & ~ellipse(39.0, 31.0) & POSTEROLATERAL


def stack(extra: np.ndarray = FILLETS, bone_beyond: np.ndarray = PEDICLES):
    """The body mask and its HU (bone 300 HU, soft tissue 40 HU)."""
    body = np.zeros(SHAPE, dtype=bool)
    bone = np.zeros(SHAPE, dtype=bool)
    body[:] = BODY
    body[PEDICLE_SLICES] |= extra
    bone[:] = body
    bone[PEDICLE_SLICES] |= bone_beyond
    return body, np.where(bone, 300.0, 40.0)


def cut(body: np.ndarray, hu: np.ndarray) -> None:
    cut_pedicle_fillets(body, hu, BONE_MIN_HU, list(range(SHAPE[0])), PEDICLE_SLICES, CENTRE)


def test_fillets_next_to_the_pedicles_are_cut_to_the_body_s_outline():
    assert 0 < FILLETS.sum() <= FILLET_MAX_FRACTION * (BODY | FILLETS).sum()
    body, hu = stack()
    cut(body, hu)
    assert np.array_equal(body, np.broadcast_to(BODY, SHAPE))


def test_a_bulge_with_soft_tissue_beyond_is_the_body_s_own():
    body, hu = stack(bone_beyond=np.zeros_like(PEDICLES))
    before = body.copy()
    cut(body, hu)
    assert np.array_equal(body, before)


def test_nothing_in_front_of_the_axis_is_cut():
    # A small anterior bump with bone beyond it (an osteophyte's base), 2% of the front half.
    in_front = (ROWS > CENTRE[0] + 8) & (np.abs(COLS - CENTRE[1]) <= 6)
    anterior = ellipse(39.0, 31.0) & ~BODY & in_front
    bone_in_front = ellipse(46.0, 38.0) & ~ellipse(39.0, 31.0) & in_front
    body, hu = stack(extra=FILLETS | anterior, bone_beyond=PEDICLES | bone_in_front)
    cut(body, hu)
    for z in PEDICLE_SLICES:
        assert np.array_equal(body[z], BODY | anterior)


def test_a_shrunken_pedicle_free_outline_cuts_nothing():
    # A faint shell closed only around part of the body in the pedicle-free slices: their outline
    # (80% of the body's size) disagrees with the others in front of the axis, so it bounds nothing.
    body, hu = stack()
    body[FREE_SLICES] = ellipse(0.8 * 36.0, 0.8 * 28.0)
    before = body.copy()
    cut(body, hu)
    assert np.array_equal(body, before)


def test_a_cut_larger_than_a_fillet_is_not_made():
    wide = ellipse(48.0, 40.0) & ~BODY & POSTEROLATERAL
    beyond = ellipse(54.0, 46.0) & ~ellipse(48.0, 40.0) & POSTEROLATERAL
    assert wide.sum() > FILLET_MAX_FRACTION * (BODY | wide).sum()
    body, hu = stack(extra=wide, bone_beyond=beyond)
    before = body.copy()
    cut(body, hu)
    assert np.array_equal(body, before)


def test_a_notch_at_the_midline_of_the_free_slices_is_no_fillet():
    # A basivertebral foramen opens the posterior wall of the slices it crosses, which then pass
    # for free of pedicles: their outline is notched at the midline, with the wall's cortex behind
    # the notch. The piece of each slice carrying pedicles in that notch reaches the axis's
    # column and stays; the fillets either side are cut.
    notch = (ROWS < CENTRE[0] - 20) & (np.abs(COLS - CENTRE[1]) <= 6)
    body, hu = stack()
    body[FREE_SLICES] &= ~notch
    cortex_behind = ellipse(36.0, 30.0) & ~BODY & (np.abs(COLS - CENTRE[1]) <= 6) & (ROWS < CENTRE[0])
    hu[PEDICLE_SLICES] = np.where(cortex_behind, 300.0, hu[PEDICLE_SLICES])
    cut(body, hu)
    for z in PEDICLE_SLICES:
        assert np.array_equal(body[z], BODY)


def test_fillets_of_slices_that_reach_no_further_back_than_the_wall_are_cut():
    # Pedicles as tall as a compressed body join its corners in three of the ten slices that pass
    # for free of them (they reach no further back than the wall): those slices do not set the
    # outline, and their fillets are cut with the others'.
    body, hu = stack()
    joined = FREE_SLICES[7:]
    body[joined] |= FILLETS
    hu[joined] = np.where(FILLETS | PEDICLES, 300.0, hu[joined])
    ratio_clean = BODY[: CENTRE[0]].sum() / BODY[CENTRE[0] :].sum()
    ratio_joined = (BODY | FILLETS)[: CENTRE[0]].sum() / BODY[CENTRE[0] :].sum()
    assert ratio_joined > (1.0 + FILLET_REFERENCE_AGREEMENT) * ratio_clean  # the median is the clean one
    cut(body, hu)
    assert np.array_equal(body, np.broadcast_to(BODY, SHAPE))


def test_slices_smaller_all_round_next_to_an_endplate_still_set_the_outline():
    # The free slices next to an endplate are 5% smaller all round: behind the axis against in front
    # they are alike, so all the free slices set the outline, and the body's shape is kept.
    body, hu = stack()
    body[FREE_SLICES[:2]] = ellipse(0.95 * 36.0, 0.95 * 28.0)
    before_free = body[FREE_SLICES].copy()
    cut(body, hu)
    assert np.array_equal(body[FREE_SLICES], before_free)
    assert np.array_equal(body[PEDICLE_SLICES], np.broadcast_to(BODY, (len(PEDICLE_SLICES),) + BODY.shape))


def test_fillets_and_rib_heads_of_a_tenth_of_the_slice_are_cut():
    # Rib heads beside the pedicles widen the corners further: a tenth of the slice is still cut.
    wider = ellipse(42.0, 34.0) & ~BODY & POSTEROLATERAL
    beyond = ellipse(49.0, 41.0) & ~ellipse(42.0, 34.0) & POSTEROLATERAL
    share = wider.sum() / (BODY | wider).sum()
    assert 0.08 < share <= FILLET_MAX_FRACTION
    body, hu = stack(extra=wider, bone_beyond=beyond)
    cut(body, hu)
    assert np.array_equal(body, np.broadcast_to(BODY, SHAPE))
