"""Whether the vertebral body goes on past an endplate point: a point marked inside the body
instead of on its endplate's surface.

The body is cut at the marked points, so a point clicked in the marrow (a slice away from the
endplate, or the wrong end of the body) takes the rest of the body out of VBV without any other
sign: the shell beyond it encloses marrow as it did between the points. Past a point on the
endplate, the body's closed cortical ring ends within the endplate's blur, or, on a dished
endplate, where the dish's rim ends: a slice or more of disc follows before the next vertebra.
The frame grid reaches ``endplate_extension`` of the height plus ``slab_margin_mm`` beyond each
point (:func:`body_settings.frame_grid`), past the deepest dish a biconcave fracture leaves (a
third of the height on the axis at 60% of the rim's height, with a millimetre or two of blur).
A body whose cross-section closes, at nearly its full area, in every slice out to there but a
lone one here and there goes on past the point. A faint shell that does not close in a slice
still shows the body's ring round marrow (:mod:`body_outline_ring`): such a slice holds the body
too, unless it comes past a plate of bone across the body and a slice without it, or past a slice
without it and leads into a plate with no disc past it (either way the next vertebra's rim round a
narrow disc). A body that goes on past a point further than any dish, or
out to the end, is said to (:func:`lies_inside`). Where it goes on past a point for less than
that, how far it goes tells the reading of the endplate's surface how far beyond the point to look
(:mod:`endplate_surfaces`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body_cross_sections import cross_sections_by_slice
from .body_outline_ring import OutlineRing
from .body_settings import BodySegmentationSettings

FULL_AREA_SHARE = 0.7
"""A slice beyond a point holds the body when its cross-section covers at least this share of the
median cross-section between the points."""
PART_AREA_SHARE = 0.2
"""A slice beyond a point holds part of the body when its cross-section covers at least this share
of the median: the slices across a tilted endplate, whose plate cuts them, or a bolus that fills
them only in part. A disc's slices hold none."""
GAP_SLICES = 2
"""Consecutive slices beyond a point without the body's cross-section that keep it from going on
to the end of the frame grid: a disc, 2 mm or more. A single slice is passed over: a faint shell
leaves a ring open here and there (a real L2 whose upper point was marked halfway up: 2 of the 28
slices beyond it, each alone)."""

PLATE_RUN_MM = 3.0
"""A body held at least this far (mm) past a point, up to a plate of bone across it, lies beyond
the point: the plate is its endplate, and the point lies inside the body. Past a point on its
endplate the plate comes within 2 mm (its blur, a slice or two of a thick CT, a tilt); past a
dish's floor the rim's ring ends in disc, however deep the dish. Over 738 endplates of 369 sweep
phantoms with their points on them, and 138 of their first 69 rendered averaged over each
voxel, no run of the body longer than 1.98 mm ended in a plate with a disc past it, while rims
ran up to 5.4 mm."""

REACH_GAP_SLICES = 3
"""Consecutive slices beyond a point without the body's cross-section, or without part of it, that
end how far it, or part of it, goes on. Up to two in a row (1 mm on the frame grid's 0.5 mm
slices) are passed over: a faint shell leaves the ring open there (a real L2 whose upper point was
marked 7.5 mm inside its body: two slices 3.5-4.5 mm beyond the point hold a tenth of the area,
the next three all of it again; its lower point marked 7.5 mm inside: the first two slices
beyond). A 3 mm disc leaves four slices in a row without any."""


@dataclass(frozen=True)
class ReachBeyondPoint:
    """How far (mm) the body's cross-section goes on beyond one endplate point along the axis, one
    slice after another from the point but for short gaps: out to the outer face of the last slice
    that holds it (0 when none does), whether it goes on to the edge of the frame grid with no
    gap but lone slices (the point lies inside the body), and out to the outer face of the last
    of the slices that hold part of it (``part_reach_mm``, where a disc begins). ``held_mm`` goes
    out to the last slice before the first two in a row without the body (closed, or ringed
    round marrow): a disc of a millimetre or two, or an endplate's plate and a disc, end it where
    a narrow disc may leave the reach running on into the next vertebra. ``up_to_plate`` says
    whether the first of those two slices is a plate of bone across the body
    (:meth:`body_outline_ring.OutlineRing.plate`) with a disc past it: an endplate."""

    reach_mm: float
    to_the_end: bool
    part_reach_mm: float
    held_mm: float = 0.0
    up_to_plate: bool = False


def reach_beyond_points(
    hu: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    centre: tuple[int, int],
    attempts: list[tuple[float, float]],
    settings: BodySegmentationSettings,
    typical_area_px: float,
    ring: OutlineRing | None = None,
) -> tuple[ReachBeyondPoint, ReachBeyondPoint]:
    """How far the body's cross-section goes on beyond the lower and the upper endplate point.

    ``hu`` (HU, ``[z, y, x]``) is the frame grid, ``axial_mm`` each slice's position along the axis
    (mm above the lower point; the upper one at ``height_mm``), ``centre`` the axis (row, column),
    ``attempts`` the shell levels (HU) and closing radii (mm) the body's cross-sections were found
    with (:func:`body_cross_sections.cross_sections_by_slice`) and ``typical_area_px`` their median
    area (pixels). Slices are looked at outward from each point: ``REACH_GAP_SLICES`` in a row
    without ``FULL_AREA_SHARE`` of that area end the body's reach, as many without
    ``PART_AREA_SHARE`` of it the part's, and ``GAP_SLICES`` in a row without the body keep it
    from going on to the end.

    With ``ring`` (the body's usual outline, :mod:`body_outline_ring`), a slice that shows the
    body's ring at the lowest shell level around marrow holds the body too, closed or not: out to
    ``GAP_SLICES`` in a row that hold it neither way, the body's reach, and its part's, go on at
    least that far, and it goes on to the end if they never come. A real L2's faint shell left the
    ring open in three slices in a row, and closed it round less than 70% of the usual area in
    others, 1-4 mm from a lower point marked 10-12.5 mm inside the body: its reach ended there,
    and the point was kept with nothing said (Dice 0.65-0.74). A ring that comes after a plate of
    bone across the body and a slice without the body is the next vertebra's rim round a narrow
    disc, not the body's: a biconcave L3 tilted 11 degrees on 2 mm slices over a 3.4 mm disc
    showed one slice of the frame grid without the body past its lower endplate's plate, then the
    rim of the vertebra below, and went on into that vertebra to the end of the search. So is a
    ring past a slice without the body that leads into a plate with no disc past it
    (:func:`_next_vertebra_rim`).
    """
    half_slice_mm = 0.5 * abs(float(axial_mm[1] - axial_mm[0]))
    ring_level_hu = min(level for level, _ in attempts)
    reaches = []
    for point_mm, beyond in (
        (0.0, np.flatnonzero(axial_mm < 0.0)[::-1]),
        (height_mm, np.flatnonzero(axial_mm > height_mm)),
    ):
        missing, last_full, missing_part, last_part, missing_held, last_held = 0, None, 0, None, 0, None
        plate_at, after_plate = None, False
        for index, z in enumerate(beyond):
            one_slice = np.array([z])
            found = cross_sections_by_slice(hu, one_slice, axial_mm, height_mm, centre, attempts, settings)
            area = found[int(z)].sum() if int(z) in found else 0
            full = area >= FULL_AREA_SHARE * typical_area_px
            if missing < REACH_GAP_SLICES:
                missing = 0 if full else missing + 1
                last_full = z if full else last_full
            if missing_part < REACH_GAP_SLICES:
                part = area >= PART_AREA_SHARE * typical_area_px
                missing_part = 0 if part else missing_part + 1
                last_part = z if part else last_part
            if missing_held < GAP_SLICES:
                kind = None if ring is None else ring.kind(hu[z], ring_level_hu)
                held = full or (
                    kind == "ring"
                    and not (
                        missing_held
                        and (after_plate or _next_vertebra_rim(hu, beyond[index:], ring, ring_level_hu))
                    )
                )
                if not held and missing_held == 0:
                    plate_at = index if kind == "plate" else None
                after_plate = kind == "plate" or (after_plate and not held)
                missing_held = 0 if held else missing_held + 1
                last_held = z if held else last_held
            if (missing, missing_part, missing_held) == (REACH_GAP_SLICES, REACH_GAP_SLICES, GAP_SLICES):
                break
        held_mm = _distance_out_mm(axial_mm, last_held, point_mm, half_slice_mm)
        reaches.append(
            ReachBeyondPoint(
                reach_mm=max(_distance_out_mm(axial_mm, last_full, point_mm, half_slice_mm), held_mm),
                to_the_end=beyond.size > 0 and missing_held < GAP_SLICES,
                part_reach_mm=max(_distance_out_mm(axial_mm, last_part, point_mm, half_slice_mm), held_mm),
                held_mm=held_mm,
                up_to_plate=plate_at is not None
                and missing_held >= GAP_SLICES
                and _disc_past_plate(hu, beyond[plate_at + 1 :], ring, ring_level_hu),
            )
        )
    return reaches[0], reaches[1]


def _next_vertebra_rim(hu: np.ndarray, slices: np.ndarray, ring: OutlineRing, level_hu: float) -> bool:
    """Whether the rings from the first of ``slices`` (frame grid indices, outward, just past a
    slice without the body) lead into a plate of bone across the body with no disc past it: the
    next vertebra's rim round its endplate, not this body's. A biconcave T6 at 63% height on
    2 mm slices over a 3.1 mm disc, tilted 10 degrees, showed its dish's rim out to 3.8 mm past
    its lower point, one slice without the body, then a ring and the plates of the vertebra below
    out to the end of the search."""
    for index, z in enumerate(slices):
        kind = ring.kind(hu[z], level_hu)
        if kind != "ring":
            return kind == "plate" and not _disc_past_plate(hu, slices[index + 1 :], ring, level_hu)
    return False


def _disc_past_plate(hu: np.ndarray, slices: np.ndarray, ring: OutlineRing, level_hu: float) -> bool:
    """Whether ``slices`` (frame grid indices, outward from just past a plate of bone across the
    body) reach a disc past the plate: a slice that is neither a plate nor the body's ring, before
    the next ring. On thick slices a narrow disc can leave no such slice between a dish's rim and the next
    vertebra's plate (a biconcave T8 on 2 mm slices: its rim 2.5 mm past its point, then 2.5 mm of
    plates and the next body), so that plate need not be this body's endplate."""
    for z in slices:
        kind = ring.kind(hu[z], level_hu)
        if kind != "plate":
            return kind is None
    return False


def lies_inside(reach: ReachBeyondPoint, height_mm: float, settings: BodySegmentationSettings) -> bool:
    """Whether a point beyond which the body goes on as ``reach`` says lies inside the body: the
    body goes on to the end of the frame grid, or, without two slices in a row that lack it
    (``held_mm``), further than ``endplate_extension`` of the height between the points
    (``height_mm``), which no dish of a compressed endplate reaches. The rims of the deepest
    dishes among 200 sweep phantoms ring the body 0.39 of the height past a point on the dish's
    floor (a biconcave T8 at 61% height: 4.6 mm of 11.7 mm); the real L2 ran on 0.53 of it
    (8.5 mm of 15.9 mm) past a lower point moved 1.5 mm out of the marrow onto a surface read
    there, its endplate 9.7 mm further. The reach itself may pass over a narrow disc into the next
    vertebra (a T8 over 3 mm discs on 1 mm slices: 11.4 mm past a point on its endplate). A body
    held ``PLATE_RUN_MM`` or more past the point up to a plate of bone across it (``up_to_plate``)
    goes on to its endplate there, whatever the height: a T8 on 2 mm slices, its upper point
    marked at 70% of the height, went on 4.9 mm (0.37 of the height) to its plate, and was
    measured 29.6% low with only an open shell named."""
    if reach.up_to_plate and reach.held_mm >= PLATE_RUN_MM:
        return True
    return reach.to_the_end or reach.held_mm > settings.endplate_extension * height_mm


def _distance_out_mm(axial_mm: np.ndarray, last: int | None, point_mm: float, half_slice_mm: float) -> float:
    """From the point (axial mm) out to the outer face of slice ``last`` (0 for None)."""
    return 0.0 if last is None else abs(float(axial_mm[last]) - point_mm) + half_slice_mm


def inside_the_body_warning(name: str, reach_mm: float, up_to_plate: bool = False) -> str:
    """What a user is told about the ``name`` (lower or upper) endplate point beyond which the body
    goes on for at least ``reach_mm`` (mm), or, ``up_to_plate``, for ``reach_mm`` up to a plate of
    bone across it."""
    how_far = (
        f"for {reach_mm:.1f} mm beyond the {name} endplate point, up to a plate of bone across it (the "
        "endplate, it seems)"
        if up_to_plate
        else f"for {reach_mm:.1f} mm or more beyond the {name} endplate point (its cortical ring goes on "
        "slice after slice out to there)"
    )
    return (
        f"the vertebral body goes on {how_far}: the point seems to lie inside the "
        f"body, not on the {name} endplate, and the body is cut there (VBV too small, and cement in "
        "the rest of the body counted as extravertebral); mark the midpoint of the "
        f"{name} endplate on its surface against the disc"
    )
