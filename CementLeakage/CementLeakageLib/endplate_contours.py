"""A dished endplate on thick slices, fitted to the contours where the CT's slices cut it.

On slices thicker than the pixels, a column's face on the frame grid (``[z, y, x]``, slices
along the vertebral axis, :mod:`endplate_faces`) is where the bone interpolated between two CT
slices crosses the shell level. Where the endplate's cortex lies between two slices neither
sees it, and where one slice catches it the crossing lies up to half a slice beyond it: a dished
endplate comes out in terraces, a slice apart, whose rims reach into the dish (a biconcave T8 on
2 mm slices: VBV +6.6%). Within a CT slice's plane, though, the shell's iso-surface is sampled
at the pixels' resolution: the enclosure's face crosses each slice's plane where that surface
does. A quadratic surface through those contours, moved inward by the distance from the shell
level's iso-surface to the cortex's outer edge, and through the marked endplate point gives the
dish; the inner columns whose faces lie within a terrace's reach of it take it, to a fraction
of a frame slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import slicewise
from .endplate_faces import (
    FaceFill,
    body_from_face_positions,
    column_faces,
    face_positions,
    quadratic_terms,
    robust_quadratic,
)
from .geometry import VolumeGeometry

if TYPE_CHECKING:
    from .endplate_rings import CtPlanes

CONTOUR_MIN_POINTS = 30
"""Fewest contour points (where a CT slice cuts a face) a face is fitted to."""
CONTOUR_SECTORS = 12
CONTOUR_SECTORS_NEEDED = 9
"""The contours must surround the axis: points in this many of ``CONTOUR_SECTORS`` angular
sectors around it (a Schmorl pit's wall, off the axis, is cut too, and is no dish)."""
DISH_MIN_DEPTH_MM = 1.0
"""Least depth (mm) of the fitted surface's curved part within the inner columns for a face to be
a dish. Flat faces tilted against the CT's slices are cut too, and their contours carry the
terraces' steps: a curved part of 0.4-0.85 mm (flat L1, L3 and L4 tilted 12-18 degrees on
1.25-1.5 mm slices), where the faces found as they are do better (the L1: VBV -0.6% as found,
+1.7% fitted). The dishes this is for read 1.2-3.5 mm (biconcave T8-T12 at 63-72% height)."""
PER_SLICE_MIN = 0.05
"""Least CT slices per frame slice along a column for the CT's slices to cut the faces: 0.5 mm
frame slices cross 0.25 of a 2 mm CT slice along its normal, 0.05 at 78 degrees from it."""
DISH_AXIS_SHARE = 0.25
"""A dish is deepest around the axis: the curved part over the columns within this share of the
inner columns' largest distance from the axis lies within a quarter of its depth of its lowest."""

FLOOR_TOLERANCE_MM = 0.5
"""How far (mm) inward of the marked endplate point a contour point under a faint cortex may lie,
the face's tilt taken out (:func:`_beyond_the_floor`), and still be fitted: a dish is deepest at
its floor, where the point is marked. Further in, a CT slice cut the walls of a pit the shell's
iso-surface sank into where the faint floor lay between the slices (a faint biconcave T5 at 62%
height on 2 mm slices: contour points round the axis up to 1.8 mm inward of its lower point and
1.4 mm of its upper one; the fit was taken for no dish, the terraces stayed and VBV read +4.3%,
+2.2% fitted without them). Measured from the point itself, the faces of wedged and tilted
bodies, which slope against the frame's slices, lost the contours on their inward side (a wedged
L3 on 1.5 mm slices: VBV -0.2% to +2.0%). Under a normal cortex a pit is a Schmorl node's, whose
walls keep a flat face from passing for a dish: left out, such faces read up to 1.5% more (three
nodes on 1.25-1.5 mm slices)."""


@dataclass(frozen=True)
class CtSlicePositions:
    """Where the CT's slices lie along the columns of the frame grid: the continuous CT slice
    index (k) at frame slice z of column (y, x) is ``start[y, x] + per_slice[y, x] * z``."""

    start: np.ndarray
    per_slice: np.ndarray

    @classmethod
    def between(cls, frame_grid: VolumeGeometry, ct_grid: VolumeGeometry) -> CtSlicePositions:
        """The positions of ``ct_grid``'s slices along ``frame_grid``'s columns."""
        rows, cols = np.indices(frame_grid.shape[1:])
        base = np.stack([cols.ravel(), rows.ravel(), np.zeros(rows.size)], axis=1).astype(float)
        start = ct_grid.ras_to_ijk_points(frame_grid.ijk_to_ras_points(base))[:, 2]
        after = ct_grid.ras_to_ijk_points(frame_grid.ijk_to_ras_points(base + [0.0, 0.0, 1.0]))[:, 2]
        return cls(start.reshape(rows.shape), (after - start).reshape(rows.shape))

    def first_beyond(self, point_z: float, outward: int) -> tuple[int, int]:
        """The first CT slice (index k) beyond frame slice position ``point_z`` on the axis (the
        grid's centre column), ``outward`` along the frame's slices (-1 towards the lower point's
        side, +1 the upper's); a slice through the position itself is passed. With the step in
        k that goes on outward."""
        centre = (self.start.shape[0] // 2, self.start.shape[1] // 2)
        k_point = float(self.start[centre] + self.per_slice[centre] * point_z)
        step = int(np.sign(self.per_slice[centre])) * outward
        k = int(np.floor(k_point)) if step < 0 else int(np.ceil(k_point))
        return (k + step if k == k_point else k), step

    def cross_the_columns(self) -> bool:
        """Whether the CT's slices cross every column at a steep angle, so that they can cut its
        faces (not when they run nearly along the vertebral axis: a sagittal or coronal CT)."""
        return bool(np.abs(self.per_slice).min() >= PER_SLICE_MIN)


@dataclass(frozen=True)
class ThickSliceFaces:
    """What a body on thick slices needs to fit its dished faces to the CT's slices: where they
    lie, the level (HU) of the cortex's outer edge, how far (frame voxels) a column's face
    may lie from the fitted surface and still take it (a terrace's reach), the slices
    themselves, to read a dish's rings in (:mod:`endplate_rings`), and whether the cortex is
    faint (its edge level at or under the bone threshold)."""

    slices: CtSlicePositions
    edge_level_hu: float
    tolerance_px: float
    planes: CtPlanes | None = None
    faint: bool = False


def contour_points(face: np.ndarray, columns: np.ndarray, slices: CtSlicePositions) -> np.ndarray:
    """Points (row, column, z; frame grid indices, fractional) where the CT's slices cut a face.

    ``face`` (float ``[y, x]``) is each column's face as a position along it (frame slice
    indices, a voxel spanning its index ± 0.5); ``columns`` (bool ``[y, x]``) those to look in.
    Between two neighbouring columns on either side of a CT slice's plane (the face beyond it in
    one, short of it in the other) a point lies on the plane, halfway between them.
    """
    position = slices.start + slices.per_slice * face
    inside = position[columns]
    if inside.size == 0:
        return np.empty((0, 3))
    points = []
    for k in range(int(np.ceil(inside.min())), int(np.floor(inside.max())) + 1):
        plane = (k - slices.start) / slices.per_slice
        beyond = face > plane
        for axis in (0, 1):
            first = (slice(0, -1), slice(None)) if axis == 0 else (slice(None), slice(0, -1))
            second = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
            cut = columns[first] & columns[second] & (beyond[first] != beyond[second])
            rows, cols = np.nonzero(cut)
            next_rows, next_cols = (rows + 1, cols) if axis == 0 else (rows, cols + 1)
            z = 0.5 * (plane[rows, cols] + plane[next_rows, next_cols])
            points.append(np.column_stack([0.5 * (rows + next_rows), 0.5 * (cols + next_cols), z]))
    return np.concatenate(points) if points else np.empty((0, 3))


def _beyond_the_floor(
    points: np.ndarray, marked_z: float, outward: int, centre: tuple[int, int], tolerance_px: float
) -> np.ndarray:
    """The contour ``points`` (row, column, z) that lie no more than ``tolerance_px`` inward of the
    marked point (``marked_z`` on the axis, ``centre``) once the face's tilt is taken out: their
    distances from the plane fitted through them, against the point's."""
    design = np.column_stack([np.ones(len(points)), points[:, 0] - centre[0], points[:, 1] - centre[1]])
    plane, *_ = np.linalg.lstsq(design, points[:, 2], rcond=None)
    floor = outward * (marked_z - plane[0])
    return points[outward * (points[:, 2] - design @ plane) >= floor - tolerance_px]


def _dish_surface(
    points: np.ndarray,
    point_z: float,
    outward: int,
    rows: np.ndarray,
    cols: np.ndarray,
    centre: tuple[int, int],
    scale: float,
    spacing_mm: float,
) -> np.ndarray | None:
    """The face (frame slice positions at ``rows``, ``cols``) of the quadratic surface through
    the contour ``points`` and, as much as all of them together, the marked point on the axis
    (``point_z``; :func:`endplate_faces.robust_quadratic`), or None when the points do not
    surround the axis or the surface is no dish (``outward``: +1 for the upper face, -1 for the
    lower)."""
    if len(points) < CONTOUR_MIN_POINTS:
        return None
    if slicewise.sectors_around(points[:, 0], points[:, 1], centre, CONTOUR_SECTORS) < CONTOUR_SECTORS_NEEDED:
        return None
    fit_rows = np.append(points[:, 0], centre[0])
    fit_cols = np.append(points[:, 1], centre[1])
    values = np.append(points[:, 2], point_z)
    weights = np.append(np.ones(len(points)), float(len(points)))
    design = quadratic_terms((fit_rows - centre[0]) / scale, (fit_cols - centre[1]) / scale)
    coefficients = robust_quadratic(design, values, weights, always_kept=len(values) - 1)
    columns = quadratic_terms((rows - centre[0]) / scale, (cols - centre[1]) / scale)
    surface = columns @ coefficients
    # Its curved part: what a plane through the columns leaves, rising outward from a dish's floor.
    plane = columns[:, :3] @ np.linalg.lstsq(columns[:, :3], surface, rcond=None)[0]
    curved = outward * (surface - plane)
    depth = float(curved.max() - curved.min())
    radius = np.hypot(rows - centre[0], cols - centre[1])
    around_axis = radius <= DISH_AXIS_SHARE * radius.max()
    deepest_at_axis = float(curved[around_axis].mean()) <= float(curved.min()) + 0.25 * depth
    if depth * spacing_mm < DISH_MIN_DEPTH_MM or not deepest_at_axis:
        return None
    return surface


def dished_faces_on_contours(
    enclosed: np.ndarray,
    body: np.ndarray,
    fill: FaceFill,
    point_z: tuple[float, float],
    slices: CtSlicePositions,
    edge_offset_px: float,
    inset_px: int,
    tolerance_px: float,
    spacing_mm: float,
    faint: bool = False,
) -> tuple[np.ndarray, FaceFill, tuple[bool, bool]]:
    """``body`` (bool ``[z, y, x]`` on the frame grid, its end voxels filled by ``fill``) with
    a dished face's inner columns on the surface the CT's slices show (see the module's text).

    ``enclosed`` is the region the shell encloses, its faces at the shell level's iso-surface
    (``body`` is it calibrated to the points and kept within the outline); ``point_z`` the
    marked lower and upper endplate points on the axis (frame slice positions); ``slices`` where
    the CT's slices lie; ``edge_offset_px`` how far (frame voxels of ``spacing_mm``) the shell
    level's iso-surface lies outside the cortex's edge (:func:`cortex_edge.level_offset_px`).
    The columns at least ``inset_px`` inside the outline whose face lies within ``tolerance_px``
    of a dish's surface take it; the others, a face that is no dish, and columns nearer the
    outline, where the faces round off into the side wall, keep theirs. Under a ``faint`` cortex
    (its edge level at or under the bone threshold) the contours inward of the marked point are
    left out (``FLOOR_TOLERANCE_MM``). Returns the body, the
    share of each column's end voxels it fills and whether its lower and upper face moved.
    """
    present, *own = face_positions(body, fill)
    inner = slicewise.binary_erode(present[None], inset_px)[0] & enclosed.any(axis=0)
    rows, cols = np.nonzero(inner)
    if rows.size < CONTOUR_MIN_POINTS:
        return body, fill, (False, False)
    _, enclosed_first, enclosed_last = column_faces(enclosed)
    centre = (body.shape[1] // 2, body.shape[2] // 2)
    scale = float(max(rows.std(), cols.std(), 1.0))
    faces = [face.copy() for face in own]
    changed = False
    for face, iso_face, marked_z, outward in (
        (faces[0], enclosed_first - 0.5, point_z[0], -1),
        (faces[1], enclosed_last + 0.5, point_z[1], 1),
    ):
        points = contour_points(iso_face, inner, slices)
        if len(points):
            points[:, 2] -= outward * edge_offset_px
            if faint:
                points = _beyond_the_floor(points, marked_z, outward, centre, FLOOR_TOLERANCE_MM / spacing_mm)
        surface = _dish_surface(points, marked_z, outward, rows, cols, centre, scale, spacing_mm)
        if surface is None:
            continue
        near = np.abs(face[rows, cols] - surface) <= tolerance_px
        face[rows[near], cols[near]] = surface[near]
        changed = True
    if not changed:
        return body, fill, (False, False)
    lower, upper = faces
    too_thin = upper - lower < 1.0
    lower[too_thin], upper[too_thin] = own[0][too_thin], own[1][too_thin]
    moved = tuple(bool(np.abs(face - before)[present].max() > 1e-6) for face, before in zip(faces, own))
    return (*body_from_face_positions(present, lower, upper, body.shape[0]), moved)
