"""How far the body's cross-section goes on beyond an endplate point (``body_beyond_points``), on
stacks of slices drawn by hand: a 0.5 mm frame grid with the body's cortical ring (600 HU,
13-15 mm from the axis, marrow at 150 HU inside) between the points, 20 mm apart, and what
follows beyond the upper point slice by slice."""

from __future__ import annotations

import numpy as np
import pytest

from CementLeakageLib.body_beyond_points import (
    PLATE_RUN_MM,
    ReachBeyondPoint,
    lies_inside,
    reach_beyond_points,
)
from CementLeakageLib.body_cross_sections import cross_sections_by_slice
from CementLeakageLib.body_outline_ring import outline_ring, usual_outline
from CementLeakageLib.body_settings import BodySegmentationSettings

SPACING_MM = 0.5
HEIGHT_MM = 20.0
BEYOND_MM = 10.0
SIZE = 81
CENTRE = (SIZE // 2, SIZE // 2)
SETTINGS = BodySegmentationSettings()
ATTEMPTS = [(226.0, radius) for radius in SETTINGS.closing_radii_mm]


def _disk_mm(radius_mm: float) -> np.ndarray:
    rows, cols = np.mgrid[:SIZE, :SIZE]
    return np.hypot(rows - CENTRE[0], cols - CENTRE[1]) * SPACING_MM <= radius_mm


def _ring_slice(outer_mm: float = 15.0, open_ring: bool = False, open_side: bool = False) -> np.ndarray:
    """One slice (HU): a cortical ring 2 mm thick round marrow; ``open_ring`` leaves out its
    anterior quarter (a gap far wider than any closing radius), ``open_side`` 60 degrees of it at
    the side (15 mm, a faint shell)."""
    hu = np.zeros((SIZE, SIZE), dtype=np.float32)
    hu[_disk_mm(outer_mm)] = 600.0
    hu[_disk_mm(outer_mm - 2.0)] = 150.0
    rows, cols = np.mgrid[:SIZE, :SIZE]
    cortex = _disk_mm(outer_mm) & ~_disk_mm(outer_mm - 2.0)
    if open_ring:
        anterior = rows - CENTRE[0] > np.abs(cols - CENTRE[1])
        hu[anterior & cortex] = 0.0
    if open_side:
        side = np.abs(np.arctan2(rows - CENTRE[0], cols - CENTRE[1])) < np.radians(30.0)
        hu[side & cortex] = 0.0
    return hu


def _reach_above(beyond: list[str], read_rings: bool = False):
    """The reach beyond the upper point of a stack whose slices beyond it are ``beyond`` (``full``:
    the whole ring; ``open``: the ring open; ``side``: the ring open at the side; ``part``: a ring
    of 8 mm, 28% of the area; ``plate``: bone across the body; ``disc``: nothing), then disc to
    the end of the grid. Below the lower point: disc. With ``read_rings``, slices that show the
    body's ring round marrow hold it too (:mod:`body_outline_ring`)."""
    count = int(round((HEIGHT_MM + 2 * BEYOND_MM) / SPACING_MM))
    axial_mm = -BEYOND_MM + SPACING_MM * (np.arange(count) + 0.5)
    drawn = {
        "full": _ring_slice(),
        "open": _ring_slice(open_ring=True),
        "part": _ring_slice(outer_mm=8.0),
        "side": _ring_slice(open_side=True),
        "plate": np.where(_disk_mm(15.0), 600.0, 0.0).astype(np.float32),
        "disc": np.zeros((SIZE, SIZE), dtype=np.float32),
    }
    hu = np.zeros((count, SIZE, SIZE), dtype=np.float32)
    hu[(axial_mm > 0) & (axial_mm < HEIGHT_MM)] = drawn["full"]
    above = np.flatnonzero(axial_mm > HEIGHT_MM)
    for z, kind in zip(above, beyond):
        hu[z] = drawn[kind]
    slab = np.flatnonzero((axial_mm > 0) & (axial_mm < HEIGHT_MM))
    found = cross_sections_by_slice(hu, slab, axial_mm, HEIGHT_MM, CENTRE, ATTEMPTS, SETTINGS)
    typical_area = float(np.median([section.sum() for section in found.values()]))
    ring = outline_ring(usual_outline(list(found.values())), CENTRE, SPACING_MM) if read_rings else None
    return reach_beyond_points(hu, axial_mm, HEIGHT_MM, CENTRE, ATTEMPTS, SETTINGS, typical_area, ring)[1]


def test_a_ring_open_in_two_slices_is_passed_over():
    """Six whole slices (3 mm), the ring open in two (1 mm, a faint shell), three whole again:
    the body goes on past the gap to the disc (5.5 mm), and so does the run of slices holding
    part of it."""
    reach = _reach_above(["full"] * 6 + ["open"] * 2 + ["full"] * 3)

    assert reach.reach_mm == pytest.approx(5.5, abs=1e-6)
    assert not reach.to_the_end
    assert reach.part_reach_mm == pytest.approx(5.5, abs=1e-6)


def test_a_ring_open_in_the_first_two_slices_is_passed_over():
    """The ring open in the two slices next to the point, then whole for 4 mm: the body goes on
    5 mm beyond the point."""
    reach = _reach_above(["open"] * 2 + ["full"] * 8)

    assert reach.reach_mm == pytest.approx(5.0, abs=1e-6)
    assert reach.part_reach_mm == pytest.approx(5.0, abs=1e-6)


def test_three_open_slices_end_the_reach():
    """Three open slices in a row (1.5 mm) end it, as a disc does."""
    reach = _reach_above(["full"] * 6 + ["open"] * 3 + ["full"] * 3)

    assert reach.reach_mm == pytest.approx(3.0, abs=1e-6)
    assert reach.part_reach_mm == pytest.approx(3.0, abs=1e-6)


def test_slices_with_part_of_the_area_carry_the_part_run_only():
    """Two whole slices, then four whose ring holds 28% of the area (a tilted plate cutting
    them): the full reach is 1 mm, the part run 3 mm."""
    reach = _reach_above(["full"] * 2 + ["part"] * 4)

    assert reach.reach_mm == pytest.approx(1.0, abs=1e-6)
    assert reach.part_reach_mm == pytest.approx(3.0, abs=1e-6)


def test_a_body_that_goes_on_to_the_end_of_the_grid_is_said_to():
    """Whole rings out to the edge of the grid but for a lone open slice: the point lies inside
    the body."""
    slices = int(round(BEYOND_MM / SPACING_MM))
    reach = _reach_above(["full"] * 5 + ["open"] + ["full"] * (slices - 6))

    assert reach.to_the_end
    assert reach.reach_mm == pytest.approx(BEYOND_MM, abs=1e-6)


def test_two_open_slices_in_a_row_keep_the_body_from_going_on_to_the_end():
    """Whole rings out to the edge of the grid but for two open slices in a row: the body's
    reach goes on to the end, but the point is said to lie inside the body only where the ring
    closes out to there in every slice but lone ones."""
    slices = int(round(BEYOND_MM / SPACING_MM))
    reach = _reach_above(["full"] * 5 + ["open"] * 2 + ["full"] * (slices - 7))

    assert not reach.to_the_end
    assert reach.reach_mm == pytest.approx(BEYOND_MM, abs=1e-6)


@pytest.mark.parametrize("read_rings", [False, True], ids=["closed-rings", "open-rings-read"])
def test_a_ring_open_slice_after_slice_holds_the_body_where_rings_are_read(read_rings):
    """Whole rings out to the edge of the grid but for four slices in a row (2 mm) whose faint
    shell leaves the ring open at the side: its cortex still runs round 30 of the 36 sectors
    along the outline, round marrow. Read as rings, they hold the body, and it goes on to the end
    (the point lies inside it); by the closed rings alone, the reach ends at them."""
    slices = int(round(BEYOND_MM / SPACING_MM))
    reach = _reach_above(["full"] * 5 + ["side"] * 4 + ["full"] * (slices - 9), read_rings)

    assert reach.to_the_end is read_rings
    assert reach.reach_mm == pytest.approx(BEYOND_MM if read_rings else 2.5, abs=1e-6)


def test_plates_and_a_disc_beyond_the_point_end_the_ring_too():
    """Beyond a point on its endplate: a slice of the body, the endplate's plate (1 mm), a 2 mm
    disc, the next vertebra's plate and body. The plates are bone across the body, not a ring
    round marrow, and the disc shows none: the body's reach ends at the first slice, and it
    does not go on to the end."""
    slices = int(round(BEYOND_MM / SPACING_MM))
    reach = _reach_above(
        ["full"] + ["plate"] * 2 + ["disc"] * 4 + ["plate"] * 2 + ["full"] * (slices - 9), True
    )

    assert not reach.to_the_end
    assert reach.reach_mm == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize(
    ("gap", "to_the_end", "held_mm"),
    [("plate", False, 4.0), ("open", True, BEYOND_MM)],
    ids=["plate-then-a-rim", "open-then-a-ring"],
)
def test_a_ring_past_a_plate_and_no_body_is_the_next_vertebras_rim(gap, to_the_end, held_mm):
    """Whole rings for 4 mm past the point, then one slice of ``gap``, one whose ring is open at
    the side round what reads as marrow, and whole rings out to the edge of the grid. Past a
    plate, that slice is the next vertebra's rim round a narrow disc that thick tilted slices
    blur: the body ends at the plate and does not go on to the end. Past a slice whose ring is
    open at the front (a faint shell), it is the body's ring, and the body goes on to the end."""
    slices = int(round(BEYOND_MM / SPACING_MM))
    reach = _reach_above(["full"] * 8 + [gap, "side"] + ["full"] * (slices - 10), True)

    assert reach.to_the_end is to_the_end
    assert reach.held_mm == pytest.approx(held_mm, abs=1e-6)
    assert not reach.up_to_plate


@pytest.mark.parametrize(
    ("past_the_plate", "held_mm", "up_to_plate"),
    [("full", 4.0, False), ("disc", 5.0, True)],
    ids=["next-vertebra", "own-endplate"],
)
def test_a_ring_after_a_slice_without_the_body_that_leads_into_a_plate(past_the_plate, held_mm, up_to_plate):
    """Whole rings for 4 mm past the point, one slice without the body, one whose ring is open at
    the side (a faint shell), then a plate of bone across the body (1.5 mm). With the next body
    past the plate and no disc, the ring and the plate are the next vertebra's rim and endplate
    across a narrow disc: the body ends before the slice without it. With a disc past the plate,
    they are this body's own ring and endplate, and the body is held up to the plate."""
    slices = int(round(BEYOND_MM / SPACING_MM))
    reach = _reach_above(
        ["full"] * 8 + ["disc", "side"] + ["plate"] * 3 + [past_the_plate] * (slices - 13), True
    )

    assert reach.held_mm == pytest.approx(held_mm, abs=1e-6)
    assert reach.up_to_plate is up_to_plate
    assert not reach.to_the_end


@pytest.mark.parametrize(
    ("whole", "then", "held_mm", "up_to_plate"),
    [
        (8, "plate", 4.0, True),
        (8, "disc", 4.0, False),
        (8, "plate, body", 4.0, False),
        (1, "plate", 0.5, True),
        (0, "plate", 0.0, True),
    ],
    ids=[
        "4mm-then-plate",
        "4mm-then-disc",
        "4mm-then-plate-and-body",
        "a-slice-then-plate",
        "plate-at-the-point",
    ],
)
def test_a_body_held_up_to_a_plate_says_so(whole, then, held_mm, up_to_plate):
    """Whole rings for ``whole`` slices past the point, then a plate of bone across the body
    (1.5 mm) and a disc, or a disc straight away (a dish's rim ending), or a plate and the next
    body with no disc between (two endplates across a narrow disc that thick slices merge): the
    walk of the slices that hold the body ends at the plate or the disc, and says whether it was
    a plate with a disc past it."""
    slices = int(round(BEYOND_MM / SPACING_MM))
    plate = ["plate"] * 3 if then.startswith("plate") else []
    rest = "full" if then.endswith("body") else "disc"
    reach = _reach_above(["full"] * whole + plate + [rest] * (slices - whole - len(plate)), True)

    assert reach.held_mm == pytest.approx(held_mm, abs=1e-6)
    assert reach.up_to_plate is up_to_plate
    assert not reach.to_the_end


@pytest.mark.parametrize(
    ("held_mm", "up_to_plate", "inside"),
    [(PLATE_RUN_MM, True, True), (PLATE_RUN_MM - 0.5, True, False), (4.0, False, False)],
    ids=["plate-at-the-limit", "plate-nearer", "rim-ending-in-disc"],
)
def test_a_point_lies_inside_the_body_held_up_to_its_plate(held_mm, up_to_plate, inside):
    """With 20 mm between the points (a dish could ring the body 9 mm past a point), a body held
    ``PLATE_RUN_MM`` or more up to a plate of bone across it goes on to its endplate there: the
    point lies inside it. Nearer, the plate is the endplate the point lies on; a run as long
    ending in disc is a dish's rim."""
    reach = ReachBeyondPoint(
        reach_mm=held_mm, to_the_end=False, part_reach_mm=held_mm, held_mm=held_mm, up_to_plate=up_to_plate
    )
    assert lies_inside(reach, 20.0, SETTINGS) is inside


@pytest.mark.parametrize(
    ("held_mm", "reach_mm", "to_the_end", "inside"),
    [(4.5, 4.5, False, False), (4.6, 4.6, False, True), (2.0, 9.0, False, False), (1.0, 1.0, True, True)],
    ids=["as-deep-as-a-dish", "deeper-than-any-dish", "on-past-a-narrow-disc", "to-the-end"],
)
def test_a_point_lies_inside_the_body_past_any_dish(held_mm, reach_mm, to_the_end, inside):
    """With 10 mm between the points, a body that goes on 4.5 mm past one (0.45 of the height)
    with no two slices in a row without it may be a dish's rim; further, or to the end of the
    grid, the point lies inside a body. A reach that passes over a narrow disc into the next
    vertebra does not count."""
    reach = ReachBeyondPoint(
        reach_mm=reach_mm, to_the_end=to_the_end, part_reach_mm=reach_mm, held_mm=held_mm
    )
    assert lies_inside(reach, 10.0, SETTINGS) is inside
