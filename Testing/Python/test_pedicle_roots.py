"""Pedicle roots cut off the body's cross-sections column by column (frame grid, 0.5 mm pixels).

Synthetic stack of elliptical cross-sections: roots of the pedicles stick out behind the
posterolateral corners in 26 of 40 slices, with the pedicles' bone continuing behind them;
three slices near an endplate flare outward with soft tissue behind. Exact pixel counts say
what is cut and what is kept.
"""

from __future__ import annotations

import numpy as np

from CementLeakageLib.pedicle_cuts import (
    POSTERIOR_PROFILE_TOLERANCE_MM,
    ROOT_PROFILE_QUANTILE,
    cut_pedicle_roots,
)

SPACING_MM = 0.5
SHAPE = (40, 120, 120)
CENTRE = (60, 60)
ROOT_SLICES = range(5, 31)
FLARED_SLICES = range(0, 3)
ROOT_COLUMNS = (slice(32, 42), slice(78, 88))  # 18 to 28 px either side of the axis
BONE_MIN_HU = 226.0
ROOT_REACH_PX = 34  # behind the axis; the ellipse reaches 20 to 26 px there


def ellipse(half_x: float, half_y: float) -> np.ndarray:
    rows, cols = np.mgrid[: SHAPE[1], : SHAPE[2]]
    return ((cols - CENTRE[1]) / half_x) ** 2 + ((rows - CENTRE[0]) / half_y) ** 2 <= 1.0


def as_hu(bone: np.ndarray) -> np.ndarray:
    """Bone at 300 HU in soft tissue at 40 HU."""
    return np.where(bone, 300.0, 40.0)


def stack():
    normal, flared = ellipse(36.0, 28.0), ellipse(38.0, 30.0)
    body = np.zeros(SHAPE, dtype=bool)
    bone = np.zeros(SHAPE, dtype=bool)
    roots = np.zeros(SHAPE[1:], dtype=bool)
    for columns in ROOT_COLUMNS:
        roots[CENTRE[0] - ROOT_REACH_PX : CENTRE[0], columns] = True
    pedicles = np.zeros(SHAPE[1:], dtype=bool)
    for columns in ROOT_COLUMNS:
        pedicles[CENTRE[0] - ROOT_REACH_PX - 20 : CENTRE[0] - ROOT_REACH_PX, columns] = True
    for z in range(SHAPE[0]):
        body[z] = flared if z in FLARED_SLICES else normal
        if z in ROOT_SLICES:
            body[z] |= roots
            bone[z] = pedicles
        bone[z] |= body[z]
    return body, bone, normal, flared, roots & ~normal


def test_roots_are_cut_and_the_body_is_kept():
    body, bone, normal, flared, root_only = stack()
    cut_pedicle_roots(
        body, as_hu(bone), BONE_MIN_HU, list(range(SHAPE[0])), CENTRE, ROOT_PROFILE_QUANTILE, SPACING_MM
    )
    tolerance_px = int(np.ceil(POSTERIOR_PROFILE_TOLERANCE_MM / SPACING_MM))
    for z in range(SHAPE[0]):
        kept = flared if z in FLARED_SLICES else normal
        # No pixel of the body's own cross-section is lost, flared slices included (soft tissue
        # lies behind their edge, so they are not cut at all).
        assert np.array_equal(body[z] & kept, kept)
        if z in ROOT_SLICES:
            left = body[z] & root_only
            # What is left of a root lies within the tolerance behind the profile: at most
            # ``tolerance_px`` rows in each of its 20 columns.
            assert np.count_nonzero(left) <= tolerance_px * 20
            assert np.count_nonzero(left) < 0.2 * np.count_nonzero(root_only)
        else:
            assert not (body[z] & ~kept).any()


def test_without_bone_behind_nothing_is_cut():
    # The same bumps with soft tissue behind them are the body's own shape: kept whole.
    body, _, *_ = stack()
    before = body.copy()
    cut_pedicle_roots(
        body, as_hu(body), BONE_MIN_HU, list(range(SHAPE[0])), CENTRE, ROOT_PROFILE_QUANTILE, SPACING_MM
    )
    assert np.array_equal(body, before)
