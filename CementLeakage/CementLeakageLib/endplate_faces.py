"""The endplate faces of a body on the frame grid (``[z, y, x]``, slices along the vertebral
axis; a face is a slice index per column): smooth surfaces fitted to them, faces that stop short
of the surface raised to it, the faces moved onto the marked endplate points to a fraction of a
slice, and the body rebuilt from its faces within its outline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import slicewise
from .measurement import voxels_across

MAX_ENDPLATE_OVERSHOOT_MM = 2.0
"""Largest correction (mm) of the enclosed body's faces towards the marked endplate points."""


FACE_TOLERANCE_MM = 1.5
"""A column whose face lies further inward than this (mm) from the smooth endplate surface
fitted to all columns stopped at a hole in the shell, not at the endplate."""


BROKEN_FACE_FRACTION = 0.1
"""A face is raised to its fitted surface in all its short columns only when at least this
fraction of its columns stop short of it: a few short columns along the outline are the grid's
steps, not holes (fewer are raised inside the outline only)."""


def quadratic_terms(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Design matrix of a quadratic surface in column coordinates ``r`` and ``c`` (one row per
    column: 1, r, c, r², c², rc); its first coefficient is the surface's value at r = c = 0."""
    return np.column_stack([np.ones_like(r), r, c, r * r, c * c, r * c])


def smooth_face(
    face: np.ndarray,
    present: np.ndarray,
    inward: int,
    tolerance_px: float,
    bound: int,
    interior: np.ndarray | None = None,
    lost: np.ndarray | None = None,
) -> np.ndarray:
    """An endplate face (slice index per column) with its inward outliers raised to the surface.

    A quadratic surface in the column coordinates (a plane for a tilted endplate, a bowl for a
    concave one) is fitted to the columns in ``present``, leaving out those more than
    ``tolerance_px`` from the fit either way, three times over. Columns further inward than that
    (``inward``: +1 for the lower face, -1 for the upper) take the fitted surface, bounded by the
    slab; the others keep their own face (a local dent, a concave rim). When they are fewer than
    ``BROKEN_FACE_FRACTION`` of the columns, only those in ``interior`` (bool ``[y, x]``, the
    outline less a margin) are raised, or none without it: along the outline a few short columns
    are the grid's steps, inside it they are a hole the enclosure ran through (a Schmorl node's
    pit, which has no cortex of its own, opens the endplate and the region below it is lost; the
    pit is filled with it, up to 0.5% of a body). Columns in ``lost`` (bool ``[y, x]``, outside
    ``present``: holes in it) that lie in ``interior`` take the fitted surface too.
    """
    rows, cols = np.nonzero(present)
    if rows.size < 12:
        return face
    row_mean, row_scale = rows.mean(), max(float(rows.std()), 1.0)
    col_mean, col_scale = cols.mean(), max(float(cols.std()), 1.0)

    def design_at(at_rows: np.ndarray, at_cols: np.ndarray) -> np.ndarray:
        return quadratic_terms((at_rows - row_mean) / row_scale, (at_cols - col_mean) / col_scale)

    design = design_at(rows, cols)
    values = face[rows, cols].astype(float)
    keep = np.ones(values.size, dtype=bool)
    for _ in range(3):
        coefficients, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        fitted = design @ coefficients
        keep = np.abs(values - fitted) <= tolerance_px
        if keep.sum() < 12:
            return face
    outliers = inward * (values - fitted) > tolerance_px
    if outliers.mean() < BROKEN_FACE_FRACTION:
        outliers = np.zeros_like(outliers) if interior is None else outliers & interior[rows, cols]
    targets_rows, targets_cols, targets = rows[outliers], cols[outliers], fitted[outliers]
    if lost is not None and interior is not None:
        lost_rows, lost_cols = np.nonzero(lost & interior)
        targets_rows = np.concatenate([targets_rows, lost_rows])
        targets_cols = np.concatenate([targets_cols, lost_cols])
        targets = np.concatenate([targets, design_at(lost_rows, lost_cols) @ coefficients])
    if targets.size == 0:
        return face
    result = face.copy()
    raised = np.rint(targets).astype(face.dtype)
    # Raised faces stay within the slab between the endplate points (``bound``): beyond them a face
    # is the shell's own (a concave endplate's rim), never an extrapolation.
    raised = np.maximum(raised, bound) if inward > 0 else np.minimum(raised, bound)
    result[targets_rows, targets_cols] = raised
    return result


def column_faces(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every column (x, y) of a ``[z, y, x]`` mask: whether it holds a voxel, and the slice
    indices of its lowest and highest voxel (0 and -1 in empty columns)."""
    present = mask.any(axis=0)
    first = np.where(present, np.argmax(mask, axis=0), 0)
    last = np.where(present, mask.shape[0] - 1 - np.argmax(mask[::-1], axis=0), -1)
    return present, first, last


AXIS_PATCH_MM = 2.0
"""Half-width (mm) of the patch around the axis whose faces are compared with the marked points."""


def faces_meet_the_points(enclosed: np.ndarray, axial_mm: np.ndarray, height_mm: float) -> bool:
    """Whether the enclosed body's faces around the axis lie at the marked endplate points.

    On the axis the points say where the endplates are (0 and ``height_mm``, mm along the axis).
    A face more than ``MAX_ENDPLATE_OVERSHOOT_MM`` (plus a slice) beyond or short of its point is
    not the endplate: the shell opened into the disc (a leak's hole in the endplate) or the
    enclosure stopped inside the body. The median face over a small patch around the axis is
    used, so that one column through a pit does not decide.
    """
    spacing = abs(float(axial_mm[1] - axial_mm[0]))
    half = voxels_across(AXIS_PATCH_MM, spacing)
    rows, cols = enclosed.shape[1] // 2, enclosed.shape[2] // 2
    patch = enclosed[:, rows - half : rows + half + 1, cols - half : cols + half + 1]
    present, first, last = column_faces(patch)
    if present.mean() < 0.5:
        return False
    lower_mm = float(np.median(axial_mm[first[present]])) - 0.5 * spacing
    upper_mm = float(np.median(axial_mm[last[present]])) + 0.5 * spacing
    allowed_mm = MAX_ENDPLATE_OVERSHOOT_MM + spacing
    return abs(lower_mm) <= allowed_mm and abs(upper_mm - height_mm) <= allowed_mm


def columns_within_outline(
    enclosed: np.ndarray, outline: np.ndarray, tolerance_px: float, slab: np.ndarray, inset_px: int = 0
) -> np.ndarray:
    """The body from its faces and its outline: in every column (x, y) of ``outline``, the
    voxels between the lowest and highest voxel of ``enclosed`` in that column, faces that stop
    short of the smooth endplate surface (a hole in a faint shell) raised to it; with
    ``inset_px``, also a few such columns at least that far inside the outline, and the columns
    that ``enclosed`` lost inside its outline, holes in its columns, between the two surfaces
    (:func:`smooth_face`). A shell that did not enclose its interior holds there only the runs of
    denser trabecular bone above its level; moving its faces onto the points takes as much off
    every run, and a column of short runs is lost from top to bottom (an L1 at 80% height with
    leaks into both discs on 2 mm slices lost 48: VBV -5.5%)."""
    present, first, last = column_faces(enclosed)
    present &= outline
    z = np.arange(enclosed.shape[0])[:, None, None]
    interior = lost = None
    if inset_px:
        holes = slicewise.fill_holes(present[None])[0] & ~present
        interior = slicewise.binary_erode((present | holes)[None], inset_px)[0]
        lost = holes & interior
    first = smooth_face(first, present, 1, tolerance_px, int(slab[0]), interior, lost)
    last = smooth_face(last, present, -1, tolerance_px, int(slab[-1]), interior, lost)
    if lost is not None:
        present = present | lost
    return present[None] & (z >= first[None]) & (z <= last[None])


FACE_FIT_INSET_MM = 3.0
"""Columns closer than this (mm) to the outline are left out of the face fit: there the faces
round off into the side wall."""
FACE_FIT_MIN_COLUMNS = 50


def fitted_faces(
    body: np.ndarray,
    inset_px: int,
    excluded_columns: np.ndarray | None = None,
    inward_px: tuple[np.ndarray, np.ndarray] | None = None,
    axis_patch_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The lower and upper face of the ``[z, y, x]`` mask ``body`` as smooth surfaces: slice
    indices (fractional, ``[y, x]``) of quadratic surfaces fitted to the faces of the columns at
    least ``inset_px`` inside the outline and not in ``excluded_columns`` (bool ``[y, x]``: where
    a leak's cement was hidden from the shell, the face is not the endplate's); None when too few
    columns are left.

    On thick slices each column's face lies on one of the CT's slices: a dished or tilted
    endplate crossing several slices shows as terraces, and one column alone is off by up to
    half a CT slice depending on where its terrace falls. The fitted surface averages over the
    terraces. Each fit is repeated without the columns far from it (a pit, a hole in a faint
    shell; :func:`robust_quadratic`) until the columns left out settle: the terraces spread the
    faces so wide that a strip the shell left open, where the enclosure ran millimetres into the
    body, comes off the fit a few columns at a time (a T10 tilted 9 degrees on 2 mm slices, its
    lower face open 1-5 mm deep along one strip: after three fits the surface still lay 0.6 mm
    inward of the settled one on the axis, and every column was left beyond its endplate by
    about as much, VBV +3.8%). The columns within ``axis_patch_px`` of the axis, where the
    points are, stay in every fit: a dish's floor lies off a quadratic fitted to its rims, and
    a fit that settles without it reads the floor at the rims' level (a biconcave T6 at 76%
    height on 2 mm slices: 1.2 mm beyond its point). With ``inward_px`` (slices, ``[y, x]``:
    lower and upper), each column's faces are taken that far inward of its end voxels' outer
    edges.
    """
    present, first, last = column_faces(body)
    inner = slicewise.binary_erode(present[None], inset_px)[0]
    if excluded_columns is not None:
        inner &= ~excluded_columns
    if inward_px is not None:
        first, last = first + inward_px[0], last - inward_px[1]
    rows, cols = np.nonzero(inner)
    if rows.size < FACE_FIT_MIN_COLUMNS:
        return None
    scale = float(max(rows.std(), cols.std(), 1.0))
    centre = (body.shape[1] // 2, body.shape[2] // 2)
    design = quadratic_terms((rows - centre[0]) / scale, (cols - centre[1]) / scale)
    all_rows, all_cols = np.indices(present.shape)
    everywhere = quadratic_terms(
        ((all_rows - centre[0]) / scale).ravel(), ((all_cols - centre[1]) / scale).ravel()
    )
    near_axis = None
    if axis_patch_px is not None:
        near_axis = np.flatnonzero(np.hypot(rows - centre[0], cols - centre[1]) <= axis_patch_px)
    surfaces = [
        everywhere
        @ robust_quadratic(design, face[rows, cols].astype(float), always_kept=near_axis, until_settled=True)
        for face in (first, last)
    ]
    return surfaces[0].reshape(present.shape), surfaces[1].reshape(present.shape)


SETTLED_FIT_ROUNDS = 10
"""Most fits a robust fit runs while the values it leaves out still change."""


def robust_quadratic(
    design: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray | None = None,
    always_kept: int | np.ndarray | None = None,
    until_settled: bool = False,
) -> np.ndarray:
    """Coefficients of a quadratic surface (``design``: :func:`quadratic_terms`, one row per
    value) fitted to ``values`` by least squares, weighted by ``weights`` when given, three
    times over, each time without the values further from the fit than 2 px or 2.5 standard
    deviations, whichever is more; with ``until_settled``, over and over until the values left
    out no longer change (at most ``SETTLED_FIT_ROUNDS`` fits). The values at ``always_kept``
    (an index or indices) stay in every fit."""
    keep = np.ones(values.size, dtype=bool)
    for _ in range(SETTLED_FIT_ROUNDS if until_settled else 3):
        if weights is None:
            coefficients, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        else:
            root = np.sqrt(weights[keep])
            coefficients, *_ = np.linalg.lstsq(design[keep] * root[:, None], values[keep] * root, rcond=None)
        residual = values - design @ coefficients
        kept = np.abs(residual) <= max(2.0, 2.5 * float(np.std(residual[keep])))
        if always_kept is not None:
            kept[always_kept] = True
        if until_settled and np.array_equal(kept, keep):
            break
        keep = kept
    return coefficients


SLICE_SHARE_RESOLUTION = 1e-3
"""Overshoots (in slices) this close to a whole number are taken as whole: rounding in the face
fit, or a face fitted to terraces a thousandth of a slice off the one on the axis (half a
micrometre on the frame grid), must not turn an exact two slices into one and a fill of all but
nothing, or add a slice to every column that fills nothing of it."""


def _whole_slices(overshoot_px: float) -> int:
    """The whole slices a face moves inward for an overshoot of ``overshoot_px`` slices: within
    it when it is positive, beyond a shortfall (negative, moving outward) when it is not, so
    that the rest, ``overshoot_px`` minus them, is a fraction of a slice to come off."""
    return int(np.floor(overshoot_px + SLICE_SHARE_RESOLUTION))


def _face_moved(mask: np.ndarray, body: np.ndarray, slices: int, upper: bool) -> np.ndarray:
    """``mask`` (``[z, y, x]``) with the upper (or lower) face of every column moved inward by
    ``slices`` whole slices, cut where ``body`` shifted by as much ends, or outward by
    ``-slices`` when negative, grown slice by slice."""
    result = mask.copy()
    if slices > 0:
        if upper:
            result[:-slices] &= body[slices:]
            result[-slices:] = False
        else:
            result[slices:] &= body[:-slices]
            result[:slices] = False
    for shift in range(1, -slices + 1):
        if upper:
            result[shift:] |= mask[:-shift]
        else:
            result[:-shift] |= mask[shift:]
    return result


def _kept_share(residual_px: float) -> float:
    """The share of its end voxel a face keeps when ``residual_px`` (a fraction of a slice, or a
    hair below 0) is still to come off."""
    return 1.0 if abs(residual_px) < SLICE_SHARE_RESOLUTION else 1.0 - residual_px


def _hidden_columns_on_fit(
    body: np.ndarray,
    surfaces: tuple[np.ndarray, np.ndarray],
    hidden: np.ndarray,
    overshoot_px: tuple[float, float],
) -> np.ndarray:
    """``body`` with the faces of its columns in ``hidden`` (bool ``[y, x]``) moved outward
    towards the fitted face surfaces (rounded to whole slices), by no more than the overshoot of
    the faces on the axis (``overshoot_px``: lower and upper, slices, rounded up) that the
    calibration then takes off every column.

    Where a leak's cement was hidden from the shell, the shell's blur went with it: those
    columns' faces lie inside the others' by about that overshoot, and the calibration would
    take it off them a second time (a leak over the centre of a dished endplate lost half a
    millimetre at each face there). A pit deeper than the overshoot (a Schmorl's node under the
    leak) keeps the rest of its depth. The fitted surfaces were fitted without these columns.
    """
    present, first, last = column_faces(body)
    columns = hidden & present
    if not columns.any():
        return body
    lower_reach, upper_reach = (max(int(np.ceil(px - SLICE_SHARE_RESOLUTION)), 0) for px in overshoot_px)
    own_first, own_last = first[columns], last[columns]
    lower = np.clip(np.rint(surfaces[0][columns]).astype(int), own_first - lower_reach, own_first)
    upper = np.clip(np.rint(surfaces[1][columns]).astype(int), own_last, own_last + upper_reach)
    z = np.arange(body.shape[0])[:, None]
    result = body.copy()
    result[:, columns] |= (z >= lower[None]) & (z <= upper[None])
    return result


def face_crossings(body: np.ndarray, hu: np.ndarray, level_hu: float) -> tuple[np.ndarray, np.ndarray]:
    """How far inward (slices, -0.5 to 0.5, ``[y, x]``) of the outer edges of each column's lowest
    and highest voxel of ``body`` (bool ``[z, y, x]`` on the frame grid) the intensities ``hu``
    (same grid) cross ``level_hu``, interpolated linearly between the end voxel and the one
    beyond it: the lower and the upper face to a fraction of a slice. NaN where the end voxel is
    not at the level or the one beyond it not below (a face the closing or the filling made, or
    none).

    A binary face lies on a voxel's edge: a face square to the axis puts every column's edge on
    the same side of the surface, up to half a slice off (0.25 mm on the frame grid, 1.5% of a
    17 mm body from each face), where a tilted or dished one averages out over the columns.
    """
    present, first, last = column_faces(body)
    depth = body.shape[0]
    rows, cols = np.nonzero(present)
    offsets = []
    for end, beyond in ((first, first - 1), (last, last + 1)):
        inward = np.full(present.shape, np.nan)
        end_at, beyond_at = end[rows, cols], beyond[rows, cols]
        within = (beyond_at >= 0) & (beyond_at < depth)
        beyond_at = np.clip(beyond_at, 0, depth - 1)
        end_hu = hu[end_at, rows, cols].astype(float)
        beyond_hu = hu[beyond_at, rows, cols].astype(float)
        crossing = within & (end_hu >= level_hu) & (beyond_hu < level_hu)
        # The level lies this far from the voxel beyond the face towards the end voxel's centre.
        share = (level_hu - beyond_hu[crossing]) / (end_hu[crossing] - beyond_hu[crossing])
        inward[rows[crossing], cols[crossing]] = share - 0.5
        offsets.append(inward)
    return offsets[0], offsets[1]


def _faces_at_crossings(
    body: np.ndarray,
    shell: tuple[np.ndarray, float],
    inset_px: int,
    excluded_columns: np.ndarray | None,
    axis_patch_px: float | None = None,
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Where the intensities cross the level at the faces of ``body`` (``shell``: the frame's
    intensities and the level the body was enclosed at; :func:`face_crossings`): the lower and
    upper face fitted to the crossings on the axis (slice indices of the end voxels' centres, as
    :func:`fitted_faces` gives them), and the mean distance (slices) the crossings lie inward of
    the columns' binary faces, lower and upper; None when a face has no crossing or too few
    columns are left for the fit. A column without a crossing is fitted at that mean distance:
    crossings all as far from their edges fit the binary faces moved by as much."""
    inward = face_crossings(body, *shell)
    if excluded_columns is not None:
        inward = tuple(np.where(excluded_columns, np.nan, offset) for offset in inward)
    if not all(np.isfinite(offset).any() for offset in inward):
        return None
    means = tuple(float(np.nanmean(offset)) for offset in inward)
    filled = tuple(np.where(np.isnan(offset), mean, offset) for offset, mean in zip(inward, means))
    surfaces = fitted_faces(body, inset_px, excluded_columns, filled, axis_patch_px)
    if surfaces is None:
        return None
    centre = (body.shape[1] // 2, body.shape[2] // 2)
    return (float(surfaces[0][centre]), float(surfaces[1][centre])), means


@dataclass(frozen=True)
class FaceFill:
    """The share (0 to 1] of its end voxels that each column of a body on the frame grid fills
    along the axis, at the lower and upper face: the sub-voxel part of a calibration. One share
    for every column, or one per column (``[y, x]``)."""

    lower: float | np.ndarray = 1.0
    upper: float | np.ndarray = 1.0

    def per_column(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The lower and upper shares as one value per column of a ``[y, x]`` grid of ``shape``."""
        return tuple(
            np.broadcast_to(np.asarray(share, dtype=float), shape) for share in (self.lower, self.upper)
        )


def calibrate_to_endplate_points(
    body: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    inset_px: int,
    shortfall_mm: float = 0.0,
    excluded_columns: np.ndarray | None = None,
    shell: tuple[np.ndarray, float] | None = None,
) -> tuple[np.ndarray, FaceFill]:
    """Move the enclosed body's upper and lower faces onto the marked endplate surfaces.

    The shell's iso-surface lies outside the cortex by the blur; on the axis the points say
    where the endplate surfaces are (0 and ``height_mm`` along the axis), so every column is
    shortened at each end by the overshoot on the axis (at most ``MAX_ENDPLATE_OVERSHOOT_MM``),
    read from the faces fitted around it (:func:`fitted_faces`, without ``excluded_columns``)
    or, failing that, from the axis column itself. The columns in ``excluded_columns`` are first
    moved out towards the fitted faces by up to that overshoot (:func:`_hidden_columns_on_fit`).
    Whole slices are taken off the mask; the rest of the overshoot, a fraction of a slice, is
    returned as the share of its end voxels each column keeps (a rounded shift would be up to a
    quarter of a slice off at each face: 2% of a 12 mm body).
    With ``shortfall_mm``, faces that stop short of the points on the axis are extended by as
    much (at most ``shortfall_mm``): whole slices added to every column, the rest as the share
    of the new end voxels kept.
    With ``shell`` (the frame's intensities and the level the body was enclosed at), the
    overshoot is read from the faces where the intensities cross the level, to a fraction of a
    slice in every column (:func:`_faces_at_crossings`), and the columns move by it plus the mean
    distance from their binary faces in to their crossings: their faces then add up to the
    crossings' moved by the overshoot. A face square to the axis, whose columns all end on the same
    voxel edge, is otherwise off by that edge's distance to the face (up to half a slice).
    """
    spacing = abs(float(axial_mm[1] - axial_mm[0]))
    centre = (body.shape[1] // 2, body.shape[2] // 2)
    column = np.flatnonzero(body[:, centre[0], centre[1]])
    if column.size == 0:
        return body, FaceFill()
    lower_inward = upper_inward = 0.0
    axis_patch_px = AXIS_PATCH_MM / spacing
    surfaces = fitted_faces(body, inset_px, excluded_columns, axis_patch_px=axis_patch_px)
    if surfaces is None:
        lower_face, upper_face = float(column[0]), float(column[-1])
    else:
        lower_face, upper_face = float(surfaces[0][centre]), float(surfaces[1][centre])
        crossed = (
            None
            if shell is None
            else _faces_at_crossings(body, shell, inset_px, excluded_columns, axis_patch_px)
        )
        if crossed is not None:
            (lower_face, upper_face), (lower_inward, upper_inward) = crossed
    step = float(axial_mm[1] - axial_mm[0])
    limit = MAX_ENDPLATE_OVERSHOOT_MM / spacing
    # Slices are centred half a slice inside the faces: the top slice on the axis ends at the
    # upper point, the bottom slice starts at the lower point.
    upper_mm = float(axial_mm[0]) + upper_face * step
    lower_mm = float(axial_mm[0]) + lower_face * step
    short = shortfall_mm / spacing
    top_px = float(np.clip((upper_mm - (height_mm - 0.5 * spacing)) / spacing, -short, limit)) + upper_inward
    bottom_px = float(np.clip((0.5 * spacing - lower_mm) / spacing, -short, limit)) + lower_inward
    top, bottom = _whole_slices(top_px), _whole_slices(bottom_px)
    if surfaces is not None and excluded_columns is not None:
        body = _hidden_columns_on_fit(body, surfaces, excluded_columns, (bottom_px, top_px))
    result = _face_moved(_face_moved(body, body, top, upper=True), body, bottom, upper=False)
    return result, FaceFill(lower=_kept_share(bottom_px - bottom), upper=_kept_share(top_px - top))


def face_positions(body: np.ndarray, fill: FaceFill) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each column (x, y) of ``body`` (bool ``[z, y, x]`` on the frame grid, its end voxels
    filled by ``fill``) has its faces, as positions along it (frame slice indices, a voxel
    spanning its index ± 0.5): whether it holds a voxel, its lower and its upper face."""
    present, first, last = column_faces(body)
    lower_share, upper_share = fill.per_column(present.shape)
    return present, first + 0.5 - lower_share, last - 0.5 + upper_share


def body_from_face_positions(
    present: np.ndarray, lower: np.ndarray, upper: np.ndarray, depth: int
) -> tuple[np.ndarray, FaceFill]:
    """The body (bool ``[z, y, x]``, ``depth`` slices) whose columns in ``present`` run from face
    position ``lower`` to ``upper`` (:func:`face_positions`), with the share of its end voxels
    each column fills: the inverse of :func:`face_positions`."""
    lowest = np.floor(lower + 0.5).astype(int)
    highest = np.ceil(upper - 0.5).astype(int)
    z = np.arange(depth)[:, None, None]
    body = present[None] & (z >= lowest[None]) & (z <= highest[None])
    return body, FaceFill(
        lower=np.where(present, lowest + 0.5 - lower, 1.0),
        upper=np.where(present, upper - highest + 0.5, 1.0),
    )


def filled_voxels(body: np.ndarray, fill: FaceFill) -> float:
    """The volume (in voxels) of ``body`` (bool ``[z, y, x]`` on the frame grid) whose end voxels
    are filled by ``fill``: its voxels less the part of each column's end voxels left unfilled."""
    present = body.any(axis=0)
    unfilled = sum(float(np.sum(1.0 - share[present])) for share in fill.per_column(present.shape))
    return float(np.count_nonzero(body)) - unfilled


def fill_beyond(body: np.ndarray, other: np.ndarray, fill: FaceFill) -> FaceFill:
    """The share of their end voxels that the columns of the union of ``body`` (bool
    ``[z, y, x]`` on the frame grid, its end voxels filled by ``fill``) and ``other`` (whole
    voxels) fill: ``fill``'s where a column of ``body`` reaches beyond ``other``'s (or ``other``
    has none there), whole voxels where ``other`` sets the face. A calibrated face keeps the
    fraction of a slice it was moved by (up to half a millimetre at each face on the frame grid)."""
    present, first, last = column_faces(body)
    other_present, other_first, other_last = column_faces(other)
    lower_is_body = present & (~other_present | (first < other_first))
    upper_is_body = present & (~other_present | (last > other_last))
    lower_share, upper_share = fill.per_column(present.shape)
    return FaceFill(
        lower=np.where(lower_is_body, lower_share, 1.0), upper=np.where(upper_is_body, upper_share, 1.0)
    )


def face_occupancy(body: np.ndarray, fill: FaceFill) -> np.ndarray:
    """The body (bool ``[z, y, x]`` on the frame grid) as float32 values whose linear
    interpolation crosses one half where each column's faces lie: inner voxels 1, outside 0,
    and the lowest and highest voxel of every column the value that puts the crossing at
    ``fill`` of the way across it (1 keeps the binary mask's faces, at the voxel's outer edge)."""

    present, first, last = column_faces(body)
    rows, cols = np.nonzero(present)

    def crossing_value(share: np.ndarray) -> np.ndarray:
        # Between an inner voxel (1) and the end voxel (v) the half-crossing lies 0.5 / (1 - v)
        # from the inner voxel's centre; between the end voxel and the outside (0), (v - 0.5) / v
        # beyond the end voxel's centre.
        share = np.clip(share[rows, cols], 0.0, 1.0)
        return np.where(share >= 0.5, 0.5 / (1.5 - share), 1.0 - 0.5 / (0.5 + share))

    occupancy = body.astype(np.float32)
    lower, upper = (crossing_value(share) for share in fill.per_column(present.shape))
    occupancy[last[rows, cols], rows, cols] = upper
    occupancy[first[rows, cols], rows, cols] = np.minimum(occupancy[first[rows, cols], rows, cols], lower)
    return occupancy
