"""The rules that let the cross-sections closed at the lowest shell level replace the first ones,
each at its boundary: the whole cross-section 1.15 times larger (1.02 under a faint cortex), the
part in front of the axis 1.15 times larger (1.02 under a faint cortex whose first rings took in
the spinal canal, 1.15 times larger behind the axis), and a slice markedly smaller than the body's (90%
of the upper quartile) looked at again. Areas are exact pixel counts on a synthetic stack."""

from __future__ import annotations

import numpy as np
import pytest

from CementLeakageLib.ring_replacement import (
    CANAL_TAKEN_RATIO,
    DEFICIENT_AREA_FRACTION,
    FAINT_CORTEX_RATIO,
    FRONT_LOST_RATIO,
    LOST_THROUGHOUT_RATIO,
    deficient_slices,
    lost_throughout,
)

AXIS_ROW = 40
WIDTH = 50
SLICES = 5


def cross_section(behind_px: int, front_px: int) -> np.ndarray:
    """A ``[y, x]`` cross-section of exactly ``behind_px`` pixels in rows before ``AXIS_ROW`` and
    ``front_px`` from it on (rows increase towards anterior), filled row by row from the axis."""
    order = np.arange(AXIS_ROW * WIDTH).reshape(AXIS_ROW, WIDTH)
    return np.concatenate([(order < behind_px)[::-1], order < front_px])


def stack(areas: list[tuple[int, int]]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """A ``[z, y, x]`` body with one cross-section per ``(behind_px, front_px)``, and its slices."""
    body = np.stack([cross_section(*area) for area in areas])
    return body, {z: body[z] for z in range(len(areas))}


def replaced(first: tuple[int, int], lowest: tuple[int, int], faint_cortex: bool = False) -> bool:
    """Whether the lowest-level cross-sections (all ``lowest``) replace the first (all ``first``)."""
    body, interiors = stack([first] * SLICES)
    alternative, alternative_interiors = stack([lowest] * SLICES)
    return lost_throughout(body, interiors, alternative, alternative_interiors, faint_cortex, AXIS_ROW)


def test_the_stack_has_the_pixels_it_is_built_with():
    section = cross_section(437, 611)
    assert int(section[:AXIS_ROW].sum()) == 437
    assert int(section[AXIS_ROW:].sum()) == 611


@pytest.mark.parametrize(("extra_px", "expected"), [(149, False), (151, True)])
def test_lowest_rings_replace_the_first_when_over_1_15_times_larger(extra_px, expected):
    # 1000 pixels against 1149 or 1151, the part in front of the axis unchanged (500).
    assert LOST_THROUGHOUT_RATIO == 1.15
    assert replaced((500, 500), (500 + extra_px, 500)) is expected


@pytest.mark.parametrize(("extra_px", "expected"), [(19, False), (21, True)])
def test_under_a_faint_cortex_over_1_02_times_larger_is_enough(extra_px, expected):
    assert FAINT_CORTEX_RATIO == 1.02
    assert replaced((500, 500), (500 + extra_px, 500), faint_cortex=True) is expected
    assert replaced((500, 500), (500 + extra_px, 500), faint_cortex=False) is False


@pytest.mark.parametrize(("front_px", "expected"), [(574, False), (576, True)])
def test_lowest_rings_replace_the_first_when_over_1_15_times_larger_in_front(front_px, expected):
    # The first rings are larger behind the axis (700 against 500 pixels: pedicle left by the
    # wall), so the whole cross-sections come out smaller at the lowest level (1074 or 1076
    # against 1200); in front of the axis 574 or 576 against 500 pixels.
    assert FRONT_LOST_RATIO == 1.15
    assert replaced((700, 500), (500, front_px)) is expected


@pytest.mark.parametrize(("front_px", "expected"), [(509, False), (511, True)])
def test_first_rings_that_took_in_the_canal_give_way_at_1_02_times_in_front(front_px, expected):
    # Under a faint cortex the first rings took in the spinal canal behind the axis (750 against
    # 500 pixels), so the whole cross-sections come out smaller at the lowest level (1009 or 1011
    # against 1250); in front of the axis 509 or 511 against 500 pixels, over 1.02 times only
    # with 511. Under a dense cortex 1.15 times is needed in front.
    assert CANAL_TAKEN_RATIO == 1.15
    assert replaced((750, 500), (500, front_px), faint_cortex=True) is expected
    assert replaced((750, 500), (500, front_px), faint_cortex=False) is False


@pytest.mark.parametrize(("behind_px", "expected"), [(574, False), (576, True)])
def test_first_rings_took_in_the_canal_when_over_1_15_times_larger_behind(behind_px, expected):
    # Under a faint cortex, 1.04 times larger in front at the lowest level (520 against 500
    # pixels) replaces the first rings only when those are over 1.15 times larger behind the axis
    # (574 or 576 against 500 pixels; the whole cross-sections 1074 or 1076 against 1020).
    assert replaced((behind_px, 500), (500, 520), faint_cortex=True) is expected


def test_a_body_whose_lowest_rings_are_1_08_times_larger_in_front_keeps_its_first_rings():
    # The largest ratio in front of the axis of any body in the sweeps whose rings were kept.
    assert replaced((700, 500), (500, 540)) is False


def test_the_ratios_compare_the_typical_cross_section_not_the_largest():
    body, interiors = stack([(500, 500)] * SLICES)
    # Two of five lowest-level slices twice as large: the median is unchanged.
    alternative, alternative_interiors = stack([(1000, 1000)] * 2 + [(500, 500)] * 3)
    assert not lost_throughout(body, interiors, alternative, alternative_interiors, True, AXIS_ROW)
    # Three of five: the median is the large one.
    alternative, alternative_interiors = stack([(1000, 1000)] * 3 + [(500, 500)] * 2)
    assert lost_throughout(body, interiors, alternative, alternative_interiors, False, AXIS_ROW)


def test_without_cross_sections_at_either_level_nothing_is_replaced():
    body, interiors = stack([(500, 500)] * SLICES)
    alternative, alternative_interiors = stack([(2000, 2000)] * SLICES)
    assert not lost_throughout(body, {}, alternative, alternative_interiors, True, AXIS_ROW)
    assert not lost_throughout(body, interiors, alternative, {}, True, AXIS_ROW)


@pytest.mark.parametrize(("area_px", "expected"), [(899, [2]), (901, [])])
def test_a_slice_under_90_percent_of_the_upper_quartile_is_deficient(area_px, expected):
    assert DEFICIENT_AREA_FRACTION == 0.9
    areas = [(500, 500), (500, 500), (area_px - 500, 500), (500, 500), (500, 500)]
    body, interiors = stack(areas)
    assert deficient_slices(body, interiors) == expected


def test_fewer_than_four_slices_are_not_judged_deficient():
    body, interiors = stack([(500, 500), (500, 500), (100, 100)])
    assert deficient_slices(body, interiors) == []
