"""Where the CT puts the endplates' outer surfaces along the vertebral axis, near the marked
endplate points, on the frame grid (``[z, y, x]``, slices along the axis, :mod:`body_settings`).

The body's faces are calibrated onto the endplate points (:mod:`endplate_faces`), so a point
marked half a millimetre inside the body or out in the disc moves VBV by about 2%. On thin slices
the CT places the surface itself to about 0.1 mm: each column near the axis crosses the cortex's
edge level (:func:`cortex_edge.outer_edge_level`, read on the side wall) where the endplate's
cortex meets the disc. A point further than ``MOVE_TOLERANCE_MM`` from that surface is moved
onto it along the axis (the split plane, which contains the axis, stays where it is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
) -> float | None:
    """The median over ``columns`` of the outermost crossing of ``edge_level_hu`` within
    ``SEARCH_MM`` of ``point_mm`` (axial mm) going ``outward`` (+1 up, -1 down), less the point's
    position (mm, positive outward). Columns with cement beyond the point (a leak in the disc, or
    a bolus against the endplate when the point lies inside it) are left out."""
    slices = np.flatnonzero(np.abs(axial_mm - point_mm) <= SEARCH_MM)
    if slices.size < 3:
        return None
    if outward < 0:
        slices = slices[::-1]
    positions = axial_mm[slices]
    profiles = hu[slices][:, columns[0], columns[1]].astype(float).T
    beyond = outward * (positions - point_mm) > 0.0
    clear = ~(profiles[:, beyond] >= cement_min_hu).any(axis=1)
    crossings = []
    for profile in profiles[clear]:
        crossing = outermost_crossing(np.minimum(profile, CORTEX_PEAK_MAX_HU), edge_level_hu)
        if crossing is None:
            continue
        index = min(int(crossing), slices.size - 2)
        crossings.append(positions[index] + (crossing - index) * (positions[index + 1] - positions[index]))
    if len(crossings) < MIN_COLUMN_SHARE * profiles.shape[0]:
        return None
    return outward * (float(np.median(crossings)) - point_mm)


def endplate_surface_offsets(
    hu: np.ndarray,
    axial_mm: np.ndarray,
    centre: tuple[int, int],
    height_mm: float,
    edge_level_hu: float,
    cement_min_hu: float,
    working_spacing_mm: float,
) -> SurfaceOffsets:
    """How far the endplates' outer surfaces lie from the points along the axis (see
    :class:`SurfaceOffsets`), read in ``hu`` (frame grid, HU) on the columns within
    ``AXIS_RADIUS_MM`` of the axis (``centre``: its row and column; ``axial_mm``: each slice's
    position along the axis, mm from the lower point; the upper point at ``height_mm``)."""
    radius = AXIS_RADIUS_MM / working_spacing_mm
    reach = int(np.floor(radius))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    near = dy**2 + dx**2 <= radius**2
    rows, cols = centre[0] + dy[near], centre[1] + dx[near]
    inside = (rows >= 0) & (rows < hu.shape[1]) & (cols >= 0) & (cols < hu.shape[2])
    columns = (rows[inside], cols[inside])
    return SurfaceOffsets(
        lower_mm=_surface_offset_mm(hu, axial_mm, columns, 0.0, -1, edge_level_hu, cement_min_hu),
        upper_mm=_surface_offset_mm(hu, axial_mm, columns, height_mm, 1, edge_level_hu, cement_min_hu),
    )


def reads_surfaces(ct_spacing_mm: np.ndarray) -> bool:
    """Whether a CT with voxel spacing ``ct_spacing_mm`` (mm) is thin enough for the endplate
    surfaces to be read from it (``THIN_SLICE_MAX_MM``)."""
    return float(np.max(ct_spacing_mm)) <= THIN_SLICE_MAX_MM + 1e-6


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
        if offset is None or abs(offset) <= MOVE_TOLERANCE_MM:
            continue
        moved[name] = moved[name] + outward * offset * axis
        where = "inside the body" if offset > 0 else "out in the disc"
        warnings.append(
            f"the {name} endplate point lies {abs(offset):.1f} mm {where} along the vertebral axis: "
            f"the body's {name} face was placed on the endplate's surface the CT shows; mark the point "
            "on the endplate's surface against the disc"
        )
    return moved["upper"], moved["lower"], warnings
