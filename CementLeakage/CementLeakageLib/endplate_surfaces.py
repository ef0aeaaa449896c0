"""Where the CT puts the endplates' outer surfaces along the vertebral axis, near the marked
endplate points, on the frame grid (``[z, y, x]``, slices along the axis, :mod:`body_settings`).

The body's faces are calibrated onto the endplate points (:mod:`endplate_faces`), so a point
marked half a millimetre inside the body or out in the disc moves VBV by about 2%. On thin slices
the CT places the surface itself to about 0.1 mm: each column near the axis crosses the cortex's
edge level (:func:`cortex_edge.read_outer_edge`, read on the side wall) where the endplate's
cortex meets the disc. A point further than ``MOVE_TOLERANCE_MM`` from that surface is moved
onto it along the axis (the split plane, which contains the axis, stays where it is). Beyond a
point marked in the marrow the body's ring goes on, and the surface is looked for past its end.
Out in a narrow disc the search beyond a point reaches the next vertebra's endplate, and the
point's own surface is read short of it (:func:`surfaces_short_of_points`). On thicker slices
a point on its surface reads it anywhere from 2.5 mm short of the point to half a slice beyond
it: no point is moved, but one whose surface reads further beyond it than half a slice is named
(:func:`thick_slice_points_inside`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body_beyond_points import ReachBeyondPoint
from .cortex_edge import CORTEX_PEAK_MAX_HU, outermost_crossing

THIN_SLICE_MAX_MM = 1.0
"""Largest CT spacing (mm) at which the endplate surfaces are read from the CT. Between thicker
slices an endplate parallel to them can lie anywhere in the gap between two of them without
changing either: on the eight sweeps' 1.25-1.5 mm slices the reading was -2.5 to +0.5 mm from
the exact points (one endplate in twenty beyond -0.75 mm), on the seed-2026 sweep's 2 mm slices
up to 2.2 mm off; on their 0.5-1 mm slices, 278 of 300 endplates read, -0.27 to +0.26 mm
(median +0.06 mm)."""

AXIS_RADIUS_MM = 3.0
"""Columns within this distance (mm) of the axis read the surface: a dished endplate's floor
varies by a few hundredths of a millimetre over it, a tilted one evenly either side."""

SEARCH_MM = 3.0
"""How far (mm) either side of a point along the axis its endplate's surface is looked for."""

CEMENT_CLEARANCE_MM = 1.5
"""A column's crossing is read only where the cement beyond the point ends at least this far (mm)
inside it: the blur of cement against the endplate's cortex carries the crossing outward."""

RING_BEYOND_MM = 1.5
"""A body whose cross-section goes on further than this (mm) beyond a point at nearly its full
area (:mod:`body_beyond_points`) holds more than the endplate's blur there: the point may lie
inside it, and its endplate's surface is looked for out to ``PAST_PART_MM`` beyond the last of
the slices, one after another from the point, that hold part of the body (a tilted endplate cuts
its slices' cross-sections short of its surface on the axis). The disc that follows holds none;
across a narrow disc the search can still reach the next vertebra's endplate: a point moved onto
it takes the 3 mm search's reading instead, then its surface read up to it, or stays as marked
and is named (:func:`body_segmentation._segmented_on_surfaces`)."""

PAST_PART_MM = 3.0
"""How far (mm) past the last slice that holds part of the body its surface is looked for: the
endplate's plate and blur, which close no cross-section of their own (the plate of an L1 marked
7.5 mm inside the body lay 1 mm past the last, a wedged L4's tilted plate 0.9 mm on the axis, a
real L2's faint upper plate 1.9 mm past it, with its point marked 3.75 mm inside the body)."""

MOVE_TOLERANCE_MM = 0.35
"""A point is moved onto the surface the CT shows when further from it than this (mm)."""

MIN_COLUMN_SHARE = 0.5
"""Share of the columns near the axis that must cross the edge level for a reading."""


@dataclass(frozen=True)
class SurfaceOffsets:
    """Distance (mm) along the axis from each endplate point out to the endplate's outer surface
    the CT shows: positive when the surface lies beyond the point (the point is inside the body),
    negative when short of it (the point is out in the disc); None where it was not read."""

    lower_mm: float | None
    upper_mm: float | None


def _surface_offset_mm(
    hu: np.ndarray,
    axial_mm: np.ndarray,
    columns: tuple[np.ndarray, np.ndarray],
    point_mm: float,
    outward: int,
    edge_level_hu: float,
    cement_min_hu: float,
    outward_reach_mm: float = SEARCH_MM,
    inside: bool = False,
    lone_fall_from_mm: float | None = None,
) -> float | None:
    """The median over ``columns`` of the outermost crossing of ``edge_level_hu`` going ``outward``
    (+1 up, -1 down) from ``SEARCH_MM`` inside ``point_mm`` (axial mm) to ``outward_reach_mm``
    beyond it, less the point's position (mm, positive outward). Columns with cement beyond the
    point within ``CEMENT_CLEARANCE_MM`` of their crossing (a leak in the disc, or a bolus against
    the endplate when the point lies inside it: the cement's blur carries the crossing out) are
    left out. For a point in the bolus (:func:`_in_cement`) that the body goes on past
    (``inside``), so are columns that reach their crossing falling from cement without rising on
    the way (:func:`_falls_from_cement`): the bolus's own blur, however far it runs along a column
    that meets the bolus's surface obliquely. A point outside the bolus keeps such columns: under
    a dish's floor that a bolus abuts, the cortex only slows the fall (a biconcave T10, its upper
    point 2.1 mm inside the body and 0.5 mm past the bolus, at about 650 HU). With
    ``lone_fall_from_mm`` (mm along the search, negative inside the point), a column that falls
    below the edge level between there and its outermost crossing, other than from cement, is
    left out: its outermost crossing lies past a surface nearer the point, across disc (a dish's
    floor, then cement or bone in the disc)."""
    along = outward * (axial_mm - point_mm)
    slices = np.flatnonzero((along >= -SEARCH_MM) & (along <= outward_reach_mm))
    if slices.size < 3:
        return None
    if outward < 0:
        slices = slices[::-1]
    profiles = hu[slices][:, columns[0], columns[1]].astype(float).T
    outward_mm = along[slices]
    in_bolus = inside and _in_cement(profiles, outward_mm, cement_min_hu)
    crossings = []
    for profile in profiles:
        crossing = outermost_crossing(np.minimum(profile, CORTEX_PEAK_MAX_HU), edge_level_hu)
        if crossing is None:
            continue
        index = min(int(crossing), slices.size - 2)
        at_mm = outward_mm[index] + (crossing - index) * (outward_mm[index + 1] - outward_mm[index])
        cement = outward_mm[(profile >= cement_min_hu) & (outward_mm > 0.0)]
        if cement.size and cement.max() > at_mm - CEMENT_CLEARANCE_MM:
            continue
        if in_bolus and _falls_from_cement(profile[: int(crossing) + 1], cement_min_hu):
            continue
        if lone_fall_from_mm is not None and (
            _falls_before(profile, outward_mm, int(crossing), edge_level_hu, lone_fall_from_mm, cement_min_hu)
            or _bright_past_point(profile, outward_mm, int(crossing), edge_level_hu)
        ):
            continue
        crossings.append(at_mm)
    if len(crossings) < MIN_COLUMN_SHARE * profiles.shape[0]:
        return None
    return float(np.median(crossings))


def _falls_before(
    profile: np.ndarray,
    outward_mm: np.ndarray,
    last_above: int,
    level_hu: float,
    from_mm: float,
    cement_min_hu: float,
) -> bool:
    """Whether ``profile`` (HU at ``outward_mm``) falls below ``level_hu`` between ``from_mm`` and
    its sample ``last_above``, the last one at or over the level, from a run over the level that
    holds no cement (``cement_min_hu``): a bolus's blur falls too, inside the body."""
    above = profile >= level_hu
    falls = np.flatnonzero(above[:last_above] & ~above[1 : last_above + 1])
    return any(
        outward_mm[fall + 1] >= from_mm and profile[_run_start(above, fall) : fall + 1].max() < cement_min_hu
        for fall in falls
    )


def _bright_past_point(profile: np.ndarray, outward_mm: np.ndarray, last_above: int, level_hu: float) -> bool:
    """Whether the run of ``profile`` (HU at ``outward_mm``) over ``level_hu`` that ends at its
    sample ``last_above`` begins past the point (0 mm) and reaches ``CORTEX_PEAK_MAX_HU``: cement
    in the disc, or its blur, however faint the slices leave it, not an endplate."""
    start = _run_start(profile >= level_hu, last_above)
    return bool(outward_mm[start] > 0.0 and profile[start : last_above + 1].max() >= CORTEX_PEAK_MAX_HU)


def _run_start(above: np.ndarray, last: int) -> int:
    """The first sample of the run over the level (``above``, per sample) that ends at ``last``."""
    below = np.flatnonzero(~above[:last])
    return int(below[-1]) + 1 if below.size else 0


def _in_cement(profiles: np.ndarray, outward_mm: np.ndarray, cement_min_hu: float) -> bool:
    """Whether the point (0 mm on ``outward_mm``) lies in cement: the median over the columns'
    ``profiles`` (HU) of their value there reaches ``cement_min_hu``."""
    at_point = [np.interp(0.0, outward_mm, profile) for profile in profiles]
    return bool(np.median(at_point) >= cement_min_hu)


def _falls_from_cement(inner: np.ndarray, cement_min_hu: float) -> bool:
    """Whether a column's profile ``inner`` (HU, outward, up to its last sample over the edge
    level) holds cement and falls from its last cement sample to its crossing without rising: the
    crossing is then the cement's blur, with no cortex of its own beyond it. An endplate beyond
    the bolus rises again at its cortex (on the demo's L1, 384 HU to 430 HU after the bolus's
    fall); a T6 rotated 15 degrees with a point marked in its bolus at 60% of the height falls
    from the cement straight to the 338 HU edge level over 1.5-2 mm, and that crossing, 1.6 mm
    beyond the point, was read as its endplate (VBV -30.7%)."""
    cement = np.flatnonzero(inner >= cement_min_hu)
    return bool(cement.size) and bool(np.all(np.diff(inner[cement[-1] :]) <= 0.0))


def _axis_columns(
    shape: tuple[int, ...], centre: tuple[int, int], working_spacing_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (frame grid of ``shape``, ``[slice, row, column]``) within
    ``AXIS_RADIUS_MM`` of the axis at ``centre`` (its row and column)."""
    radius = AXIS_RADIUS_MM / working_spacing_mm
    reach = int(np.floor(radius))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    near = dy**2 + dx**2 <= radius**2
    rows, cols = centre[0] + dy[near], centre[1] + dx[near]
    inside = (rows >= 0) & (rows < shape[1]) & (cols >= 0) & (cols < shape[2])
    return rows[inside], cols[inside]


def endplate_surface_offsets(
    hu: np.ndarray,
    axial_mm: np.ndarray,
    centre: tuple[int, int],
    height_mm: float,
    edge_level_hu: float,
    cement_min_hu: float,
    working_spacing_mm: float,
    beyond: tuple[ReachBeyondPoint, ReachBeyondPoint] | None = None,
    lengthen: bool = True,
) -> SurfaceOffsets:
    """How far the endplates' outer surfaces lie from the points along the axis (see
    :class:`SurfaceOffsets`), read in ``hu`` (frame grid, HU) on the columns within
    ``AXIS_RADIUS_MM`` of the axis (``centre``: its row and column; ``axial_mm``: each slice's
    position along the axis, mm from the lower point; the upper point at ``height_mm``).
    ``beyond`` says how far the body's cross-section goes on beyond the lower and the upper point
    (:func:`body_beyond_points.reach_beyond_points`): beyond ``RING_BEYOND_MM`` the surface is
    looked for out to ``PAST_PART_MM`` past the slices that hold part of it (unless not to
    ``lengthen`` the search), and a point it goes on past to the end of the search keeps only a
    surface read beyond it."""
    columns = _axis_columns(hu.shape, centre, working_spacing_mm)
    lower, upper = beyond or (None, None)
    return SurfaceOffsets(
        lower_mm=_offset_beyond(
            hu, axial_mm, columns, 0.0, -1, edge_level_hu, cement_min_hu, lower, lengthen
        ),
        upper_mm=_offset_beyond(
            hu, axial_mm, columns, height_mm, 1, edge_level_hu, cement_min_hu, upper, lengthen
        ),
    )


def endplate_surface_readings(
    hu: np.ndarray,
    axial_mm: np.ndarray,
    centre: tuple[int, int],
    height_mm: float,
    edge_level_hu: float,
    cement_min_hu: float,
    working_spacing_mm: float,
    beyond: tuple[ReachBeyondPoint, ReachBeyondPoint],
) -> list[SurfaceOffsets]:
    """The offsets (:func:`endplate_surface_offsets`, same arguments) each point tries in turn:
    read with the search lengthened where the body goes on past a point, then, where it was
    lengthened for either point, with the 3 mm search (a lengthened search can reach the next
    vertebra across a narrow disc; :func:`body_segmentation._segmented_on_surfaces`), and last
    the surfaces read up to the points (:func:`surfaces_short_of_points`). A point out in a narrow
    disc reads the next vertebra's endplate beyond it, or nothing where the search ends in that
    endplate, and its own surface only short of it."""
    arguments = (hu, axial_mm, centre, height_mm, edge_level_hu, cement_min_hu, working_spacing_mm)
    readings = [endplate_surface_offsets(*arguments, beyond=beyond)]
    if any(_lengthens(reach) for reach in beyond):
        readings.append(endplate_surface_offsets(*arguments, beyond=beyond, lengthen=False))
    short_of = surfaces_short_of_points(*arguments, beyond)

    def last(short_mm: float | None, earlier: list[float | None], reach: ReachBeyondPoint) -> float | None:
        # With nothing read beyond it, only a point the body goes no further past than
        # RING_BEYOND_MM takes a surface short of it: further in, the marrow can cross there.
        read = any(offset is not None for offset in earlier)
        return short_mm if read or not _lengthens(reach) else None

    readings.append(
        SurfaceOffsets(
            lower_mm=last(short_of.lower_mm, [reading.lower_mm for reading in readings], beyond[0]),
            upper_mm=last(short_of.upper_mm, [reading.upper_mm for reading in readings], beyond[1]),
        )
    )
    return readings


def surfaces_short_of_points(
    hu: np.ndarray,
    axial_mm: np.ndarray,
    centre: tuple[int, int],
    height_mm: float,
    edge_level_hu: float,
    cement_min_hu: float,
    working_spacing_mm: float,
    beyond: tuple[ReachBeyondPoint, ReachBeyondPoint],
) -> SurfaceOffsets:
    """The surfaces read up to the points and no further (same arguments as
    :func:`endplate_surface_offsets`), for points whose surface read beyond them proved to be the
    next vertebra's, or for which none was read there: out in a narrow disc, the next endplate
    lies within the 3 mm search beyond a point and its far side is the outermost crossing (a T8
    over 3 mm discs, its points 2.7 mm and 1.1 mm out in them: read 1.5 mm and 2.5 mm beyond
    them), or the search ends inside that endplate and reads nothing, while the point's own
    surface lies short of it. The search ends at the point, or ``MOVE_TOLERANCE_MM`` past it for a point on
    its surface (a point kept where it is). A point the body goes on past to the end of the
    search lies inside it, where the marrow can cross the edge level short of the point: none is
    read there."""
    columns = _axis_columns(hu.shape, centre, working_spacing_mm)

    def short_of(point_mm: float, outward: int, beyond_point: ReachBeyondPoint) -> float | None:
        if beyond_point.to_the_end:
            return None
        # A point on its surface: the crossing lies at the window's end, and is read just past it.
        for outward_reach_mm in (0.0, MOVE_TOLERANCE_MM):
            offset = _surface_offset_mm(
                hu, axial_mm, columns, point_mm, outward, edge_level_hu, cement_min_hu, outward_reach_mm
            )
            if offset is not None and offset <= MOVE_TOLERANCE_MM:
                return offset
        return None

    return SurfaceOffsets(lower_mm=short_of(0.0, -1, beyond[0]), upper_mm=short_of(height_mm, 1, beyond[1]))


def _lengthens(reach: ReachBeyondPoint | None) -> bool:
    """Whether the body goes on far enough beyond a point (``reach``; None: not known) for its
    surface to be looked for past the 3 mm search (``RING_BEYOND_MM``)."""
    return reach is not None and reach.reach_mm > RING_BEYOND_MM


def _offset_beyond(
    hu: np.ndarray,
    axial_mm: np.ndarray,
    columns: tuple[np.ndarray, np.ndarray],
    point_mm: float,
    outward: int,
    edge_level_hu: float,
    cement_min_hu: float,
    reach: ReachBeyondPoint | None,
    lengthen: bool = True,
) -> float | None:
    """One point's offset (:func:`_surface_offset_mm`), looked for out to ``PAST_PART_MM`` past
    the slices that hold part of the body where it goes on beyond the point for more than
    ``RING_BEYOND_MM`` (``reach``; None: not known), if it may ``lengthen`` the search. A point
    the body goes on past to the end of the search lies inside it: only a surface beyond it can
    be its endplate's (the marrow of a real L2 crossed the edge level 1.7 mm short of a point
    marked halfway up, which moved it further in)."""
    outward_reach_mm = SEARCH_MM
    if lengthen and _lengthens(reach):
        outward_reach_mm = max(SEARCH_MM, reach.part_reach_mm + PAST_PART_MM)
    offset = _surface_offset_mm(
        hu,
        axial_mm,
        columns,
        point_mm,
        outward,
        edge_level_hu,
        cement_min_hu,
        outward_reach_mm,
        inside=_lengthens(reach),
    )
    if reach is not None and reach.to_the_end and (offset is None or offset <= 0.0):
        return None
    return offset


def reads_surfaces(ct_spacing_mm: np.ndarray) -> bool:
    """Whether a CT with voxel spacing ``ct_spacing_mm`` (mm) is thin enough for the endplate
    surfaces to be read from it (``THIN_SLICE_MAX_MM``)."""
    return float(np.max(ct_spacing_mm)) <= THIN_SLICE_MAX_MM + 1e-6


THICK_SLICE_READ_SHARE = 0.5
"""On slices over ``THIN_SLICE_MAX_MM`` the surface read near a point on its endplate lies up to
this share of the slice spacing beyond it: where the endplate falls between two slices decides
where their profile crosses the edge level. A reading further beyond the point than that says
the point lies inside the body (:func:`thick_slice_points_inside`). Over the 964 endplates read
of the 641 thick-slice phantoms of the sweeps with their points on them (1.25-2 mm slices;
point-sampled, slice-averaged, moved by part of a voxel, noisier), the search read at most
0.42 mm beyond on 1.25 mm slices, 0.51 mm on 1.5 mm and 0.92 mm on 2 mm (0.46 of a slice); a
point marked 1 mm inside read 1.0-1.7 mm beyond it. A point 3 mm or more inside reads nothing
within the 3 mm search, which is lengthened past a run of the body (``HELD_RUN_READ_MM``)."""


HELD_RUN_READ_MM = 1.0
"""On thick slices a body held at least this far (mm) past a point
(:attr:`body_beyond_points.ReachBeyondPoint.held_mm`) may run on to its endplate there: the
surface is looked for out to ``PAST_PART_MM`` past that run (:func:`thick_slice_surface_offsets`).
A point 3-5 mm inside the body, whose surface lies past the 3 mm search, is held 1.5-3.5 mm past
it: up to a plate of bone across the body, or, on a wedged L4 tilted 15 degrees, whose sloping
plate cuts the slices past the point, up to none. Past a point on a dish's floor the dish's rim
holds the body too (up to 6.0 mm over the sweeps): of the 390 endplates of the 641 thick-slice
sweep phantoms with their points on them held so far, 279 were read, -1.8 to +0.92 mm from the
point, with columns that cross disc left out (``LONE_FALL_MM``, and cement in the disc)."""


LONE_FALL_MM = 1.0
"""On thick slices the search lengthened past a run of the body (``HELD_RUN_READ_MM``) reads a
column only where its profile falls below the edge level nowhere from this far (mm) inside the
point to its outermost crossing, but from cement: past a point inside the body, marrow (or a
bolus's blur) rises into the endplate's cortex and falls once, at its surface. Past a point on a
dish's floor, whose rim holds the body on, the profile falls at the floor, within the reading's
spread of the point (-1.8 to +0.92 mm over the sweeps), then rises again at
bone or cement in the disc, or the next vertebra. Where a bolus abuts the floor, its fall is the
cement's too: a biconcave T8 on 2 mm slices (seed 2036 #29) read 4.7 mm beyond its lower point,
the far side of a leak in the disc that the slices hold at 1054 HU, under the cement threshold;
an outermost run brighter than cortex (``cortex_edge.CORTEX_PEAK_MAX_HU``) that begins past the
point leaves its column out."""


def thick_slice_surface_offsets(
    hu: np.ndarray,
    axial_mm: np.ndarray,
    centre: tuple[int, int],
    height_mm: float,
    edge_level_hu: float,
    cement_min_hu: float,
    working_spacing_mm: float,
    beyond: tuple[ReachBeyondPoint, ReachBeyondPoint],
) -> SurfaceOffsets:
    """The offsets (:class:`SurfaceOffsets`) read on a thick-slice CT's frame grid (arguments as
    :func:`endplate_surface_offsets`): with the 3 mm search, lengthened out to ``PAST_PART_MM``
    past the body's run past the point where that run is ``HELD_RUN_READ_MM`` or longer
    (``beyond``). The lengthened search leaves out a column that falls below the edge level
    before its outermost crossing (``LONE_FALL_MM``) or whose outermost run over it begins past
    the point and is brighter than cortex: the crossing lies across disc."""
    columns = _axis_columns(hu.shape, centre, working_spacing_mm)

    def offset(point_mm: float, outward: int, reach: ReachBeyondPoint) -> float | None:
        runs_on = reach.held_mm >= HELD_RUN_READ_MM
        outward_reach_mm = max(SEARCH_MM, reach.held_mm + PAST_PART_MM) if runs_on else SEARCH_MM
        return _surface_offset_mm(
            hu,
            axial_mm,
            columns,
            point_mm,
            outward,
            edge_level_hu,
            cement_min_hu,
            outward_reach_mm,
            inside=runs_on or _lengthens(reach),
            lone_fall_from_mm=-LONE_FALL_MM if runs_on else None,
        )

    return SurfaceOffsets(lower_mm=offset(0.0, -1, beyond[0]), upper_mm=offset(height_mm, 1, beyond[1]))


def thick_slice_points_inside(offsets: SurfaceOffsets, slice_mm: float) -> dict[str, float]:
    """The points whose surface, read on slices ``slice_mm`` (mm) thick (``offsets``,
    :func:`thick_slice_surface_offsets`), lies further beyond them
    than ``THICK_SLICE_READ_SHARE`` of a slice: by name (``"lower"``, ``"upper"``), the distance
    (mm) read."""
    limit_mm = THICK_SLICE_READ_SHARE * slice_mm
    read = {"lower": offsets.lower_mm, "upper": offsets.upper_mm}
    return {name: offset for name, offset in read.items() if offset is not None and offset > limit_mm}


def thick_slice_points_in_cement(
    offsets: SurfaceOffsets,
    hu: np.ndarray,
    axial_mm: np.ndarray,
    centre: tuple[int, int],
    height_mm: float,
    cement_min_hu: float,
    working_spacing_mm: float,
    beyond: tuple[ReachBeyondPoint, ReachBeyondPoint],
) -> dict[str, float]:
    """The points of a thick-slice CT (arguments as :func:`thick_slice_surface_offsets`, with its
    ``offsets``; no edge level) whose surface is not read, that lie in cement near the axis, and
    past which the body is held at least ``HELD_RUN_READ_MM``: by name (``"lower"``,
    ``"upper"``), how far (mm) it is held past them. The bolus's blur hides the endplate past it
    (``CEMENT_CLEARANCE_MM``)."""
    columns = _axis_columns(hu.shape, centre, working_spacing_mm)
    found = {}
    for name, point_mm, reach, offset in (
        ("lower", 0.0, beyond[0], offsets.lower_mm),
        ("upper", height_mm, beyond[1], offsets.upper_mm),
    ):
        if offset is not None or reach.held_mm < HELD_RUN_READ_MM:
            continue
        near = np.flatnonzero(np.abs(axial_mm - point_mm) <= SEARCH_MM)
        profiles = hu[near][:, columns[0], columns[1]].astype(float).T
        if _in_cement(profiles, axial_mm[near] - point_mm, cement_min_hu):
            found[name] = reach.held_mm
    return found


def in_cement_warning(name: str, held_mm: float, slice_mm: float) -> str:
    """What a user is told about the ``name`` (lower or upper) endplate point that lies in cement
    on slices ``slice_mm`` (mm) thick, the body held ``held_mm`` (mm) past it. How much VBV is lost
    is not told: the faces of the shell's enclosure can reach past a point in the bolus (a T6 on
    2 mm slices, its upper point 3 mm inside, 14.5 mm from the other, read VBV -8.1%, not the 17%
    those millimetres hold)."""
    return (
        f"the {name} endplate point sits in the cement, and the vertebral body goes on at least "
        f"{held_mm:.1f} mm beyond it along the vertebral axis; on these {slice_mm:.1f} mm slices the "
        "cement's blur hides the endplate's surface: the point may lie inside the body, which is cut "
        "there (VBV too small); check the point on a sagittal view and mark it on the endplate's "
        "surface against the disc"
    )


def thick_slice_inside_warning(name: str, offset_mm: float, slice_mm: float, height_mm: float) -> str:
    """What a user is told about the ``name`` (lower or upper) endplate point whose surface reads
    ``offset_mm`` (mm) beyond it on slices ``slice_mm`` (mm) thick, between points ``height_mm``
    (mm) apart: the point may lie inside the body, which is cut there, and VBV then reads low by up
    to the share of the height that offset is."""
    bound_mm = THICK_SLICE_READ_SHARE * slice_mm
    shortfall_pct = 100.0 * offset_mm / height_mm
    return (
        f"the {name} endplate's surface reads {offset_mm:.1f} mm beyond the {name} endplate point along "
        f"the vertebral axis, where on these {slice_mm:.1f} mm slices a point on it reads up to "
        f"{bound_mm:.1f} mm beyond: the point may lie inside the body, which is cut there (VBV too "
        f"small by up to {shortfall_pct:.0f}%); check the point on a sagittal view and mark it on the "
        "endplate's surface against the disc, or measure on slices up to 1 mm, where the surface is read"
    )


def _moves(offset_mm: float | None) -> bool:
    """Whether a point ``offset_mm`` from its surface (:class:`SurfaceOffsets`) is moved onto it."""
    return offset_mm is not None and abs(offset_mm) > MOVE_TOLERANCE_MM


def moved_points(offsets: SurfaceOffsets) -> tuple[bool, bool]:
    """Whether :func:`points_on_surfaces` moves the lower and the upper point."""
    return _moves(offsets.lower_mm), _moves(offsets.upper_mm)


def kept_as_marked_warning(name: str, rejected_mm: list[float], inside_body: bool = False) -> str:
    """The warning for the ``name`` endplate point kept as marked after each surface read for it
    (``rejected_mm``, offsets as in :class:`SurfaceOffsets`) proved wrong: the body went on past
    the point moved there. A surface read beyond a point out in a disc is the next vertebra's;
    beyond a point that a body goes on past (``inside_body``), it lies inside that body: this one
    (a point in its marrow) or the next (a point on the far side of a narrow disc)."""

    def listed(offsets: list[float]) -> str:
        return " and ".join(dict.fromkeys(f"{abs(offset):.1f} mm" for offset in offsets))

    beyond = [offset for offset in rejected_mm if offset > 0.0]
    short = [offset for offset in rejected_mm if offset < 0.0]
    reasons = []
    if beyond:
        owner = (
            "lies inside a vertebral body, this one or the next"
            if inside_body
            else "belongs to the next vertebra"
        )
        reasons.append(f"the surface read {listed(beyond)} beyond it {owner}")
    if short:
        reasons.append(f"the surface read {listed(short)} short of it lies inside this body")
    else:
        reasons.append("none was read short of it")
    return (
        f"the {name} endplate point was kept where it was marked: {', and '.join(reasons)} (this body "
        "went on past the point moved there); mark the point on this vertebra's endplate surface, "
        "against the disc"
    )


def points_on_surfaces(
    upper_ras: np.ndarray, lower_ras: np.ndarray, offsets: SurfaceOffsets
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The endplate points (RAS mm) moved along the axis onto the surfaces where they lie
    further than ``MOVE_TOLERANCE_MM`` from them, with a warning for each point moved."""
    upper, lower = np.asarray(upper_ras, float), np.asarray(lower_ras, float)
    axis = (upper - lower) / np.linalg.norm(upper - lower)
    warnings = []
    moved = {"upper": upper, "lower": lower}
    for name, offset, outward in (("upper", offsets.upper_mm, 1.0), ("lower", offsets.lower_mm, -1.0)):
        if not _moves(offset):
            continue
        moved[name] = moved[name] + outward * offset * axis
        where = "inside the body" if offset > 0 else "out in the disc"
        warnings.append(
            f"the {name} endplate point lies {abs(offset):.1f} mm {where} along the vertebral axis: "
            f"the body's {name} face was placed on the endplate's surface the CT shows; mark the point "
            "on the endplate's surface against the disc"
        )
    return moved["upper"], moved["lower"], warnings
