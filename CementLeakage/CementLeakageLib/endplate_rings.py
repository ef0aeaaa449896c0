"""A dished endplate on thick slices, its depth read from the ring its rim draws in the CT's
slices beyond the endplate point.

The point is marked on the dish's floor, on the axis. A CT slice beyond it (in the disc there)
that still cuts the dish shows the disc as a pocket around the axis, closed all round by the
ring of bone where the dish's surface crosses the slice; one beyond the rim shows the disc
across the whole outline. Within a slice the ring is sampled at the pixels' resolution, not the
slices'. The dish is modelled as a paraboloid over the body's outline, ``depth * rho**2``
beyond the point at normalised radius ``rho`` (0 on the axis, 1 on the outline's ellipse of
inertia); the pocket is where the slice lies beyond that surface, so its area gives the depth,
column by column where the slice is tilted against the axis. Where the first slice beyond a
point is open, the face lies within that slice gap: a rim that reaches into the slice's
sensitivity still shows its cortex there in partial volume (below); one that ends short of it
cannot be placed better than the point, and the face is taken through the point with the tilt
the shell gave it (a wedged face keeps its slope). A slice within a blur's reach of the point
shows the endplate's cortex over the axis and is passed over. A first slice beyond the point
whose pocket runs to the side wall, across a face whose tilt spans a slice or more over the
outline, cuts a face tilted against the slices: where that pocket's area, the tilt taken out,
reads no dish (``TILTED_FLAT_DEPTH_MM``), the face is taken through the point with its tilt, as
where that slice is open (a wedged T5 with a faint cortex on 2 mm slices, its upper face sloping
10.5 degrees: its terraces, each up to half a slice beyond the face, held VBV +5.4%; through the
point +1.7%). A slice with cement in it (a leak into the disc), any other pocket that reaches the
side wall or a ring that does not surround the axis leaves the face as the shell has it.

A slice averaged over its thickness that holds the point's plane (its centre less than half a
slice beyond it) does not end its pocket at its centre: a column there holds the cortex from
where the slice starts up to its surface, and the pocket ends where that much cortex brings its
HU up to the cortex's edge level, nearer the point (:func:`averaged_edge_shift_mm`). The rise per
mm of cortex is fitted over the pocket's columns; a slice sampled at its centre shows none there
beyond the blur's tail and keeps its edge at the centre (a T6 at 85% height on averaged 2 mm
slices, its ring 0.39 mm beyond the upper point: 1.96 mm read at the centre, 1.28 mm at the
edge, against 1.31 mm; VBV +4.4% -> +1.7%).

The shell's own dishes, fitted to the contours where the slices cut them
(:mod:`endplate_contours`), come first. A face that fit leaves takes the dish its rings show. One
it fitted keeps its fit unless its rings show a shallower dish: on 2 mm slices both tend to read
deep, the rings by 4-30% where the slices are sampled at their centres and up to 50% where they
are averaged over their thickness, the fit by up to half on averaged slices (its contours lie
beyond the surface by more than the in-plane offset it takes off), and the shallower is nearer.
An open first slice does not count against a fit.

A first slice beyond the point that lies open is read once more, for the part of the dish it
holds in partial volume. A slice whose sensitivity spans ``T`` along its normal (the CT's
box-shaped slice profile: its spacing unless the CT states a thinner SliceThickness,
:attr:`CtPlanes.profile_share`) and starts ``s`` mm beyond the face's plane holds, in a column
whose surface lies ``h`` beyond that plane, ``h - s`` mm of the endplate's cortex, and its HU rises
over the disc's in proportion: by ``k (depth * rho**2 - s)`` where ``rho**2`` exceeds
``s / depth`` (as long as that stays within the cortex), not at all nearer the axis. The depth is
where that hinge, fitted by least squares to the slice's columns short of the cortex's edge
level, bends; ``k`` (HU per mm of cortex) falls out of the fit, so neither the cortex's
intensity nor its thickness need be known, only the disc's HU, read over the axis. A slice whose
profile the rim does not reach holds no such rise beyond what the blur along the axis carries
into it, and the face stays flat there (a T12 at 90% height on 2 mm slices averaged over their
thickness: its 1.15 mm dishes read 1.17 and 1.19 mm, VBV -4.9% -> +0.3%; a faint T6 at 90%
height on 2 mm slices 1 mm thick, the phantom's point-sampled profile: its lower 0.84 mm dish,
whose rim reaches 0.43 mm into the first slice beyond, reads 0.86 mm, where taken as averaged
over the whole 2 mm it read none, VBV -5.5% -> -3.2%).

The frame grid, resampled from the CT by linear interpolation between slices, cannot do this:
on 2 mm slices its iso-surfaces put the face of a column where the interpolation between the
two nearest slices crosses the level, which depends on how bright each is. A dish's floor
caught in one slice pushes the face at the axis out further than its rim's, and the faces
moved onto the points then cut into the rim (biconcave T6-L3 at 75-95% height on 2 mm slices
sampled at the voxel centres: VBV -8.2% to +9.0% and 9 of 20 within every target; read from
their rings, -4.6% to +2.4% and 17 of 20; averaged over their thickness, where the contour fit
alone made dishes too deep, 12 of 20 up to +6.6%, with the shallower reading 14 of 20 within
-4.9% to +4.4%, `benchmarks/results/biconcave_grid.md`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from . import slicewise
from .endplate_contours import CtSlicePositions
from .endplate_faces import (
    FACE_FIT_INSET_MM,
    FaceFill,
    body_from_face_positions,
    face_positions,
    robust_quadratic,
)
from .geometry import VolumeGeometry
from .measurement import voxels_across

RING_REACH_MM = 3.0
"""How far beyond an endplate point (mm, on the axis) the CT's slices are looked at."""
RING_SLICES_MAX = 3
"""Most CT slices beyond a point whose rings are read."""
TILTED_FLAT_DEPTH_MM = 0.5
"""A face whose own tilt spans at least a slice's thickness over the outline, and whose first
slice beyond the point holds a pocket that runs to the side wall (no ring), is flat when that
pocket's area, with the tilt taken out (:func:`_depth_for_pocket`), reads a dish no deeper than
this (mm): a wedged face cut by the slice, not a dish (a wedged T5 on 2 mm slices: 0.00 mm). A
deeper reading (biconcave bodies tilted against 2 mm slices: 1.5-2.1 mm) leaves the face as the
shell has it: their pockets, which the outline cuts, read a different depth with each tilt."""
OPEN_SHARE = 0.9
"""A slice whose disc pocket covers this share of the outline is beyond the rim (open)."""
AXIS_BLUR_MM = 0.5
"""A slice nearer than this (mm) beyond the point shows the endplate's blurred cortex over the
axis: the next slice is read instead (a T8 at 75% height on 2 mm slices, its lower point 0.05 mm
short of a slice: 381 HU over the axis there, its cortex's edge at 342 HU)."""
RING_SECTORS = 12
RING_SECTORS_NEEDED = 9
"""A ring must surround the axis: pixels in this many of ``RING_SECTORS`` sectors around it."""
RING_MIN_PIXELS = 20
"""Fewest pixels of a ring that is read."""
POCKET_AT_WALL_SHARE = 0.005
"""Most of the pocket that may lie within ``WALL_BAND_MM`` of the outline: a pocket that
reaches the side wall is not closed by a ring."""
WALL_BAND_MM = 0.5
"""Width (mm) of the band along the outline that a pocket closed by a ring does not reach. A deep
dish's ring on a slice near its rim runs within a millimetre or two of the wall (a T8 at 75%
height, 2.4 mm dishes, on 2 mm slices: 5% of its pocket lies within 1.5 mm of the outline)."""
PARTIAL_AXIS_RADIUS_SQ = 0.15
"""Columns within this squared normalised radius of the axis give the disc's HU in an open slice."""
PARTIAL_MIN_COLUMNS = 30
"""Fewest columns the cortex's partial volume must reach for the dish's depth to be read from it."""
PARTIAL_MIN_RISE_HU = 40.0
"""Least rise over the disc (HU) the fitted partial volume must reach at the rim to be read, and
over the axis for a ring's pocket to end nearer than its slice's centre
(:func:`averaged_edge_shift_mm`)."""
PARTIAL_MIN_HU_PER_MM = 50.0
"""Least rise (HU per mm of cortex within the slice) for a partial volume to be read: a cortex
100 HU over the disc across a 2 mm slice."""
FARTHER_DISC_RADIUS_SQ = 0.3
"""Columns within this squared normalised radius of the axis give the disc's HU in the slice
beyond a ring's (:func:`averaged_edge_shift_mm`)."""
PARTIAL_DEPTH_STEP_MM = 0.01
"""Step (mm) of the depths tried for the partial volume's hinge."""
DEPTH_MAX_MM = 15.0
"""Deepest dish (mm) the bisection looks for."""
DEPTH_BISECTIONS = 30
"""Halvings of the depth's interval: far below a micrometre."""
RING_INSET_MM = 1.5
"""Ring pixels within this distance (mm) of the outline are left out: there the faces round off
into the side wall."""
RADIUS_SQ_MIN = 0.1
"""Ring pixels nearer the axis than this squared normalised radius do not count: a pocket that
small (a dish far deeper than the slice lies beyond the point) is a few pixels across, too few
for its area, to which the depth is inversely proportional, to be read."""


@dataclass(frozen=True)
class CtPlanes:
    """The CT's own slices (``array_hu`` on ``ct_grid``, a sub-grid of the CT), sampled on the
    columns of the frame grid (``frame_grid``; ``slices`` says where they cross them).
    ``profile_share`` is the width of each slice's sensitivity as a share of the slice spacing
    (:meth:`~.ct_volume.CtVolume.slice_profile_share`): 1 for slices averaged over their
    spacing, less for thinner slices spaced apart."""

    array_hu: np.ndarray
    ct_grid: VolumeGeometry
    frame_grid: VolumeGeometry
    slices: CtSlicePositions
    profile_share: float = 1.0

    def crossings(self, k: int) -> np.ndarray:
        """Where CT slice ``k`` crosses each column of the frame grid (frame slice positions,
        ``[y, x]``)."""
        return (k - self.slices.start) / self.slices.per_slice

    def thickness_along_columns(self, spacing_mm: float) -> np.ndarray:
        """How far (mm) along each column of the frame grid (``spacing_mm`` along the axis) one
        CT slice's sensitivity reaches (``[y, x]``): its width (``profile_share`` of the slice
        spacing), longer where the slice is tilted against the axis."""
        return self.profile_share * spacing_mm / np.abs(self.slices.per_slice)

    def on_columns(self, k: int) -> np.ndarray:
        """CT slice ``k`` (HU) where it crosses each column of the frame grid, interpolated
        within the slice (``[y, x]``; NaN outside the CT)."""
        rows, cols = np.indices(self.slices.start.shape)
        frame_ijk = np.stack([cols.ravel(), rows.ravel(), self.crossings(k).ravel()], axis=1)
        ijk = self.ct_grid.ras_to_ijk_points(self.frame_grid.ijk_to_ras_points(frame_ijk))
        # The points lie on slice k: interpolated within it only.
        values = ndimage.map_coordinates(
            self.array_hu[k].astype(np.float32), ijk[:, [1, 0]].T, order=1, mode="constant", cval=np.nan
        )
        return values.reshape(rows.shape)


def normalised_radius_sq(outline: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    """Squared normalised radius (``[y, x]``) from ``centre`` (the axis: row, column) over the
    ellipse of inertia of ``outline`` (bool ``[y, x]``): 1 on an elliptic outline's boundary."""
    rows, cols = np.nonzero(outline)
    inverse = np.linalg.inv(4.0 * np.cov(np.stack([rows, cols]).astype(float)))
    all_rows, all_cols = np.indices(outline.shape)
    dr, dc = all_rows - centre[0], all_cols - centre[1]
    return inverse[0, 0] * dr * dr + 2.0 * inverse[0, 1] * dr * dc + inverse[1, 1] * dc * dc


def _depth_for_pocket(
    beyond_mm: np.ndarray, tilt_mm: np.ndarray, radius_sq: np.ndarray, outline: np.ndarray, pocket_px: int
) -> float:
    """The depth (mm) of the paraboloid dish ``tilt_mm + depth * radius_sq`` (beyond the point,
    ``[y, x]``) whose cross-section by a CT slice (``beyond_mm``: how far beyond the point the
    slice crosses each column) covers ``pocket_px`` columns of ``outline``: where the slice lies
    beyond the dish's surface.
    Counted by area, the pocket is free of the half pixel its rim pixels lie in; the slice may
    be tilted against the columns. The pocket shrinks as the dish deepens: found by bisection."""
    low, high = 0.0, DEPTH_MAX_MM
    for _ in range(DEPTH_BISECTIONS):
        depth = 0.5 * (low + high)
        if np.count_nonzero(outline & (tilt_mm + depth * radius_sq < beyond_mm)) > pocket_px:
            low = depth
        else:
            high = depth
    return 0.5 * (low + high)


def depth_from_partial_volume(
    values: np.ndarray,
    columns: np.ndarray,
    radius_sq: np.ndarray,
    start_mm: np.ndarray,
    level_hu: float,
) -> float:
    """Depth (mm) of the paraboloid dish ``depth * radius_sq`` whose rim reaches into an open CT
    slice's sensitivity profile, read from the cortex's partial volume there; 0 when the slice
    shows none (the dish ends short of its profile).

    ``values`` (HU, ``[y, x]``) is the slice on the frame grid's columns, ``columns`` (bool) those
    to fit, away from the side wall, ``radius_sq`` :func:`normalised_radius_sq`, ``start_mm``
    how far beyond the face's plane (the point's, with the face's tilt) the slice starts in each
    column (its centre's distance less half its profile's width) and ``level_hu`` the cortex's edge
    level: columns at or above it hold more than the cortex's outer part and are left out.
    Each column rises over the disc (the HU over the axis) by ``k * max(depth * radius_sq - start,
    0)``; for each depth tried ``k`` is its least-squares value, and the depth whose hinge leaves
    the least residual is taken. A rise that does not go round the axis as a rim does (at least
    ``RING_SECTORS_NEEDED`` of ``RING_SECTORS`` sectors rising by half the fit) is no dish: bone
    beyond the rim on one side (osteophytes on a faint endplate), or a tilt the face does not have."""
    usable = columns & np.isfinite(values) & (values < level_hu)
    axis = usable & (radius_sq < PARTIAL_AXIS_RADIUS_SQ)
    if np.count_nonzero(axis) < PARTIAL_MIN_COLUMNS:
        return 0.0
    rise = values[usable] - float(np.median(values[axis]))
    radius_sq, start_mm = radius_sq[usable], start_mm[usable]
    best_residual, best_depth, best_per_mm = np.inf, 0.0, 0.0
    for depth in np.arange(PARTIAL_DEPTH_STEP_MM, RING_REACH_MM, PARTIAL_DEPTH_STEP_MM):
        within = np.maximum(depth * radius_sq - start_mm, 0.0)
        if np.count_nonzero(within) < PARTIAL_MIN_COLUMNS:
            continue
        per_mm = float(within @ rise) / float(within @ within)
        residual = float(np.sum((rise - per_mm * within) ** 2))
        if residual < best_residual:
            best_residual, best_depth, best_per_mm = residual, float(depth), per_mm
    if best_per_mm < PARTIAL_MIN_HU_PER_MM:
        return 0.0
    fitted = best_per_mm * np.maximum(best_depth * radius_sq - start_mm, 0.0)
    if float(np.max(fitted)) < PARTIAL_MIN_RISE_HU:
        return 0.0
    rows, cols = np.nonzero(usable)
    centre = (values.shape[0] // 2, values.shape[1] // 2)
    if _sectors_rising(rows, cols, centre, rise, fitted) < RING_SECTORS_NEEDED:
        return 0.0  # a rise on one side (bone beyond the rim, a tilt the face does not have): no dish
    return best_depth


def _sectors_rising(
    rows: np.ndarray, cols: np.ndarray, centre: tuple[int, int], rise: np.ndarray, fitted: np.ndarray
) -> int:
    """How many of ``RING_SECTORS`` sectors around ``centre`` rise as a dish's rim does: over the
    columns (``rows``, ``cols``) where the fitted hinge rises (``fitted``, HU over the disc), the
    measured rise (``rise``) reaches at least half the fitted one on average."""
    sector = slicewise.sector_of(rows, cols, centre, RING_SECTORS)
    rising = 0
    for index in range(RING_SECTORS):
        within = (sector == index) & (fitted > 0.0)
        if within.any() and rise[within].mean() >= 0.5 * fitted[within].mean():
            rising += 1
    return rising


def _disc_hu(planes: CtPlanes, k: int, outline: np.ndarray, radius_sq: np.ndarray) -> float | None:
    """The disc's HU over the axis (the median within ``FARTHER_DISC_RADIUS_SQ``) in CT slice
    ``k``, a slice further beyond a point than the one read; None outside the CT."""
    if not 0 <= k < planes.array_hu.shape[0]:
        return None
    values = planes.on_columns(k)[outline & (radius_sq < FARTHER_DISC_RADIUS_SQ)]
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def averaged_edge_shift_mm(
    values: np.ndarray,
    pocket_core: np.ndarray,
    columns: np.ndarray,
    radius_sq: np.ndarray,
    start_mm: np.ndarray,
    centre_mm: float,
    disc_hu: float | None,
    level_hu: float,
) -> float:
    """How much nearer the point (mm) the edge of a ring's pocket lies than the centre of its
    slice (``centre_mm`` beyond the point on the axis) when the slice, averaged over its
    thickness, holds the point's plane; 0 otherwise.

    Averaged over its thickness, a slice that starts ``s`` mm beyond the face's plane
    (``start_mm``, ``[y, x]``; negative on the axis when it holds the plane) holds ``h - s`` mm of
    the endplate's cortex in a column whose surface lies ``h`` beyond the plane, and its HU
    (``values``) rises over the disc's (``disc_hu``, read further out) by ``k (h - s)``. The pocket
    ends where that reaches the cortex's edge level ``level_hu``: at ``h = s + (level - disc) / k``,
    nearer the point than the slice's centre, where a slice sampled there has its edge. ``k`` (HU
    per mm of cortex) is fitted by least squares over the pocket's columns (``pocket_core``: the
    pocket less its outermost pixels, bool ``[y, x]``; within ``columns``) with
    ``h = depth * radius_sq``. A slice sampled at its
    centre rises in its pocket only with the blur's tail: its ``k`` puts the edge beyond the
    centre or lies below ``PARTIAL_MIN_HU_PER_MM``, and 0 is returned. So too when the rise the
    fit gives over the axis (``k`` times the cortex the slice holds there) stays under
    ``PARTIAL_MIN_RISE_HU``: the disc's HU, read in another slice, and the blur's tail are
    uncertain by about as much, and ``k``, so small a rise over so little cortex, can come out at
    any value. A faint biconcave T7 on 1 x 1 x 1.5 mm voxels, its first slice beyond the upper
    point holding 0.04 mm of the cortex on the axis and rising 16 HU there, gave 387 HU per mm,
    twice its cortex's: the edge 0.34 mm nearer than the centre, the dish 1.22 mm deep where the
    next slice read 3.06 mm, and VBV -3.6% (-0.3% with the edge at the centre).
    """
    centre = (pocket_core.shape[0] // 2, pocket_core.shape[1] // 2)
    held_mm = -float(start_mm[centre])  # the cortex the slice holds over the axis
    if disc_hu is None or held_mm <= 0.0:
        return 0.0
    core = pocket_core & columns & np.isfinite(values)
    if np.count_nonzero(core) < RING_MIN_PIXELS:
        return 0.0
    design = np.column_stack([radius_sq[core], -start_mm[core]])
    (_, per_mm), *_ = np.linalg.lstsq(design, values[core] - disc_hu, rcond=None)
    if per_mm < PARTIAL_MIN_HU_PER_MM or per_mm * held_mm < PARTIAL_MIN_RISE_HU:
        return 0.0
    edge_mm = (level_hu - disc_hu) / float(per_mm) - held_mm
    if not 0.0 < edge_mm < centre_mm:
        return 0.0
    return centre_mm - edge_mm


def dish_depth_mm(
    planes: CtPlanes,
    outline: np.ndarray,
    inner: np.ndarray,
    radius_sq: np.ndarray,
    tilt_mm: np.ndarray,
    point_z: float,
    outward: int,
    level_hu: float,
    spacing_mm: float,
    cement_min_hu: float = 1500.0,
) -> float | None:
    """Depth (mm) of the paraboloid dish beyond an endplate point at frame slice position
    ``point_z`` (``outward``: -1 for the lower point, +1 for the upper) that the rings in the CT's
    slices beyond it show; when the first slice beyond it is open, what it holds of the dish in
    partial volume (:func:`depth_from_partial_volume`, 0 for none); 0 when the first slice's
    pocket reaches the side wall across a face tilted by a slice or more and reads no dish
    (``TILTED_FLAT_DEPTH_MM``); None when no slice shows a
    ring nor is open (the face is left as the shell has it). A slice within ``AXIS_BLUR_MM`` beyond
    the point that shows bone over the axis is passed over; when the next is open, the dish's
    depth is only bounded by that slice's distance: None.

    ``outline`` and ``inner`` (bool ``[y, x]``) are the body's columns and those far enough from
    the side wall for a ring's pixels, ``radius_sq`` :func:`normalised_radius_sq`, ``tilt_mm`` how far
    beyond the point the face's plane lies at each column (the dish is on top), ``level_hu`` the level
    of the cortex's outer edge, ``spacing_mm`` the frame grid's. A slice with cement
    (``cement_min_hu`` and up) within the outline is not read.
    """
    centre = (outline.shape[0] // 2, outline.shape[1] // 2)
    slices = planes.slices
    k, step = slices.first_beyond(point_z, outward)
    wall = outline & ~slicewise.binary_erode(outline[None], voxels_across(WALL_BAND_MM, spacing_mm))[0]
    half_slice_mm = 0.5 * planes.thickness_along_columns(spacing_mm)
    depths = []
    for index in range(RING_SLICES_MAX):
        crossings = planes.crossings(k)
        beyond_mm = outward * (crossings - point_z) * spacing_mm
        if not 0.0 < beyond_mm[centre] <= RING_REACH_MM or not 0 <= k < planes.array_hu.shape[0]:
            break
        start_mm = beyond_mm - half_slice_mm - tilt_mm  # where the slice starts, beyond the face's plane
        values = planes.on_columns(k)
        if np.any(values[outline] >= cement_min_hu):
            break  # a leak into the disc: it and its blur hide the rim
        disc = (values < level_hu) & outline
        if not disc[centre]:
            if index == 0 and beyond_mm[centre] < AXIS_BLUR_MM:
                k += step
                continue  # the blurred cortex at the point: the next slice shows the pocket
            break  # bone over the axis beyond the point: no pocket to read
        pocket = slicewise.labels(disc[None])[0]
        pocket = pocket == pocket[centre]
        pocket_px = np.count_nonzero(pocket)
        if pocket_px >= OPEN_SHARE * np.count_nonzero(outline):
            if index == 0:
                return depth_from_partial_volume(values, inner, radius_sq, start_mm, level_hu)
            break
        if np.count_nonzero(pocket & wall) > POCKET_AT_WALL_SHARE * pocket_px:
            if index == 0 and np.ptp(tilt_mm[outline]) >= 2.0 * half_slice_mm[centre]:
                # A face tilted across a slice's thickness or more: flat if its pocket says so.
                if (
                    _depth_for_pocket(beyond_mm, tilt_mm, radius_sq, outline, pocket_px)
                    <= TILTED_FLAT_DEPTH_MM
                ):
                    return 0.0
            break  # the rim at the side wall: no ring
        pocket_core = slicewise.binary_erode(pocket[None], 1)[0]
        ring = pocket & ~pocket_core & inner & (radius_sq > RADIUS_SQ_MIN)
        rows, cols = np.nonzero(ring)
        if (
            rows.size >= RING_MIN_PIXELS
            and slicewise.sectors_around(rows, cols, centre, RING_SECTORS) >= RING_SECTORS_NEEDED
        ):
            disc_hu = _disc_hu(planes, k + step, outline, radius_sq) if start_mm[centre] < 0.0 else None
            nearer_mm = averaged_edge_shift_mm(
                values, pocket_core, inner, radius_sq, start_mm, float(beyond_mm[centre]), disc_hu, level_hu
            )
            depths.append(_depth_for_pocket(beyond_mm - nearer_mm, tilt_mm, radius_sq, outline, pocket_px))
        k += step
    if not depths:
        return None
    return float(np.median(depths))


def _face_tilt(face: np.ndarray, columns: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    """The tilt of a face (frame slice positions, ``[y, x]``) over ``columns``: the plane fitted
    to them (:func:`endplate_faces.robust_quadratic`, its linear terms), 0 on the axis. A wedged
    face keeps its slope; a dish's or a pit's symmetric depth adds none."""
    rows, cols = np.nonzero(columns)
    all_rows, all_cols = np.indices(face.shape)
    if rows.size < 3:
        return np.zeros(face.shape)
    design = np.column_stack([np.ones(rows.size), rows - centre[0], cols - centre[1]]).astype(float)
    coefficients = robust_quadratic(design, face[rows, cols].astype(float))
    return coefficients[1] * (all_rows - centre[0]) + coefficients[2] * (all_cols - centre[1])


def _held_beyond(face: np.ndarray, present: np.ndarray, point_z: float, outward: int) -> float:
    """What a face (frame slice positions, ``[y, x]``) holds beyond its point at ``point_z``
    over the columns ``present`` (frame voxels; ``outward``: -1 for the lower face, +1 for the
    upper)."""
    return float(np.sum(outward * (face[present] - point_z)))


def faces_on_rings(
    body: np.ndarray,
    fill: FaceFill,
    planes: CtPlanes,
    point_z: tuple[float, float],
    level_hu: float,
    spacing_mm: float,
    cement_min_hu: float = 1500.0,
    fitted: tuple[bool, bool] = (False, False),
) -> tuple[np.ndarray, FaceFill, tuple[bool, bool]] | None:
    """``body`` (bool ``[z, y, x]`` on the frame grid of ``spacing_mm``, its end voxels filled
    by ``fill``) with each face whose dish the CT's slices show (:func:`dish_depth_mm`; the
    marked points at frame slice positions ``point_z``, lower and upper) on that paraboloid
    through its point, on top of the face's own tilt (:func:`_face_tilt`), to a fraction of a
    frame slice; None when no face moved. A face ``fitted`` marks (lower, upper: fitted to the
    contours, :mod:`endplate_contours`) moves only onto a shallower dish that a ring shows: one
    that holds less beyond its point. Also returns which faces (lower, upper) the slices placed
    through their points."""
    present, *faces = face_positions(body, fill)
    if not present.any():
        return None
    centre = (body.shape[1] // 2, body.shape[2] // 2)
    inner = slicewise.binary_erode(present[None], voxels_across(RING_INSET_MM, spacing_mm))[0]
    radius_sq = np.minimum(normalised_radius_sq(present, centre), 1.0)
    tilt_columns = slicewise.binary_erode(present[None], voxels_across(FACE_FIT_INSET_MM, spacing_mm))[0]
    placed = [False, False]
    for index, outward in ((0, -1), (1, 1)):
        tilt = _face_tilt(faces[index], tilt_columns, centre)
        depth = dish_depth_mm(
            planes,
            present,
            inner,
            radius_sq,
            outward * tilt * spacing_mm,
            point_z[index],
            outward,
            level_hu,
            spacing_mm,
            cement_min_hu,
        )
        if depth is None or (fitted[index] and depth == 0.0):
            continue
        dish = np.where(
            present, point_z[index] + tilt + outward * depth / spacing_mm * radius_sq, faces[index]
        )
        if fitted[index] and _held_beyond(dish, present, point_z[index], outward) >= _held_beyond(
            faces[index], present, point_z[index], outward
        ):
            continue
        faces[index] = dish
        placed[index] = True
    if not any(placed):
        return None
    return (*body_from_face_positions(present, faces[0], faces[1], body.shape[0]), (placed[0], placed[1]))
