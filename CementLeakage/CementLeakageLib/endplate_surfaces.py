"""Where the CT puts the endplates' outer surfaces along the vertebral axis, near the marked
endplate points, on the frame grid (``[z, y, x]``, slices along the axis, :mod:`body_settings`).

The body's faces are calibrated onto the endplate points (:mod:`endplate_faces`), so a point
marked half a millimetre inside the body or out in the disc moves VBV by about 2%. On thin slices
the CT places the surface itself to about 0.1 mm: each column near the axis crosses the cortex's
edge level (:func:`cortex_edge.outer_edge_level`, read on the side wall) where the endplate's
cortex meets the disc. A point further than ``MOVE_TOLERANCE_MM`` from that surface is moved
onto it along the axis (the split plane, which contains the axis, stays where it is). Beyond a
point marked in the marrow the body's ring goes on, and the surface is looked for past its end.
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
it takes the 3 mm search's reading instead, or stays as marked
(:func:`body_segmentation._segmented_on_surfaces`)."""

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
) -> float | None:
    """The median over ``columns`` of the outermost crossing of ``edge_level_hu`` going ``outward``
    (+1 up, -1 down) from ``SEARCH_MM`` inside ``point_mm`` (axial mm) to ``outward_reach_mm``
    beyond it, less the point's position (mm, positive outward). Columns with cement beyond the
    point within ``CEMENT_CLEARANCE_MM`` of their crossing (a leak in the disc, or a bolus against
    the endplate when the point lies inside it: the cement's blur carries the crossing out) are
    left out."""
    along = outward * (axial_mm - point_mm)
    slices = np.flatnonzero((along >= -SEARCH_MM) & (along <= outward_reach_mm))
    if slices.size < 3:
        return None
    if outward < 0:
        slices = slices[::-1]
    profiles = hu[slices][:, columns[0], columns[1]].astype(float).T
    outward_mm = along[slices]
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
        crossings.append(at_mm)
    if len(crossings) < MIN_COLUMN_SHARE * profiles.shape[0]:
        return None
    return float(np.median(crossings))


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
    radius = AXIS_RADIUS_MM / working_spacing_mm
    reach = int(np.floor(radius))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    near = dy**2 + dx**2 <= radius**2
    rows, cols = centre[0] + dy[near], centre[1] + dx[near]
    inside = (rows >= 0) & (rows < hu.shape[1]) & (cols >= 0) & (cols < hu.shape[2])
    columns = (rows[inside], cols[inside])
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
    vertebra across a narrow disc; :func:`body_segmentation._segmented_on_surfaces`)."""
    arguments = (hu, axial_mm, centre, height_mm, edge_level_hu, cement_min_hu, working_spacing_mm)
    readings = [endplate_surface_offsets(*arguments, beyond=beyond)]
    if any(_lengthens(reach) for reach in beyond):
        readings.append(endplate_surface_offsets(*arguments, beyond=beyond, lengthen=False))
    return readings


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
        hu, axial_mm, columns, point_mm, outward, edge_level_hu, cement_min_hu, outward_reach_mm
    )
    if reach is not None and reach.to_the_end and (offset is None or offset <= 0.0):
        return None
    return offset


def reads_surfaces(ct_spacing_mm: np.ndarray) -> bool:
    """Whether a CT with voxel spacing ``ct_spacing_mm`` (mm) is thin enough for the endplate
    surfaces to be read from it (``THIN_SLICE_MAX_MM``)."""
    return float(np.max(ct_spacing_mm)) <= THIN_SLICE_MAX_MM + 1e-6


def _moves(offset_mm: float | None) -> bool:
    """Whether a point ``offset_mm`` from its surface (:class:`SurfaceOffsets`) is moved onto it."""
    return offset_mm is not None and abs(offset_mm) > MOVE_TOLERANCE_MM


def moves_outward(offsets: SurfaceOffsets) -> tuple[bool, bool]:
    """Whether :func:`points_on_surfaces` moves the lower and the upper point outward, out of the
    body towards the disc (a point found inside the body)."""
    return tuple(_moves(offset) and offset > 0.0 for offset in (offsets.lower_mm, offsets.upper_mm))


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
