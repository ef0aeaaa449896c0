"""Automatic vertebral body segmentation between two endplate midpoints.

The body is found slice by slice in a grid aligned with the vertebra (see
:mod:`vertebra_frame`): bone is thresholded (226 HU and above by default, cement included),
small gaps in the cortical shell are closed, the enclosed trabecular interior around the
vertebral axis is taken with the shell around it, holes (cement, low-density trabecular bone)
are filled, and anything attached through a neck narrower than the pedicles (ribs, leaked
cement) is cut off by a morphological opening of the cross-section. The pedicles are cut at
the posterior wall and, in the slices that carry them, at the outline of the slices that do
not (the pedicle's anterior edge). The outer surface is then moved from the 226 HU iso-level,
which blur pushes outward, to the cortex's own edge (see :func:`_outer_edge_level`), and the
fillets of bone where the pedicles join the side walls are cut back to the outline the
pedicle-free slices share (see :func:`_cut_pedicle_fillets`). Slices in
the middle of the body whose cross-section comes out markedly smaller than the body's (a faint
cortex that closed only where cement props it up) look again, lowest shell level first; when the
cross-sections found that way are typically much larger than the first ones (or a little,
where the cortex's edge lies below the bone threshold), the first lost part of the body
throughout (a faint cortex that closes at 226 HU nowhere, or inside its edge) and all of them
are replaced. Slices
without a closed interior (the endplates themselves) take the outline of the nearest slice
that has one. Where the cortical shell encloses the body in 3D, its faces follow tilted and
concave endplates; a face that stops short of the smooth endplate surface fitted to all
columns (a hole in a faint shell) is raised to it, and the faces are moved onto the marked
points to a fraction of a slice (see :func:`_calibrate_to_endplate_points`). The mask is then
resampled onto the CT grid and clipped to the slab between the two endplate points (beyond them
only where a concave endplate's rim continues).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from . import slicewise
from .ct_volume import CtVolume
from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .mask_resampling import coverage_on, volume_preserving_mask
from .measurement import bounding_box, grown_box, voxels_across
from .parameters import MeasurementParameters
from .sitk_bridge import box_around_ras_points, resample_onto, to_sitk
from .vertebra_frame import VertebraFrame, vertebra_frame

EDGE_PEAK_FRACTION = 0.4
"""Where the outer surface level lies between the inflection (0) and the cortical peak (1)."""


@dataclass(frozen=True)
class BodySegmentationSettings:
    """Geometric settings of the body segmentation, all in millimetres."""

    working_spacing_mm: float = 0.5
    half_width_mm: float = 40.0
    closing_radii_mm: tuple[float, ...] = (1.0, 2.0, 3.0)
    shell_levels_hu: tuple[float, ...] = (190.0, 160.0, 130.0)
    endplate_extension: float = 0.45
    rim_coverage: tuple[float, float] = (0.05, 0.6)
    seed_radius_mm: float = 6.0
    neck_radius_mm: float = 4.5
    canal_gap_mm: float = 2.0
    posterior_wall_quantile: float = 0.2
    slab_margin_mm: float = 2.0
    closing_3d_radius_mm: float = 0.0
    reference_margin_mm: float = 0.0
    refine_outer_edge: bool = True
    edge_band_mm: float = 1.5


@dataclass
class BodySegmentation:
    """The body mask on a CT sub-grid, with what was learnt on the way."""

    mask: np.ndarray
    geometry: VolumeGeometry
    box: tuple[slice, slice, slice]
    frame: VertebraFrame
    slices_with_interior: int
    slices_total: int
    warnings: list[str]


def frame_grid(frame: VertebraFrame, settings: BodySegmentationSettings) -> VolumeGeometry:
    """A grid aligned with the vertebra covering the slab between the endplates (RAS mm)."""
    spacing = settings.working_spacing_mm
    half = settings.half_width_mm
    # Along the axis the spacing divides the height exactly and slices are centred half a slice
    # from the points, so both endplate points lie on slice faces.
    axial_spacing = frame.height_mm / max(1, int(round(frame.height_mm / spacing)))
    raw_margin = settings.slab_margin_mm + settings.endplate_extension * frame.height_mm
    margin = (np.ceil(raw_margin / axial_spacing) + 0.5) * axial_spacing
    n_xy = int(round(2 * half / spacing)) + 1
    n_z = int(round((frame.height_mm + 2 * margin) / axial_spacing))
    matrix = np.eye(4)
    matrix[:3, :3] = frame.rotation * np.array([spacing, spacing, axial_spacing])
    matrix[:3, 3] = frame.to_ras([[-half, -half, -margin]])[0]
    return VolumeGeometry(matrix, (n_z, n_xy, n_xy))


SOLID_SLICE_FACE_MM = 1.5
"""Within this distance (mm) of an endplate point a solid cross-section is taken without
looking further for a ring with an interior."""
POSTERIOR_HOLE_FRACTION = 0.9
"""A hole of the bone ring whose centre lies behind the axis by more than this fraction of the
body's anterior depth is posterior to the body (canal, gaps between ribs and processes)."""


def _anterior_depths(component: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    """For every slice of a ``[z, y, x]`` stack: how far (pixels, at least 1) the component
    reaches in front of the axis pixel along the axis column; 1 where the column is empty."""
    column = component[:, :, centre[1]]
    last_row = component.shape[1] - 1 - np.argmax(column[:, ::-1], axis=1)
    depth = np.maximum((last_row - centre[0]).astype(float), 1.0)
    return np.where(column.any(axis=1), depth, 1.0)


def _posterior_holes(
    hole_labels: np.ndarray, centre: tuple[int, int], anterior_depth: np.ndarray, canal_gap_px: float
) -> np.ndarray:
    """Which holes (labels of a ``[z, y, x]`` stack, one entry per label, 0 first) lie posterior
    to the body: entirely behind its posterior wall (``anterior_depth`` plus ``canal_gap_px``
    behind the axis pixel, per slice), or centred behind ``POSTERIOR_HOLE_FRACTION`` of the
    anterior depth. The hole around the axis pixel never does."""
    count = int(hole_labels.max())
    posterior = np.zeros(count + 1, dtype=bool)
    if count == 0:
        return posterior
    rows = np.broadcast_to(np.arange(hole_labels.shape[1])[None, :, None], hole_labels.shape)
    sizes = np.bincount(hole_labels.ravel(), minlength=count + 1)[1:]
    row_sums = np.bincount(hole_labels.ravel(), weights=rows.ravel(), minlength=count + 1)[1:]
    boxes = ndimage.find_objects(hole_labels)
    hole_slice = np.array([box[0].start for box in boxes])
    last_row = np.array([box[1].stop - 1 for box in boxes])
    depth = anterior_depth[hole_slice]
    behind_wall = last_row < centre[0] - depth - canal_gap_px
    # Holes centred behind the body's posterior part (the canal, and the gaps that rib heads,
    # transverse processes and pedicles enclose) are not the body's interior.
    centred_behind = row_sums / sizes < centre[0] - POSTERIOR_HOLE_FRACTION * depth
    posterior[1:] = behind_wall | centred_behind
    posterior[hole_labels[:, centre[0], centre[1]]] = False
    return posterior


def _cross_sections_around_axis(
    bone: np.ndarray,
    centre: tuple[int, int],
    seed_radius_px: float,
    closing_radius_px: int,
    canal_gap_px: float,
) -> list[tuple[np.ndarray, bool] | None]:
    """For every slice of a ``[z, y, x]`` bone stack: the filled bone ring that encloses the axis
    pixel ``centre`` (row, column), without the spinal canal, and whether it still encloses some
    of the body's own interior (a hole not behind the body; a ring without one is solid: cement
    up to the cortex, or an endplate's plate).

    Gaps in the ring are closed by a disk of ``closing_radius_px``. A slice gives None when no
    closed ring encloses the axis (within ``seed_radius_px``). Holes of the ring whose centre
    lies behind the body's anterior half-depth by more than ``canal_gap_px`` (the spinal canal,
    enclosed by pedicles and laminae) are left out.
    """
    closed = slicewise.binary_closing(bone, closing_radius_px)
    labelled = slicewise.labels(slicewise.fill_holes(closed))
    chosen, distance = slicewise.nearest_labels(labelled, centre)
    chosen[distance > seed_radius_px] = 0
    component = slicewise.members(labelled, chosen)
    holes = component & ~closed
    hole_labels = slicewise.labels(holes)
    posterior = _posterior_holes(hole_labels, centre, _anterior_depths(component, centre), canal_gap_px)
    component &= ~posterior[hole_labels]
    has_hole = holes.any(axis=(1, 2))
    has_interior = (component & holes).any(axis=(1, 2))
    return [
        (component[index], bool(has_interior[index])) if has_hole[index] else None
        for index in range(bone.shape[0])
    ]


def _cut_necks(cross_sections: np.ndarray, centre: tuple[int, int], radius_px: int) -> np.ndarray:
    """Keep the part of every cross-section (slice of a ``[z, y, x]`` stack) that a disk of
    ``radius_px`` reaches from the axis pixel ``centre`` (row, column); a cross-section the disk
    fits nowhere in is kept whole."""
    core = slicewise.component_near(slicewise.binary_erode(cross_sections, radius_px), centre)
    necks_cut = slicewise.binary_dilate(core, radius_px) & cross_sections
    too_thin = ~core.any(axis=(1, 2))
    necks_cut[too_thin] = cross_sections[too_thin]
    return necks_cut


def _cut_at_posterior_wall(
    body: np.ndarray, slices: list[int], centre: tuple[int, int], quantile: float, tolerance_px: int
) -> list[int]:
    """Cut every slice at the body's posterior wall, i.e. at the pedicles' anterior edge.

    The wall is where the cross-sections that reach least far back end (the slices below the
    pedicles, where the body stands alone); ``quantile`` picks that depth among all slices.
    Returns the slices that reached more than ``tolerance_px`` behind the wall (those that
    carry the pedicles).
    """
    depths = {}
    for z in slices:
        rows = np.flatnonzero(body[z].any(axis=1))
        if rows.size:
            depths[z] = centre[0] - rows.min()
    if not depths:
        return []
    wall = int(np.floor(centre[0] - np.quantile(list(depths.values()), quantile)))
    if wall <= 0:
        return []
    body[:, :wall, :] = False
    return [z for z, depth in depths.items() if centre[0] - depth < wall - tolerance_px]


def _restrict_to_pedicle_free_outline(
    body: np.ndarray, slices: list[int], pedicle_slices: list[int], margin_px: int
) -> None:
    """Remove pedicle roots left in front of the posterior wall.

    Slices that do not carry pedicles stand free; the union of their outlines, grown by
    ``margin_px``, bounds the body in the slices that do, which cuts each pedicle at its
    anterior edge.
    """
    carrying = set(pedicle_slices)
    free = [z for z in slices if z not in carrying]
    if len(free) < 3 or not pedicle_slices:
        return
    reference = body[free].any(axis=0)
    if margin_px > 0:
        reference = (
            sitk.GetArrayFromImage(
                sitk.BinaryDilate(sitk.GetImageFromArray(reference.astype(np.uint8)), [margin_px, margin_px])
            )
            > 0
        )
    for z in pedicle_slices:
        body[z] &= reference


POSTERIOR_PROFILE_TOLERANCE_MM = 1.0
"""Depth (mm) a column may reach behind the body's posterior profile before it is cut."""
ROOT_CHECK_MM = 1.0
"""How far (mm) behind a column's posterior edge bone must continue for the edge to be a root's."""
ROOT_PROFILE_QUANTILE = 0.1
"""Share of the slices that, column by column, set the posterior profile: the roots of pedicles
as tall as a compressed body leave only a few slices free of them."""


def _cut_pedicle_roots(
    body: np.ndarray,
    hu: np.ndarray,
    bone_min_hu: float,
    slices: list[int],
    centre: tuple[int, int],
    quantile: float,
    spacing_mm: float,
) -> None:
    """Cut pedicle roots off the body's posterolateral corners, column by column (in place).

    A pedicle widens where it meets the body; what the opening of the cross-section and the
    straight cut at the posterior wall leave of it sits in front of the wall, at the corner.
    In every column (x of the ``[z, y, x]`` frame grid) the body's posterior profile is how far
    the slices reach behind the axis; ``quantile`` picks that reach among the slices (those
    without the roots). A slice's column is cut back to the profile (plus
    ``POSTERIOR_PROFILE_TOLERANCE_MM`` and the slice's own enlargement, the median excess over
    all its columns, which the roots' few columns and a foramen's gap do not move: an
    endplate's flare keeps its corners) only where bone (``hu`` at or above ``bone_min_hu``)
    continues behind its edge, i.e. where the edge is a cut through a pedicle and not the body's
    own cortex.
    """
    if len(slices) < 3:
        return
    stack = body[slices]
    present = stack.any(axis=1)
    counted = present.sum(axis=0) >= max(3, int(np.ceil(quantile * len(slices))))
    if not counted.any():
        return
    edge_row = np.argmax(stack, axis=1)
    reach = np.where(present, centre[0] - edge_row, np.nan)
    profile = np.full(reach.shape[1], np.inf)
    profile[counted] = np.nanquantile(reach[:, counted], quantile, axis=0)
    excess = reach - profile[None, :]
    enlargement = np.zeros(len(slices))
    for index, row in enumerate(excess):
        finite = row[np.isfinite(row)]
        if finite.size:
            enlargement[index] = max(0.0, float(np.median(finite)))
    behind_row = np.clip(edge_row - voxels_across(ROOT_CHECK_MM, spacing_mm), 0, None)
    columns = np.arange(stack.shape[2])[None, :]
    root = present & (hu[np.asarray(slices)[:, None], behind_row, columns] >= bone_min_hu)
    allowed = profile[None, :] + POSTERIOR_PROFILE_TOLERANCE_MM / spacing_mm + enlargement[:, None]
    allowed = np.where(root, allowed, np.inf)
    rows = np.arange(body.shape[1])[None, :, None]
    body[slices] = stack & ~((centre[0] - rows) > allowed[:, None, :])


FILLET_SHARE = 0.5
"""Share of the pedicle-free slices a pixel must lie in to belong to the body's posterior outline."""
FILLET_OUTLINE_AGREEMENT = 0.05
"""In front of the axis, the pedicle-free outline's area must lie within this fraction of the
pedicle slices' (median): otherwise the pedicle-free slices lost part of a faint shell and
their outline cannot bound the others."""
FILLET_MAX_FRACTION = 0.08
"""A slice loses at most this fraction of its area to fillets; a larger cut is not a fillet's."""


def _cut_pedicle_fillets(
    body: np.ndarray,
    hu: np.ndarray,
    bone_min_hu: float,
    slices: list[int],
    pedicle_slices: list[int],
    centre: tuple[int, int],
) -> None:
    """Cut the fillets where the pedicles join the body's side walls (in place).

    Where a pedicle meets the wall, bone fills the corner between them, and neither the opening
    nor the outer-edge trim takes it off: bone continues outward. Behind the axis, the outline
    that most pedicle-free slices share (``FILLET_SHARE``; the body's own wall, after the trim)
    bounds the slices that carry pedicles: each piece of such a slice outside it (4-connected)
    that touches bone outside the body (``hu`` at or above ``bone_min_hu``: the pedicle) is cut.
    Pieces with no bone next to them are the body's own shape and stay; in front of the axis
    nothing is cut. Nothing is cut where the pedicle-free outline disagrees with the others in
    front of the axis (``FILLET_OUTLINE_AGREEMENT``), nor in a slice whose fillets would take
    more than ``FILLET_MAX_FRACTION`` of it.
    """
    carrying = set(pedicle_slices)
    free = [z for z in slices if z not in carrying]
    if len(free) < 3 or not pedicle_slices:
        return
    outline = body[free].mean(axis=0) >= FILLET_SHARE
    stack = body[pedicle_slices]
    front = float(outline[centre[0] :].sum())
    front_of_pedicle_slices = float(np.median(stack[:, centre[0] :].sum(axis=(1, 2))))
    if abs(front - front_of_pedicle_slices) > FILLET_OUTLINE_AGREEMENT * front_of_pedicle_slices:
        return
    outline[centre[0] :, :] = True
    pieces = slicewise.labels(stack & ~outline[None])
    if not pieces.any():
        return
    pedicle_bone = (hu[pedicle_slices] >= bone_min_hu) & ~stack
    touching = np.unique(pieces[slicewise.binary_dilate(pedicle_bone, 1) & (pieces > 0)])
    fillets = slicewise.members(pieces, touching)
    small = fillets.sum(axis=(1, 2)) <= FILLET_MAX_FRACTION * stack.sum(axis=(1, 2))
    body[pedicle_slices] = stack & ~(fillets & small[:, None, None])


RIM_WIDTH_MM = 3.0
"""Width (mm) of the band along the body's outline where a concave endplate's rim lies."""
RIM_SECTORS = 12
RIM_SECTORS_NEEDED = 9


def _is_ring(rim: np.ndarray, outline: np.ndarray, core_px: int) -> bool:
    """Whether bone pixels ``rim`` form a ring along ``outline`` rather than part of a plate.

    A concave endplate's rim runs all around the body near its outline and leaves the centre
    (the disc) free; a flat plate seen at an angle or through partial volume covers one side
    or the centre. The rim must leave the core (outline eroded by ``core_px``) nearly empty
    and reach ``RIM_SECTORS_NEEDED`` of ``RIM_SECTORS`` angular sectors around the centroid.
    """
    core = sitk.GetArrayFromImage(
        sitk.BinaryErode(sitk.GetImageFromArray(outline.astype(np.uint8)), [core_px] * 2)
    )
    core = core > 0
    if core.any() and np.count_nonzero(rim & core) > 0.1 * np.count_nonzero(core):
        return False
    rows, cols = np.nonzero(outline)
    rim_rows, rim_cols = np.nonzero(rim)
    angles = np.arctan2(rim_rows - rows.mean(), rim_cols - cols.mean())
    sectors = np.unique(np.floor((angles + np.pi) / (2 * np.pi) * RIM_SECTORS).astype(int) % RIM_SECTORS)
    return sectors.size >= RIM_SECTORS_NEEDED


def _add_concave_endplate_rims(
    body: np.ndarray,
    bone: np.ndarray,
    slab: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    settings: BodySegmentationSettings,
) -> tuple[float, float]:
    """Extend the body beyond the endplate points where a concave endplate's bony rim continues.

    A slice beyond a point belongs to the body only where bone covers part of the body's
    outline as a rim (a full plate is the endplate surface the point was marked on); the
    extension stops at the first slice without such a rim (the disc) and at
    ``endplate_extension`` times the height. Returns how far (mm, along the axis) the body
    now reaches below the lower and above the upper endplate point (0 without a rim).
    """
    low_cover, high_cover = settings.rim_coverage
    limit = settings.endplate_extension * height_mm
    core_px = voxels_across(RIM_WIDTH_MM, abs(axial_mm[1] - axial_mm[0]))
    reach = [0.0, 0.0]
    for index, (edge, step) in enumerate(((int(slab[0]), -1), (int(slab[-1]), 1))):
        outline = body[edge]
        area = outline.sum()
        if area == 0:
            continue
        z = edge + step
        while 0 <= z < body.shape[0] and abs(axial_mm[z] - axial_mm[edge]) <= limit:
            rim = bone[z] & outline
            coverage = rim.sum() / area
            if not low_cover <= coverage <= high_cover or not _is_ring(rim, outline, core_px):
                break
            body[z] = rim
            endplate_mm = 0.0 if step < 0 else height_mm
            reach[index] = abs(axial_mm[z] - endplate_mm) + 0.5 * abs(axial_mm[1] - axial_mm[0])
            z += step
    return reach[0], reach[1]


ENCLOSED_VOLUME_RANGE = (0.7, 1.6)
"""The shell-enclosed body is used when its volume is within this range of the slab's body: a
biconcave fracture to 60% of the rim's height holds about a third more than its slab, and the
enclosed region, before its faces are calibrated and its columns kept within the outline, up to
half as much again."""
ENCLOSED_COVERAGE_MIN = 0.95
"""The shell-enclosed body must hold this fraction of the body found slice by slice between the
endplate points: the shell may add concave rims and take off tilted corners, but a shell with
holes encloses only part of the body."""
CEMENT_HALO_PX = 3
"""Pixels around cement beyond the endplate points that its blur makes look like bone."""
MAX_ENDPLATE_OVERSHOOT_MM = 2.0
"""Largest correction (mm) of the enclosed body's faces towards the marked endplate points."""


def _dilated_within_box(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """``mask`` (3D) dilated by a ball of ``radius_px`` voxels (``sitk.BinaryDilate``), worked
    out within the box around its voxels grown by the radius, beyond which nothing changes."""
    dilated = np.zeros(mask.shape, dtype=bool)
    tight = bounding_box(mask)
    if tight is None:
        return dilated
    box = grown_box(tight, (radius_px,) * 3, mask.shape)
    image = sitk.GetImageFromArray(mask[box].astype(np.uint8))
    dilated[box] = sitk.GetArrayFromImage(sitk.BinaryDilate(image, [radius_px] * 3)) > 0
    return dilated


def _enclosed_by_shell(
    hu: np.ndarray,
    body: np.ndarray,
    slab: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    shell_levels: list[float],
    settings: BodySegmentationSettings,
    cement_min_hu: float = 1500.0,
) -> tuple[np.ndarray, FaceFill] | None:
    """The body as the region its cortical shell encloses in 3D, within the body's outline.

    Side wall and both endplates enclose the body; the disc, the canal and the gaps between
    processes are open, so filling the shell's cavities in 3D follows the endplates wherever
    they lie: tilted (wedge fractures), dimpled (biconcave fractures, Schmorl's nodes) or
    concave, rather than cutting at the marked points. The outline (x, y) is the union of the
    slab's cross-sections. Returns the mask with the share of their end voxels its columns fill
    (:func:`_calibrate_to_endplate_points`), or None when no shell level closes (the slab's body
    is kept).
    """
    outline = body[slab].any(axis=0)
    if not outline.any():
        return None
    reference = float(body[slab].sum())
    slab_body = np.zeros_like(body)
    slab_body[slab] = body[slab]
    # The faces come from the shell, the outline from the slab: pixels in at least half of the
    # slab's cross-sections (pedicle roots and ribs are in fewer).
    typical_outline = body[slab].mean(axis=0) >= 0.5
    outlines = np.broadcast_to(outline, body.shape)
    limit = settings.endplate_extension * height_mm
    allowed = (axial_mm >= -limit) & (axial_mm <= height_mm + limit)
    middle = slab[len(slab) // 4 : max(len(slab) // 4 + 1, 3 * len(slab) // 4)]
    # Beyond the endplate points cement is not shell: a leak into the disc must not close a lid.
    beyond_points = ((axial_mm <= 0.0) | (axial_mm >= height_mm))[:, None, None]
    cement_halo = _dilated_within_box(hu >= cement_min_hu, CEMENT_HALO_PX)
    not_cement_beyond = ~(beyond_points & cement_halo)

    def shell_at(level: float) -> np.ndarray:
        return ((hu >= level) & not_cement_beyond).astype(np.uint8)

    inset_px = voxels_across(FACE_FIT_INSET_MM, settings.working_spacing_mm)
    tolerance_px = FACE_TOLERANCE_MM / settings.working_spacing_mm

    def finished(calibrated: np.ndarray, raise_inner_columns: bool) -> np.ndarray:
        """The body from a candidate's calibrated faces and the outline. A candidate is judged
        without its few short inner columns raised (one that encloses part of the body must not
        pass for one whole); the body kept has them raised."""
        inset = inset_px if raise_inner_columns else 0
        return _columns_within_outline(calibrated, typical_outline, tolerance_px, slab, inset)

    partial: tuple[float, np.ndarray] | None = None
    usual_radii, wide_radii = settings.closing_radii_mm[:2], settings.closing_radii_mm[2:]
    # Each round is tried only when the rounds before it closed no shell at all. A wider closing
    # bridges the gap a thick slice leaves in a dished endplate's lid where no slice samples the
    # cortex. Cement filling the body up to the cortex leaves no enclosed core in the middle slices
    # (the closing takes it all), so the last rounds look for the core anywhere between the points.
    rounds = [
        ([(level, radius) for level in shell_levels for radius in usual_radii], middle),
        ([(level, radius) for radius in wide_radii for level in shell_levels], middle),
        ([(level, radius) for level in shell_levels for radius in usual_radii], slab),
        ([(level, radius) for radius in wide_radii for level in shell_levels], slab),
    ]
    candidates: dict[tuple[float, float], tuple[np.ndarray, np.ndarray] | None] = {}

    def closed_candidate(level: float, radius_mm: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The region the shell at ``level`` closed by ``radius_mm`` encloses, with the closed
        shell, if it spans the middle slices, has a plausible volume and meets the points."""
        radius = voxels_across(radius_mm, settings.working_spacing_mm)
        # Closed in the slice plane only: closing along the axis would bridge a narrow disc
        # (or a leak lying in it) and enclose the next vertebra.
        closed = slicewise.binary_closing(shell_at(level), radius)
        filled = (
            sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(closed.astype(np.uint8)))) > 0
        )
        candidate = filled & outlines & allowed[:, None, None]
        if not candidate[middle].any(axis=(1, 2)).all():
            return None
        candidate = _largest_component_3d(candidate)
        volume = float(candidate.sum())
        low, high = ENCLOSED_VOLUME_RANGE
        within_range = low * reference <= volume <= high * reference
        if not (within_range and _faces_meet_the_points(candidate, axial_mm, height_mm)):
            return None
        return candidate, closed

    for attempts, core_slices in rounds:
        if partial is not None:
            break
        for attempt in attempts:
            if attempt not in candidates:
                candidates[attempt] = closed_candidate(*attempt)
            if candidates[attempt] is None:
                continue
            candidate, closed = candidates[attempt]
            if not (candidate & ~closed)[core_slices].any():
                continue
            calibrated, fill = _calibrate_to_endplate_points(candidate, axial_mm, height_mm, inset_px)
            coverage = float((finished(calibrated, False) & slab_body).sum()) / reference
            if coverage >= ENCLOSED_COVERAGE_MIN:
                return finished(calibrated, True), fill
            if partial is None or coverage > partial[0]:
                partial = (coverage, calibrated)
    if partial is None:
        return None
    # Every shell that closed has holes: its faces still follow the endplates beyond the points
    # (concave rims), and the body found slice by slice fills what it leaves out between them.
    # Their columns may end where the slab's body does: the faces are kept whole.
    return finished(partial[1], True) | (slab_body & typical_outline[None]), FaceFill()


FACE_TOLERANCE_MM = 1.5
"""A column whose face lies further inward than this (mm) from the smooth endplate surface
fitted to all columns stopped at a hole in the shell, not at the endplate."""


BROKEN_FACE_FRACTION = 0.1
"""A face is raised to its fitted surface in all its short columns only when at least this
fraction of its columns stop short of it: a few short columns along the outline are the grid's
steps, not holes (fewer are raised inside the outline only)."""


def _quadratic_terms(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Design matrix of a quadratic surface in column coordinates ``r`` and ``c`` (one row per
    column: 1, r, c, r², c², rc); its first coefficient is the surface's value at r = c = 0."""
    return np.column_stack([np.ones_like(r), r, c, r * r, c * c, r * c])


def _smooth_face(
    face: np.ndarray,
    present: np.ndarray,
    inward: int,
    tolerance_px: float,
    bound: int,
    interior: np.ndarray | None = None,
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
    pit is filled with it, up to 0.5% of a body).
    """
    rows, cols = np.nonzero(present)
    if rows.size < 12:
        return face
    r = (rows - rows.mean()) / max(float(rows.std()), 1.0)
    c = (cols - cols.mean()) / max(float(cols.std()), 1.0)
    design = _quadratic_terms(r, c)
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
        if interior is None:
            return face
        outliers &= interior[rows, cols]
        if not outliers.any():
            return face
    result = face.copy()
    raised = np.rint(fitted[outliers]).astype(face.dtype)
    # Raised faces stay within the slab between the endplate points (``bound``): beyond them a face
    # is the shell's own (a concave endplate's rim), never an extrapolation.
    raised = np.maximum(raised, bound) if inward > 0 else np.minimum(raised, bound)
    result[rows[outliers], cols[outliers]] = raised
    return result


def _column_faces(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every column (x, y) of a ``[z, y, x]`` mask: whether it holds a voxel, and the slice
    indices of its lowest and highest voxel (0 and -1 in empty columns)."""
    present = mask.any(axis=0)
    first = np.where(present, np.argmax(mask, axis=0), 0)
    last = np.where(present, mask.shape[0] - 1 - np.argmax(mask[::-1], axis=0), -1)
    return present, first, last


AXIS_PATCH_MM = 2.0
"""Half-width (mm) of the patch around the axis whose faces are compared with the marked points."""


def _faces_meet_the_points(enclosed: np.ndarray, axial_mm: np.ndarray, height_mm: float) -> bool:
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
    present, first, last = _column_faces(patch)
    if present.mean() < 0.5:
        return False
    lower_mm = float(np.median(axial_mm[first[present]])) - 0.5 * spacing
    upper_mm = float(np.median(axial_mm[last[present]])) + 0.5 * spacing
    allowed_mm = MAX_ENDPLATE_OVERSHOOT_MM + spacing
    return abs(lower_mm) <= allowed_mm and abs(upper_mm - height_mm) <= allowed_mm


def _columns_within_outline(
    enclosed: np.ndarray, outline: np.ndarray, tolerance_px: float, slab: np.ndarray, inset_px: int = 0
) -> np.ndarray:
    """The body from its faces and its outline: in every column (x, y) of ``outline``, the
    voxels between the lowest and highest voxel of ``enclosed`` in that column, faces that stop
    short of the smooth endplate surface (a hole in a faint shell) raised to it; with
    ``inset_px``, also a few such columns at least that far inside the outline (:func:`_smooth_face`)."""
    present, first, last = _column_faces(enclosed)
    present &= outline
    z = np.arange(enclosed.shape[0])[:, None, None]
    interior = slicewise.binary_erode(present[None], inset_px)[0] if inset_px else None
    first = _smooth_face(first, present, 1, tolerance_px, int(slab[0]), interior)
    last = _smooth_face(last, present, -1, tolerance_px, int(slab[-1]), interior)
    return present[None] & (z >= first[None]) & (z <= last[None])


FACE_FIT_INSET_MM = 3.0
"""Columns closer than this (mm) to the outline are left out of the face fit: there the faces
round off into the side wall."""
FACE_FIT_MIN_COLUMNS = 50


def _faces_on_axis(body: np.ndarray, inset_px: int) -> tuple[float, float] | None:
    """Slice indices (fractional) of the lower and upper face on the axis (the centre column of
    the ``[z, y, x]`` mask ``body``), from quadratic surfaces fitted to the faces of the columns
    at least ``inset_px`` inside the outline; None when too few columns are left.

    On thick slices each column's face lies on one of the CT's slices: a dished or tilted
    endplate crossing several slices shows as terraces, and the axis column alone is off by up
    to half a CT slice depending on where its terrace falls. The fitted surface averages over
    the terraces. Each fit is repeated three times without the columns further from it than
    2 px or 2.5 standard deviations, whichever is more (a pit, a hole in a faint shell).
    """
    present, first, last = _column_faces(body)
    inner = slicewise.binary_erode(present[None], inset_px)[0]
    rows, cols = np.nonzero(inner)
    if rows.size < FACE_FIT_MIN_COLUMNS:
        return None
    scale = float(max(rows.std(), cols.std(), 1.0))
    r = (rows - body.shape[1] // 2) / scale
    c = (cols - body.shape[2] // 2) / scale
    design = _quadratic_terms(r, c)
    on_axis = []
    for face in (first, last):
        values = face[rows, cols].astype(float)
        keep = np.ones(values.size, dtype=bool)
        for _ in range(3):
            coefficients, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
            residual = values - design @ coefficients
            keep = np.abs(residual) <= max(2.0, 2.5 * float(np.std(residual[keep])))
        on_axis.append(float(coefficients[0]))
    return on_axis[0], on_axis[1]


SLICE_SHARE_RESOLUTION = 1e-6
"""Overshoots (in slices) this close to a whole number are taken as whole: rounding in the face
fit must not turn an exact two slices into one and a fill of all but nothing."""


def _whole_slices(overshoot_px: float) -> int:
    """The whole slices within an overshoot of ``overshoot_px`` (>= 0) slices."""
    whole = int(np.floor(overshoot_px))
    return whole + 1 if overshoot_px - whole > 1.0 - SLICE_SHARE_RESOLUTION else whole


def _kept_share(residual_px: float) -> float:
    """The share of its end voxel a face keeps when ``residual_px`` (a fraction of a slice, or a
    hair below 0) is still to come off."""
    return 1.0 if abs(residual_px) < SLICE_SHARE_RESOLUTION else 1.0 - residual_px


@dataclass(frozen=True)
class FaceFill:
    """The share (0 to 1] of its end voxels that each column of a body on the frame grid fills
    along the axis, at the lower and upper face: the sub-voxel part of a calibration."""

    lower: float = 1.0
    upper: float = 1.0


def _calibrate_to_endplate_points(
    body: np.ndarray, axial_mm: np.ndarray, height_mm: float, inset_px: int
) -> tuple[np.ndarray, FaceFill]:
    """Move the enclosed body's upper and lower faces onto the marked endplate surfaces.

    The shell's iso-surface lies outside the cortex by the blur; on the axis the points say
    where the endplate surfaces are (0 and ``height_mm`` along the axis), so every column is
    shortened at each end by the overshoot on the axis (at most ``MAX_ENDPLATE_OVERSHOOT_MM``),
    read from the faces fitted around it (:func:`_faces_on_axis`) or, failing that, from the
    axis column itself. Whole slices are taken off the mask; the rest of the overshoot, a
    fraction of a slice, is returned as the share of its end voxels each column keeps (a
    rounded shift would be up to a quarter of a slice off at each face: 2% of a 12 mm body).
    """
    spacing = abs(float(axial_mm[1] - axial_mm[0]))
    centre = (body.shape[1] // 2, body.shape[2] // 2)
    column = np.flatnonzero(body[:, centre[0], centre[1]])
    if column.size == 0:
        return body, FaceFill()
    lower_face, upper_face = _faces_on_axis(body, inset_px) or (float(column[0]), float(column[-1]))
    step = float(axial_mm[1] - axial_mm[0])
    limit = MAX_ENDPLATE_OVERSHOOT_MM / spacing
    # Slices are centred half a slice inside the faces: the top slice on the axis ends at the
    # upper point, the bottom slice starts at the lower point.
    upper_mm = float(axial_mm[0]) + upper_face * step
    lower_mm = float(axial_mm[0]) + lower_face * step
    top_px = float(np.clip((upper_mm - (height_mm - 0.5 * spacing)) / spacing, 0.0, limit))
    bottom_px = float(np.clip((0.5 * spacing - lower_mm) / spacing, 0.0, limit))
    top, bottom = _whole_slices(top_px), _whole_slices(bottom_px)
    fill = FaceFill(lower=_kept_share(bottom_px - bottom), upper=_kept_share(top_px - top))
    result = body.copy()
    if top:
        result[:-top] &= body[top:]
        result[-top:] = False
    if bottom:
        result[bottom:] &= body[:-bottom]
        result[:bottom] = False
    return result, fill


def _face_occupancy(body: np.ndarray, fill: FaceFill) -> np.ndarray:
    """The body (bool ``[z, y, x]`` on the frame grid) as float32 values whose linear
    interpolation crosses one half where each column's faces lie: inner voxels 1, outside 0,
    and the lowest and highest voxel of every column the value that puts the crossing at
    ``fill`` of the way across it (1 keeps the binary mask's faces, at the voxel's outer edge)."""

    def crossing_value(share: float) -> float:
        # Between an inner voxel (1) and the end voxel (v) the half-crossing lies 0.5 / (1 - v)
        # from the inner voxel's centre; between the end voxel and the outside (0), (v - 0.5) / v
        # beyond the end voxel's centre.
        share = float(np.clip(share, 0.0, 1.0))
        return 0.5 / (1.5 - share) if share >= 0.5 else 1.0 - 0.5 / (0.5 + share)

    occupancy = body.astype(np.float32)
    present, first, last = _column_faces(body)
    rows, cols = np.nonzero(present)
    lower, upper = crossing_value(fill.lower), crossing_value(fill.upper)
    occupancy[last[rows, cols], rows, cols] = upper
    occupancy[first[rows, cols], rows, cols] = np.minimum(occupancy[first[rows, cols], rows, cols], lower)
    return occupancy


def _largest_component_3d(mask: np.ndarray) -> np.ndarray:
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8))))
    if labels.max() <= 1:
        return mask
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == int(np.argmax(counts))


CORTEX_PEAK_MAX_HU = 1000.0
"""Brighter pixels next to the outline are cement (or its blur), not the cortical peak."""
CEMENT_RIM_MM = 2.0
"""Width (mm) of the blurred rim around cement left out when the cortex's edge level is measured:
cement filling the body up to a faint cortex would otherwise set that level."""


def _outer_edge_level(
    hu: np.ndarray,
    body: np.ndarray,
    slices: list[int],
    band_px: int,
    cement_min_hu: float = 1500.0,
    halo_px: int = 4,
    axis_row: int | None = None,
) -> float | None:
    """HU level of the cortex's outer surface, or None when it cannot be told.

    Blur moves a fixed iso-level such as 226 HU outward of the cortex surface. In a band of
    ``band_px`` around the outline, the outer flank of the cortex is where intensity falls
    going outward; its steepest pixels (strongest fifth of the in-plane gradient) give the
    level of the inflection, and the brightest pixels on the inner side give the cortical
    peak. The surface level lies ``EDGE_PEAK_FRACTION`` of the way from the first to the
    second: for a thick cortex the surface is at the inflection, while for a cortex thinner
    than the blur the inflection lies outside the surface; in between keeps the bias within
    a fraction of the blur either way.

    With ``axis_row`` (the axis's row on the frame grid, rows growing anteriorly) only the
    outline in front of the axis is sampled: behind it, pedicles and rib heads touch the wall
    with cortex of their own, and where the body's cortex is faint (osteoporosis) theirs is far
    brighter and its steep flanks would set the level of a cortex that is not the body's.
    """
    masks = body[slices]
    hu_slices = hu[slices]
    outer = slicewise.binary_dilate(masks, band_px)
    inner = slicewise.binary_erode(masks, band_px)
    # Cement next to the wall is not cortex: it would raise the peak far above the cortex's. Nor
    # is the blurred rim around cement: within ``halo_px`` of it the flank is the cement's.
    near_cement = slicewise.binary_dilate(hu_slices >= cement_min_hu, halo_px)
    band = outer & ~inner & (hu_slices < cement_min_hu) & ~near_cement
    if axis_row is not None:
        band[:, :axis_row, :] = False
    inward = slicewise.gradient(slicewise.gaussian_smoothing(masks, 2.0))
    slope = slicewise.gradient(hu_slices.astype(np.float64))
    falls_outward = (slope[0] * inward[0] + slope[1] * inward[1]) > 0
    flank = band & falls_outward
    magnitude = np.hypot(slope[0], slope[1])
    # The cortex's own peak next to each steep flank pixel (the brightest pixel within the
    # band's width, cement excluded): pedicles and cement elsewhere along the outline do
    # not count, so a faint cortex keeps its own, low, peak.
    local = np.where(hu_slices < CORTEX_PEAK_MAX_HU, hu_slices, -1024.0).astype(np.float32)
    local_max = slicewise.grayscale_dilate(local, band_px)
    values = []
    peaks = []
    for index in range(len(slices)):
        if band[index].sum() < 20 or flank[index].sum() < 20:
            continue
        on_flank = flank[index]
        flank_magnitude = magnitude[index][on_flank]
        steep = flank_magnitude >= np.quantile(flank_magnitude, 0.8)
        values.append(hu_slices[index][on_flank][steep])
        local_peak = float(np.median(local_max[index][on_flank][steep]))
        inner_side = hu_slices[index][band[index] & ~falls_outward[index]]
        band_peak = float(np.quantile(inner_side, 0.9)) if inner_side.size >= 20 else local_peak
        peaks.append(min(local_peak, band_peak))
    if not values:
        return None
    steepest = float(np.median(np.concatenate(values)))
    return steepest + EDGE_PEAK_FRACTION * (float(np.median(peaks)) - steepest)


def _trim_outer_edge(
    hu: np.ndarray, body: np.ndarray, slices: list[int], level: float, band_px: int, centre: tuple[int, int]
) -> None:
    """Remove outline pixels below ``level`` that the outside reaches within ``band_px``.

    Only pixels on the cortex's outer flank (intensity rising inward) may go: behind a faint,
    noisy cortex the trabecular bone is below ``level`` too, and must not be reached.
    """
    masks = body[slices]
    hu_slices = hu[slices]
    inner = slicewise.binary_erode(masks, band_px)
    inward = slicewise.gradient(slicewise.gaussian_smoothing(masks, 2.0))
    slope = slicewise.gradient(slicewise.gaussian_smoothing(hu_slices, 1.0))
    outer_flank = (slope[0] * inward[0] + slope[1] * inward[1]) > 0
    candidates = masks & ~inner & (hu_slices < level) & outer_flank
    open_space = ~masks | candidates
    reached = slicewise.touching_border(slicewise.labels(open_space)) & candidates
    trimmed = slicewise.fill_holes(masks & ~reached)
    body[slices] = slicewise.component_near(trimmed, centre)


SPANNED_DISC_MIN_MM = 2.5
"""A run of slices this long (mm) without a closed bone ring inside the body suggests a disc."""


def _largest_inner_gap_mm(slab, interiors: dict, axial_mm: np.ndarray, height_mm: float):
    """Length and centre (mm along the axis) of the longest run of slab slices without a body
    cross-section that lies away from both endplates, if it is at least ``SPANNED_DISC_MIN_MM``."""
    best = None
    run: list[int] = []
    for z in list(slab) + [None]:
        if z is not None and int(z) not in interiors:
            run.append(int(z))
            continue
        if run:
            low, high = float(axial_mm[run[0]]), float(axial_mm[run[-1]])
            length = high - low + float(axial_mm[1] - axial_mm[0])
            middle = 0.5 * (low + high)
            inner = 0.15 * height_mm < middle < 0.85 * height_mm
            if inner and length >= SPANNED_DISC_MIN_MM and (best is None or length > best[0]):
                best = (length, middle)
        run = []
    return best


def _cross_sections(
    hu: np.ndarray,
    slab: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    centre: tuple[int, int],
    attempts: list[tuple[float, float]],
    settings: BodySegmentationSettings,
) -> dict[int, np.ndarray]:
    """The body's cross-section in every slab slice where one is found, by slice index.

    Each slice takes the first of ``attempts`` (shell level in HU, closing radius in mm) whose
    ring has an interior of its own; failing that, the first solid cross-section (cement up to
    the cortex, or an endplate's plate), taken at once within ``SOLID_SLICE_FACE_MM`` of the
    endplate points where solid slices are the rule. Cross-sections far from the typical area
    (below half, above twice the median) are dropped, their areas taken with the necks cut
    (:func:`_cut_necks`): where pedicle roots span most of a compressed body's height, the slices
    free of them would otherwise look like stray rings beside the others.
    """
    spacing = settings.working_spacing_mm
    interiors: dict[int, np.ndarray] = {}
    solids: dict[int, np.ndarray] = {}
    pending = [int(z) for z in slab]
    near_face = {
        z
        for z in pending
        if axial_mm[z] < SOLID_SLICE_FACE_MM or axial_mm[z] > height_mm - SOLID_SLICE_FACE_MM
    }
    for level, radius_mm in attempts:
        if not pending:
            break
        found = _cross_sections_around_axis(
            hu[pending] >= level,
            centre,
            settings.seed_radius_mm / spacing,
            voxels_across(radius_mm, spacing),
            settings.canal_gap_mm / spacing,
        )
        still_pending = []
        for z, result in zip(pending, found):
            if result is not None:
                cross_section, has_interior = result
                if has_interior:
                    interiors[z] = cross_section
                    solids.pop(z, None)
                    continue
                if z not in solids:
                    solids[z] = cross_section
                    if z in near_face:
                        continue
            still_pending.append(z)
        pending = still_pending
    interiors.update(solids)
    interiors = {z: interiors[z] for z in sorted(interiors)}
    if interiors:
        necks_cut = _cut_necks(
            np.stack(list(interiors.values())), centre, voxels_across(settings.neck_radius_mm, spacing)
        )
        areas = dict(zip(interiors, necks_cut.sum(axis=(1, 2))))
        typical = float(np.median(list(areas.values())))
        interiors = {z: m for z, m in interiors.items() if 0.5 * typical <= areas[z] <= 2.0 * typical}
    return interiors


def _cut_body(
    interiors: dict[int, np.ndarray],
    hu: np.ndarray,
    shape: tuple[int, int, int],
    centre: tuple[int, int],
    settings: BodySegmentationSettings,
    parameters: MeasurementParameters,
) -> tuple[np.ndarray, list[int], float | None]:
    """The body in the slices of ``interiors`` before its outer surface is moved: necks cut,
    pedicles cut at the posterior wall and at the pedicle-free outline, their roots cut back.
    Returns the mask on the frame grid, the slices that carry pedicles and the level (HU) of the
    cortex's edge (None when it was not told or not asked for)."""
    spacing = settings.working_spacing_mm
    neck_radius_px = voxels_across(settings.neck_radius_mm, spacing)
    body = np.zeros(shape, dtype=bool)
    body[list(interiors)] = _cut_necks(np.stack(list(interiors.values())), centre, neck_radius_px)
    margin_px = int(round(settings.reference_margin_mm / spacing))
    pedicle_slices = _cut_at_posterior_wall(
        body, list(interiors), centre, settings.posterior_wall_quantile, margin_px
    )
    _restrict_to_pedicle_free_outline(body, list(interiors), pedicle_slices, margin_px)
    _cut_pedicle_roots(
        body, hu, parameters.bone_min_hu, list(interiors), centre, ROOT_PROFILE_QUANTILE, spacing
    )
    level = None
    if settings.refine_outer_edge:
        band_px = voxels_across(settings.edge_band_mm, spacing)
        halo_px = voxels_across(CEMENT_RIM_MM, spacing)
        level = _outer_edge_level(
            hu, body, list(interiors), band_px, parameters.cement_min_hu, halo_px, axis_row=centre[0]
        )
    return body, pedicle_slices, level


def _edge_trimmed(
    cut: tuple[np.ndarray, list[int], float | None],
    interiors: dict[int, np.ndarray],
    hu: np.ndarray,
    centre: tuple[int, int],
    settings: BodySegmentationSettings,
    parameters: MeasurementParameters,
    shell_level_hu: float | None = None,
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """A copy of a cut body (:func:`_cut_body`'s result for ``interiors``) with its outer surface
    moved to the cortex's edge when that lies above ``shell_level_hu`` (the lowest level, HU, the
    rings were closed at; by default the bone threshold). Returns the mask and the cross-sections
    kept (those of at least half the typical area)."""
    cut_body, pedicle_slices, level = cut
    body = cut_body.copy()
    floor = parameters.bone_min_hu if shell_level_hu is None else shell_level_hu
    if level is not None and level > floor:
        band_px = voxels_across(settings.edge_band_mm, settings.working_spacing_mm)
        _trim_outer_edge(hu, body, list(interiors), level, band_px, centre)
        _cut_pedicle_fillets(body, hu, parameters.bone_min_hu, list(interiors), pedicle_slices, centre)
    areas = {z: int(body[z].sum()) for z in interiors}
    typical = float(np.median(list(areas.values())))
    return body, {z: m for z, m in interiors.items() if areas[z] >= 0.5 * typical}


DEFICIENT_AREA_FRACTION = 0.9
"""A slab slice whose cross-section is smaller than this fraction of the body's large
cross-sections (upper quartile) may have lost part of its shell."""


def _deficient_slices(body: np.ndarray, interiors: dict[int, np.ndarray]) -> list[int]:
    """Slices of ``interiors`` (all within the slab) whose cross-section is markedly smaller than
    the body's.

    Near the endplates too: above and below the cement a faint cortex has nothing to prop it up,
    and the ring found there may be the cement's blurred halo rather than the body's wall. Such a
    slice only takes a larger cross-section found from the lowest level, never a smaller one.
    """
    if len(interiors) < 4:
        return []
    areas = {z: int(body[z].sum()) for z in interiors}
    large = float(np.quantile(list(areas.values()), 0.75))
    return [z for z, area in areas.items() if area < DEFICIENT_AREA_FRACTION * large]


LOST_THROUGHOUT_RATIO = 1.15
"""When the lowest-level cross-sections are typically this many times larger than the first
ones, the first lost part of the body in most slices, not in a few."""
FAINT_CORTEX_RATIO = 1.05
"""The same where the cortex is faint (its edge below the bone threshold): the first rings then
run inside the body all round."""


def _lost_throughout(
    body: np.ndarray,
    interiors: dict[int, np.ndarray],
    alternative: np.ndarray,
    alternative_interiors: dict[int, np.ndarray],
    faint_cortex: bool,
) -> bool:
    """Whether the first cross-sections (``body`` in the slices of ``interiors``) lost part of the
    body throughout, so that the lowest-level ones (``alternative``, their outline at the cortex's
    edge) replace them all.

    A faint cortex that closes at 226 HU nowhere leaves the first rings to whatever bright bone
    happens to enclose the axis (cement, the pedicles' cortex); cut at a posterior wall set by
    those, most cross-sections come out a fraction of the body and only the smallest of them look
    deficient beside the others. Where it does close, 226 HU lies above its edge and the rings
    run inside the body. So the lowest-level cross-sections replace the first ones when they are
    typically ``LOST_THROUGHOUT_RATIO`` times larger, or ``FAINT_CORTEX_RATIO`` times where the
    cortex is faint (``faint_cortex``: its edge lies below the bone threshold). A dense cortex's
    edge lies above the lowest level, whose rings then run outside it.
    """
    if not interiors or not alternative_interiors:
        return False
    first = float(np.median([body[z].sum() for z in interiors]))
    lowest = float(np.median([alternative[z].sum() for z in alternative_interiors]))
    return lowest > (FAINT_CORTEX_RATIO if faint_cortex else LOST_THROUGHOUT_RATIO) * first


def _on_ct_grid(
    body: np.ndarray,
    grid: VolumeGeometry,
    crop_grid: VolumeGeometry,
    frame: VertebraFrame,
    reach_below: float,
    reach_above: float,
) -> np.ndarray:
    """The body (its occupancy on the frame grid, :func:`_face_occupancy`) moved onto the CT
    sub-grid with its volume kept (see :mod:`mask_resampling`), within the slab between the
    endplate points (beyond them by ``reach_below`` and ``reach_above`` mm, where a concave
    endplate's rim continues) give or take half a CT voxel."""
    coverage = coverage_on(body, grid, crop_grid)
    k, j, i = np.nonzero(coverage > 0.0)
    points = frame.to_frame(crop_grid.voxel_centers_ras((k, j, i)))
    half_extent = 0.5 * float(np.abs(frame.rotation[:, 2] @ crop_grid.ijk_to_ras[:3, :3]).sum())
    inside = (points[:, 2] >= -reach_below - half_extent) & (
        points[:, 2] <= frame.height_mm + reach_above + half_extent
    )
    allowed = np.zeros(coverage.shape, dtype=bool)
    allowed[k[inside], j[inside], i[inside]] = True
    distance = np.zeros(coverage.shape, dtype=np.float32)
    distance[k, j, i] = np.hypot(points[:, 0], points[:, 1])  # mm from the axis
    volume_mm3 = float(coverage[allowed].sum()) * crop_grid.voxel_volume_mm3
    return volume_preserving_mask(coverage, volume_mm3, crop_grid.voxel_volume_mm3, allowed, distance)


def segment_vertebral_body(
    ct: CtVolume,
    upper_ras: np.ndarray,
    lower_ras: np.ndarray,
    parameters: MeasurementParameters | None = None,
    settings: BodySegmentationSettings | None = None,
) -> BodySegmentation:
    """Segment the vertebral body between two endplate midpoints (RAS mm).

    Returns the mask on a sub-grid (box) of the CT grid; ``BodySegmentation.box`` locates it.
    """
    parameters = parameters or MeasurementParameters()
    settings = settings or BodySegmentationSettings()
    frame = vertebra_frame(upper_ras, lower_ras)
    grid = frame_grid(frame, settings)
    corners = grid.ijk_to_ras_points(
        np.array(
            [
                [i, j, k]
                for i in (0, grid.shape[2] - 1)
                for j in (0, grid.shape[1] - 1)
                for k in (0, grid.shape[0] - 1)
            ]
        )
    )
    box = box_around_ras_points(ct.geometry, corners)
    if box is None:
        raise CementLeakageError("the endplate points lie outside the CT volume: place them on the vertebra")
    crop = ct.array_hu[box]
    crop_grid = ct.geometry.cropped(box)
    hu = resample_onto(to_sitk(crop.astype(np.float32), crop_grid), grid, linear=True, default_value=-1024.0)
    bone = hu >= parameters.bone_min_hu
    if settings.closing_3d_radius_mm > 0:
        radius = voxels_across(settings.closing_3d_radius_mm, settings.working_spacing_mm)
        bone = sitk.GetArrayFromImage(
            sitk.BinaryMorphologicalClosing(sitk.GetImageFromArray(bone.astype(np.uint8)), [radius] * 3)
        ).astype(bool)
    centre = (grid.shape[1] // 2, grid.shape[2] // 2)
    axial_mm = frame.to_frame(
        grid.ijk_to_ras_points(np.array([[0.0, 0.0, k] for k in range(grid.shape[0])]))
    )[:, 2]
    slab = np.flatnonzero((axial_mm > 0.0) & (axial_mm < frame.height_mm))

    shell_levels = [level for level in settings.shell_levels_hu if level <= parameters.bone_min_hu]
    shell_levels = [parameters.bone_min_hu] + [lvl for lvl in shell_levels if lvl < parameters.bone_min_hu]
    attempts = [(level, radius) for level in shell_levels for radius in settings.closing_radii_mm]
    shaping = dict(hu=hu, centre=centre, settings=settings, parameters=parameters)
    interiors = _cross_sections(hu, slab, axial_mm, frame.height_mm, centre, attempts, settings)
    if not interiors:
        raise CementLeakageError(
            "no vertebral body found between the endplate points: no bone ring encloses the axis between "
            "them; check the points and the bone threshold"
        )
    cut = _cut_body(interiors, shape=grid.shape, **shaping)
    body, interiors = _edge_trimmed(cut, interiors, **shaping)
    edge_level = cut[2]
    faint_cortex = edge_level is not None and edge_level <= parameters.bone_min_hu
    deficient = _deficient_slices(body, interiors)
    if deficient or faint_cortex:
        # A faint cortex closes at a higher level only where cement or bone props it up: the ring
        # found there leaves out the rest of the body. Those slices look again, lowest level first.
        low_first = sorted(attempts, key=lambda attempt: attempt[0])
        again = _cross_sections(hu, slab, axial_mm, frame.height_mm, centre, low_first, settings)
        if again:
            # Rings closed at the lowest level lie outside a faint cortex's edge by more than the
            # first ones: the outer surface is moved to the cortex's edge down to that level.
            cut_again = _cut_body(again, shape=grid.shape, **shaping)
            alternative, kept = _edge_trimmed(cut_again, again, **shaping, shell_level_hu=low_first[0][0])
            if _lost_throughout(body, interiors, alternative, kept, faint_cortex):
                body, interiors = alternative, kept
            elif deficient:
                # A few slices are mended with the outline the first rings would have had.
                alternative, kept = _edge_trimmed(cut_again, again, **shaping)
                for z in deficient:
                    if z in kept and alternative[z].sum() > body[z].sum():
                        body[z] = alternative[z]
    found = np.array(sorted(interiors))
    for z in slab:
        if int(z) not in interiors:
            nearest = found[np.argmin(np.abs(found - z))]
            body[z] = body[nearest]
    enclosed = _enclosed_by_shell(
        hu, body, slab, axial_mm, frame.height_mm, shell_levels, settings, parameters.cement_min_hu
    )
    fill = FaceFill()
    if enclosed is not None:
        body[:], fill = enclosed
        rows = np.flatnonzero(body.any(axis=(1, 2)))
        half = 0.5 * abs(axial_mm[1] - axial_mm[0])
        reach_below = max(0.0, -(float(axial_mm[rows[0]]) - half))
        reach_above = max(0.0, float(axial_mm[rows[-1]]) + half - frame.height_mm)
    else:
        reach_below, reach_above = _add_concave_endplate_rims(
            body, bone, slab, axial_mm, frame.height_mm, settings
        )
    warnings = []
    gap = _largest_inner_gap_mm(slab, interiors, axial_mm, frame.height_mm)
    if gap is not None:
        length, middle = gap
        warnings.append(
            f"no closed bone ring over {length:.1f} mm at {middle:.1f} mm above the lower endplate point: "
            "the points may span a disc (endplates of two vertebrae); mark the upper and lower endplates "
            "of the same vertebra"
        )
    missing = len(slab) - len(interiors)
    if missing > 0.5 * len(slab):
        warnings.append(
            f"the cortical shell was closed in only {len(interiors)} of {len(slab)} slices of the body; "
            "review the vertebral body mask"
        )

    native = _on_ct_grid(_face_occupancy(body, fill), grid, crop_grid, frame, reach_below, reach_above)
    return BodySegmentation(
        mask=native,
        geometry=crop_grid,
        box=box,
        frame=frame,
        slices_with_interior=len(interiors),
        slices_total=len(slab),
        warnings=warnings,
    )
