"""Automatic vertebral body segmentation between two endplate midpoints.

The body is found slice by slice in a grid aligned with the vertebra (:mod:`body_settings`,
:mod:`vertebra_frame`): bone is thresholded (226 HU and above by default, cement included),
small gaps in the cortical shell are closed, the enclosed trabecular interior around the
vertebral axis is taken with the shell around it, holes (cement, low-density trabecular bone)
are filled, and anything attached through a neck narrower than the pedicles (ribs, leaked
cement) is cut off by a morphological opening of the cross-section (:mod:`body_cross_sections`).
The pedicles are cut at the posterior wall and, in the slices that carry them, at the outline
of the slices that do not (the pedicle's anterior edge; :mod:`pedicle_cuts`); a leak whose blur
joins it to the wall is cut back to the wall's profile (:mod:`cement_bulges`). The outer surface
is then moved from the 226 HU iso-level, which blur pushes outward, to the cortex's own edge
(:mod:`cortex_edge`), and the fillets of bone where the pedicles join the side walls are cut
back to the outline the pedicle-free slices share. Slices in the middle of the body whose
cross-section comes out markedly smaller than the body's (a faint cortex that closed only where
cement props it up) look again, lowest shell level first (:mod:`ring_replacement`); when the
cross-sections found that way are typically much larger than the first ones (or a little, where
the cortex's edge lies below the bone threshold, or in front of the axis), the first lost part
of the body throughout (a faint cortex that closes at 226 HU nowhere, or inside its edge) and
all of them are replaced. Slices without a
closed interior (the endplates themselves) take the outline of the nearest slice that has one.
Where the cortical shell encloses the body in 3D (:mod:`shell_enclosure`; a faint cortex at the
shell levels at or below its edge, on thick slices the lowest first), its faces follow tilted and
concave endplates; a face that stops short of the smooth endplate surface fitted to all columns
(a hole in a faint shell) is raised to it, and the faces are moved onto the marked points to a
fraction of a slice (:mod:`endplate_faces`), and on thick slices a dished face is fitted to the
contours where the CT's slices cut it (:mod:`endplate_contours`) or, where that finds no dish or
a deeper one, read from the ring its rim draws in the CT's slices beyond the point, or taken
through a point whose next slice is open with the face's tilt (:mod:`endplate_rings`); elsewhere
a concave endplate's bony rim beyond the points is added slice by slice (:mod:`concave_rims`).
The mask is then resampled onto the CT grid and clipped to the slab between the two endplate
points (beyond them only where a concave endplate's rim continues).

The grid follows the line between the points, and the enclosure's columns run along it: where the
cross-sections found slice by slice show the body's own axis leaning against that line (points
marked off their endplates' middles in opposite directions; :mod:`body_axis_lean`), the points
are moved onto the axis and the body is segmented again along it; side to side, the tilt of the
faces of the first shell that closes gives the first such axis where it reads more of the lean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .body_axis_lean import (
    AXIS_ROUNDS,
    LATERAL_LEAN_MM,
    MAX_FACE_FOLLOWED_DEG,
    MAX_FOLLOWED_DEG,
    AxisLean,
    axis_lean,
    axis_lean_warning,
    face_tilt_lateral_mm,
    faces_lead_the_lean,
    faces_show_a_lean,
    lean_from_faces,
)
from .body_beyond_points import inside_the_body_warning, lies_inside, reach_beyond_points
from .body_cross_sections import cross_sections_by_slice
from .body_outline_ring import outline_ring, usual_outline
from .body_settings import BodySegmentationSettings, frame_grid
from .cement_bulges import cut_cement_bulges
from .cement_segmentation import has_thick_slices
from .concave_rims import add_concave_endplate_rims
from .cortex_edge import CEMENT_RIM_MM, CortexEdgeReading, read_outer_edge, trim_outer_edge
from .ct_volume import CtVolume
from .cutoff_margin import UNSEEN_SHARE_NAMED
from .endplate_contours import CtSlicePositions, ThickSliceFaces
from .endplate_faces import FACE_TOLERANCE_MM, FaceFill, face_occupancy, filled_voxels
from .endplate_rings import CtPlanes
from .endplate_surfaces import (
    SurfaceOffsets,
    endplate_surface_readings,
    in_cement_warning,
    kept_as_marked_warning,
    moved_points,
    points_on_surfaces,
    reads_surfaces,
    thick_slice_inside_warning,
    thick_slice_points_in_cement,
    thick_slice_points_inside,
    thick_slice_surface_offsets,
)
from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .mask_resampling import coverage_on, volume_preserving_mask
from .measurement import voxels_across
from .parameters import MeasurementParameters
from .pedicle_cuts import (
    FREE_WALL_SHORTFALL_MM,
    ROOT_PROFILE_QUANTILE,
    cut_at_posterior_wall,
    cut_pedicle_fillets,
    cut_pedicle_roots,
    restrict_to_pedicle_free_outline,
)
from .ring_replacement import deficient_slices, lost_throughout
from .shell_enclosure import enclosed_by_shell
from .sitk_bridge import box_around_ras_points, resample_onto, to_sitk
from .unseen_dishes import unseen_dishes, unseen_dishes_warning
from .vertebra_frame import VertebraFrame, vertebra_frame


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
    unseen_dish_share: float | None = None
    """On slices over 1 mm, what dishes ending short of the first CT slices that could show them
    could hold beyond faces taken flat through the points, as a share of the body's volume
    (:mod:`unseen_dishes`); None on thinner slices."""
    goes_on_past: tuple[bool, bool] = (False, False)
    """Whether the body goes on past the lower and the upper point to the end of the search, or
    further than any dish (:func:`body_beyond_points.lies_inside`): the point seems to lie inside
    a body."""
    axis_lean: AxisLean | None = None
    """The body's own axis against the line of the points used (:mod:`body_axis_lean`), read
    from the cross-sections found slice by slice; None when too few were found."""
    face_lateral_mm: float | None = None
    """The body's side-to-side lean against the line of the points used (mm between them), read
    from the tilt of its enclosed faces (:func:`body_axis_lean.face_tilt_lateral_mm`); None when
    no shell enclosed it."""
    along_own_axis: bool = False
    """Whether the body was segmented along its own axis, its points moved onto it
    (:mod:`body_axis_lean`): ``frame`` is then the axis's, not the marked points' line."""


def unseen_endplates_warning(edge_level_hu: float, bone_min_hu: float, geometry: VolumeGeometry) -> str:
    """The warning for a faint cortex (its outer edge at ``edge_level_hu``, at or under the bone
    threshold ``bone_min_hu``) whose shell, on the CT's slices over 1 mm (``geometry``), has gaps:
    its endplates beyond the points may fall between the slices.

    Between two slices of a point-sampled 2 mm CT a shallow dish's rim leaves no trace (a
    biconcave T6 at 90% height, 300 HU cortex: the plane 0.4 mm beyond its upper rim reads the
    disc's 81 HU), so the faces stay at the points and VBV reads low by the dishes' volume (0.84
    mm beyond each point of a 15.8 mm body: -5.0%).
    """
    slice_mm = float(np.max(geometry.spacing_mm))
    return (
        f"the vertebral body's cortex is faint (its edge at {edge_level_hu:.0f} HU, at or under the "
        f"{bone_min_hu:.0f} HU bone threshold) and its shell has gaps on these {slice_mm:.1f} mm slices: "
        "a concave endplate's rim beyond the endplate points may lie between two slices and be left out "
        "(two 0.8 mm dishes on a 16 mm body: VBV 5% low); review the body mask at "
        "the endplates, or measure on thinner slices"
    )


UNCLOSED_SHELL_WARNING = (
    "the vertebral body's cortical shell did not close around it in 3D (a leak into the disc, an "
    "opening in an endplate, or an endplate point marked inside the body): its faces were taken flat "
    "through the endplate points, so the dish of a concave endplate beyond them is left out (two 3 mm "
    "dishes of an 11 mm T5 hold a fifth of its volume), as is any body beyond a point off its "
    "endplate; review the body mask at the endplates and the points"
)
"""Said when no shell encloses the body and no concave rim was found slice by slice beyond the
points: its faces lie on the points whatever the endplates' shape."""


SPANNED_DISC_MIN_MM = 2.5
"""A run of slices this long (mm) without a closed bone ring inside the body suggests a disc."""


def _largest_inner_gap_mm(
    slab, interiors: dict, axial_mm: np.ndarray, height_mm: float, cement_slices: frozenset = frozenset()
):
    """Length and centre (mm along the axis) of the longest run of slab slices without a body
    cross-section that lies away from both endplates, if it is at least ``SPANNED_DISC_MIN_MM``.
    A run whose every slice is in ``cement_slices`` (the body there holds cement) is no disc: the
    bolus fills what a faint shell's ring would enclose (the real L2 of the tests with a bolus
    planted in it, its shell under the bone threshold: runs of 2.5-3.5 mm through the bolus)."""
    best = None
    run: list[int] = []
    for z in list(slab) + [None]:
        if z is not None and int(z) not in interiors:
            run.append(int(z))
            continue
        if run and all(z_run in cement_slices for z_run in run):
            run = []
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


def _cut_body(
    interiors: dict[int, np.ndarray],
    hu: np.ndarray,
    shape: tuple[int, int, int],
    centre: tuple[int, int],
    settings: BodySegmentationSettings,
    parameters: MeasurementParameters,
) -> tuple[np.ndarray, list[int], CortexEdgeReading | None]:
    """The body in the slices of ``interiors`` (cross-sections with their necks cut) before its
    outer surface is moved: pedicles cut at the posterior wall and at the pedicle-free outline,
    their roots cut back.
    Returns the mask on the frame grid, the slices that carry pedicles and the reading of the
    cortex's edge (None when it was not told or not asked for)."""
    spacing = settings.working_spacing_mm
    body = np.zeros(shape, dtype=bool)
    body[list(interiors)] = np.stack(list(interiors.values()))
    margin_px = int(round(settings.reference_margin_mm / spacing))
    pedicle_slices = cut_at_posterior_wall(
        body, list(interiors), centre, settings.posterior_wall_quantile, margin_px
    )
    restrict_to_pedicle_free_outline(
        body,
        list(interiors),
        pedicle_slices,
        margin_px,
        centre,
        voxels_across(FREE_WALL_SHORTFALL_MM, spacing),
    )
    cut_pedicle_roots(
        body, hu, parameters.bone_min_hu, list(interiors), centre, ROOT_PROFILE_QUANTILE, spacing
    )
    cut_cement_bulges(body, hu, list(interiors), centre, parameters.cement_min_hu, spacing)
    reading = None
    if settings.refine_outer_edge:
        band_px = voxels_across(settings.edge_band_mm, spacing)
        halo_px = voxels_across(CEMENT_RIM_MM, spacing)
        reading = read_outer_edge(
            hu, body, list(interiors), band_px, parameters.cement_min_hu, halo_px, axis_row=centre[0]
        )
    return body, pedicle_slices, reading


def _edge_trimmed(
    cut: tuple[np.ndarray, list[int], CortexEdgeReading | None],
    interiors: dict[int, np.ndarray],
    hu: np.ndarray,
    centre: tuple[int, int],
    settings: BodySegmentationSettings,
    parameters: MeasurementParameters,
    shell_level_hu: float | None = None,
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """A copy of a cut body (:func:`_cut_body`'s result for ``interiors``) with its outer surface
    moved to the cortex's edge (:meth:`CortexEdgeReading.outline_level`) when that lies above
    ``shell_level_hu`` (the lowest level, HU, the rings were closed at; by default the bone
    threshold). Returns the mask and the cross-sections kept (those of at least half the typical
    area)."""
    cut_body, pedicle_slices, reading = cut
    body = cut_body.copy()
    floor = parameters.bone_min_hu if shell_level_hu is None else shell_level_hu
    level = None if reading is None else reading.outline_level(parameters.bone_min_hu)
    if level is not None and level > floor:
        band_px = voxels_across(settings.edge_band_mm, settings.working_spacing_mm)
        trim_outer_edge(hu, body, list(interiors), level, band_px, centre)
        cut_pedicle_fillets(body, hu, parameters.bone_min_hu, list(interiors), pedicle_slices, centre)
    areas = {z: int(body[z].sum()) for z in interiors}
    typical = float(np.median(list(areas.values())))
    return body, {z: m for z, m in interiors.items() if areas[z] >= 0.5 * typical}


FAINT_FACE_SHORTFALL_MM = 1.0
"""Largest extension (mm) of the faces of a faint cortex's enclosure that stop short of the
marked points on the axis (a 1 mm endplate of 300 HU on 2 mm slices: 0.3-0.5 mm short)."""
FACE_SAMPLE_SPACING_MM = 0.25
"""Distance (mm) between the points that sample a CT voxel along its slice axis when the body is
moved onto the CT grid: the faces are placed on the frame grid to a fraction of its 0.5 mm
slices (:func:`endplate_faces.calibrate_to_endplate_points`), which samples 0.5 mm apart would
round to the nearest sample (up to 2% of a 12 mm body at each face)."""

WHOLLY_COVERED = 1.0 - 1e-6
"""Coverage (0 to 1) at and above which the body covers a CT voxel wholly (:func:`_fill_order`)."""


def _on_ct_grid(
    body: np.ndarray,
    fill: FaceFill,
    grid: VolumeGeometry,
    crop_grid: VolumeGeometry,
    frame: VertebraFrame,
    reach_below: float,
    reach_above: float,
    cement: np.ndarray,
) -> np.ndarray:
    """The body (bool on the frame grid, its end voxels filled by ``fill``) moved onto the CT
    sub-grid with its volume kept (see :mod:`mask_resampling`), within the slab between the
    endplate points (beyond them by ``reach_below`` and ``reach_above`` mm, where a concave
    endplate's rim continues) give or take half a CT voxel. ``cement`` (bool on ``crop_grid``)
    marks the CT voxels at or above the cement threshold.

    Voxels the body covers alike are taken in the order of :func:`_fill_order`.

    The volume kept is the body's own on the frame grid (:func:`endplate_faces.filled_voxels`),
    less the share of the coverage the slab leaves out; the coverage only ranks the voxels.
    Sampled at the CT voxels' centres in the slice plane, the coverage adds up to what the pixels'
    lattice holds of the outline, the same error in every slice of an untilted body (a faint T6 on
    1 x 1 x 1.25 mm voxels: 1.6% less than the body)."""
    coverage = coverage_on(face_occupancy(body, fill), grid, crop_grid, FACE_SAMPLE_SPACING_MM)
    k, j, i = np.nonzero(coverage > 0.0)
    points = frame.to_frame(crop_grid.voxel_centers_ras((k, j, i)))
    half_extent = 0.5 * float(np.abs(frame.rotation[:, 2] @ crop_grid.ijk_to_ras[:3, :3]).sum())
    along = points[:, 2]  # mm above the lower point
    inside = (along >= -reach_below - half_extent) & (along <= frame.height_mm + reach_above + half_extent)
    allowed = np.zeros(coverage.shape, dtype=bool)
    allowed[k[inside], j[inside], i[inside]] = True
    near_a_face = (np.abs(along) <= half_extent) | (np.abs(along - frame.height_mm) <= half_extent)
    in_face_slices = np.zeros(coverage.shape, dtype=bool)
    in_face_slices[k[near_a_face], j[near_a_face], i[near_a_face]] = True
    distance = np.zeros(coverage.shape, dtype=np.float32)
    distance[k, j, i] = np.hypot(points[:, 0], points[:, 1])  # mm from the axis
    frame_volume_mm3 = filled_voxels(body, fill) * grid.voxel_volume_mm3
    covered = float(coverage.sum())
    kept_share = float(coverage[allowed].sum()) / covered if covered > 0.0 else 0.0
    volume_mm3 = frame_volume_mm3 * kept_share
    order = _fill_order(coverage, distance, cement, in_face_slices)
    return volume_preserving_mask(coverage, volume_mm3, crop_grid.voxel_volume_mm3, allowed, order)


def _fill_order(
    coverage: np.ndarray, distance_mm: np.ndarray, cement: np.ndarray, in_face_slices: np.ndarray
) -> np.ndarray:
    """The tie-break for moving the body onto the CT grid (smaller first) among voxels that the
    body covers alike (``coverage``, 0 to 1), given each voxel's distance from the vertebral axis
    (``distance_mm``, mm), whether it holds cement (``cement``, bool, at or above the cement
    threshold) and whether its centre lies within half a CT voxel of an endplate point's plane
    along the axis (``in_face_slices``).

    A face taken flat within a CT slice covers that slice's voxels alike, in part. Endplates are
    flat or concave, and a concave one reaches further beyond its floor on the axis at its rim,
    so there the voxels the body covers in part are taken from the outline inward; but cement
    first, since cement fills the body up to the endplate and is kept in it rather than left
    outside as a leak into the disc. On the biconcave T12 at 90% height averaged over 2 mm
    slices, three eighths of a slice along (slice-phase benchmark), its face slices filled from
    the axis outward give body Dice 0.941; from the outline inward, 0.958. Everywhere else, and
    where the body covers voxels wholly, they are taken from the axis outward: the volume kept
    may be a little less than the voxels it covers wholly hold (the outline sampled at the
    pixels' centres), and what is left out is then a sliver of the outline, not a column along
    the axis; and along the side walls the outline is not pushed towards a leak or an osteophyte
    beside it."""
    cement_first = cement & in_face_slices
    rim_first = in_face_slices & (coverage < WHOLLY_COVERED)
    by_distance = np.where(rim_first, -distance_mm, distance_mm)
    return np.where(cement_first, -(float(distance_mm.max()) + 1.0), by_distance)


def _thick_slice_faces(
    ct: CtVolume,
    grid: VolumeGeometry,
    crop: np.ndarray,
    crop_grid: VolumeGeometry,
    edge_level_hu: float | None,
    settings: BodySegmentationSettings,
    faint_cortex: bool,
) -> ThickSliceFaces | None:
    """On thick slices, with the cortex's edge level (HU) known, what the enclosure needs to fit
    dished faces to the CT's slices (:mod:`endplate_contours`, :mod:`endplate_rings`): where they
    lie along the frame grid's columns, a terrace's reach (``FACE_TOLERANCE_MM`` or a slice,
    whichever is more), the slices themselves (``crop``, HU on ``crop_grid``) and whether the
    cortex is faint (``faint_cortex``)."""
    if edge_level_hu is None or not has_thick_slices(ct.geometry.spacing_mm):
        return None
    slices = CtSlicePositions.between(grid, crop_grid)
    if not slices.cross_the_columns():
        return None
    reach_mm = max(FACE_TOLERANCE_MM, float(np.max(ct.geometry.spacing_mm)))
    planes = CtPlanes(crop, crop_grid, grid, slices, ct.slice_profile_share())
    return ThickSliceFaces(
        slices, edge_level_hu, reach_mm / settings.working_spacing_mm, planes, faint_cortex
    )


def _segmented_on_surfaces(
    ct: CtVolume,
    upper_ras: np.ndarray,
    lower_ras: np.ndarray,
    readings: list[SurfaceOffsets],
    parameters: MeasurementParameters,
    settings: BodySegmentationSettings,
    follow_axis: bool,
    points_inside: set[str],
    lean_probe: bool = False,
) -> tuple[BodySegmentation | None, dict[str, str]]:
    """The body segmented again between the endplate points (RAS mm) moved onto the surfaces
    read (:func:`endplate_surfaces.points_on_surfaces`), with a warning for each point moved, or
    None when neither point moves; and the warnings for points kept as marked after every
    surface read for them proved wrong, by point (``"lower"``, ``"upper"``).

    ``follow_axis`` and ``lean_probe`` are passed on to each segmentation (see
    :func:`segment_vertebral_body`).
    ``points_inside`` names the points (``"lower"``, ``"upper"``) the body went on past
    (:func:`body_beyond_points.lies_inside`): a surface read beyond such a point and proved wrong
    lies inside a body, not necessarily the next one.
    ``readings`` are each point's offsets in turn (:func:`endplate_surfaces.endplate_surface_readings`),
    those not read left out. A point moved that the body then goes on past (to the end of the
    search, or further than any dish) was moved wrong: outward, onto the next vertebra's far
    endplate past a narrow disc, or onto a surface in the marrow; in, into the marrow. That point
    takes its next reading that differs, then none (kept as marked, and named), the other point's
    move is kept, and the body is segmented again. A point moved out of the CT (a body cut by the
    field of view) leaves both as marked.
    """
    pending = {
        "lower": _distinct([reading.lower_mm for reading in readings]) + [None],
        "upper": _distinct([reading.upper_mm for reading in readings]) + [None],
    }
    rejected: dict[str, list[float]] = {"lower": [], "upper": []}
    while True:
        offsets = SurfaceOffsets(lower_mm=pending["lower"][0], upper_mm=pending["upper"][0])
        upper_moved, lower_moved, moves = points_on_surfaces(upper_ras, lower_ras, offsets)
        kept = {
            name: kept_as_marked_warning(name, rejected[name], name in points_inside)
            for name in ("lower", "upper")
            if rejected[name] and pending[name][0] is None
        }
        if not moves or not all(ct.geometry.contains_ras(point) for point in (upper_moved, lower_moved)):
            return None, kept
        moved = segment_vertebral_body(
            ct,
            upper_moved,
            lower_moved,
            parameters,
            settings,
            follow_surfaces=False,
            follow_axis=follow_axis,
            lean_probe=lean_probe,
        )
        wrong = [shifted and past for shifted, past in zip(moved_points(offsets), moved.goes_on_past)]
        if not any(wrong):
            moved.warnings[:0] = moves + list(kept.values())
            return moved, {}
        for name, point_wrong in zip(("lower", "upper"), wrong):
            if point_wrong:
                rejected[name].append(pending[name][0])
                pending[name] = pending[name][1:]


SAME_READING_MM = 0.05
"""Readings of one surface closer than this (mm) are one: a point moved onto either lands in the
same place (a T6's lengthened and 3 mm searches read 2.2918 mm and 2.2924 mm)."""


def _distinct(offsets: list[float | None]) -> list[float]:
    """The ``offsets`` read (not None), without those within ``SAME_READING_MM`` of the one
    before."""
    read = [offset for offset in offsets if offset is not None]
    return [
        offset
        for index, offset in enumerate(read)
        if index == 0 or abs(offset - read[index - 1]) > SAME_READING_MM
    ]


def _degrees_between(first: np.ndarray, second: np.ndarray) -> float:
    """The angle (degrees) between two directions."""
    cosine = float(first @ second) / float(np.linalg.norm(first) * np.linalg.norm(second))
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def _segmented_along_axis(
    ct: CtVolume,
    frame: VertebraFrame,
    lean: AxisLean,
    parameters: MeasurementParameters,
    settings: BodySegmentationSettings,
    max_deg: float = MAX_FOLLOWED_DEG,
) -> tuple[BodySegmentation | None, bool]:
    """The body segmented again between the points of ``frame`` moved onto the body's own axis
    (``lean``, :meth:`AxisLean.points_on_axis`), with a warning. The axis is read again on each
    segmentation, and the points moved onto it afresh, until what is left of the lean has
    settled (``AXIS_ROUNDS`` at most: read on cross-sections that still lean, the lean comes out
    short of the whole). Each round reads the endplates' surfaces where the slices allow
    (:mod:`endplate_surfaces`), whether or not the points as given were moved onto them: a point
    moved square to the axis keeps its height along it, and off the middle of a sloping endplate
    that is not the middle's. A wedged L2 with osteophytes on 1 mm slices, its points 4 mm in front
    of and behind their middles, was segmented with its upper point 1.1 mm inside the body (VBV
    -5.2%) before, and reads +0.9% with the surfaces read.

    The rounds stop at one whose points leave the CT or tilt more than ``max_deg`` (degrees) from
    the line as marked, that finds no body, or whose lean turns back past the axis it followed
    (:meth:`AxisLean.overshot`); the last round before that whose lean is within the limits and
    whose shell closed is kept, and with none such, None; the flag says whether the rounds
    stopped at a lean that turned back. A body whose shell did not close has its
    faces flat through the points, whatever lies beyond them: the demo's L1, its upper point 7.7
    mm inside the body and 2.3 mm to one side, its lower one 3.6 mm out in the disc and 1.4 mm to
    the other, read VBV +5.7% as first segmented and +14.8% followed, the shell open. Readings
    that do not settle so follow the body's shape rather than a tilt of its axis: the real L2 of
    the tests, its points on one column through the labelled body, reads 2.8 mm side to side, then
    -1.7 mm once followed (its front half's centroid moves -0.8 mm to +1.0 mm from 20% to 80% of
    the height, while the labelled endplates' centroids move the other way).

    A lean read short of the whole still points the right way: a wedged L4 tilted 15 degrees, its
    points 6 mm behind and in front of its endplates' middles, reads 5.5 mm of the 12 mm, then
    5.3 mm and 1.8 mm of what is left.
    """
    marked = frame.endplate_points_ras
    kept, turned_back = None, False
    current, current_frame = lean, frame
    for _ in range(AXIS_ROUNDS):
        upper, lower = current.points_on_axis(current_frame, marked)
        if not all(ct.geometry.contains_ras(point) for point in (upper, lower)):
            break
        if _degrees_between(upper - lower, frame.axial_ras) > max_deg:
            break
        try:
            result = segment_vertebral_body(
                ct,
                upper,
                lower,
                parameters,
                settings,
                follow_surfaces=True,
                follow_axis=False,
                lean_probe=True,
            )
        except CementLeakageError:
            break
        read = result.axis_lean
        if read is None or read.overshot(current):
            turned_back = read is not None
            break
        if not read.named and UNCLOSED_SHELL_WARNING not in result.warnings:
            kept = result
        current, current_frame = read, result.frame
        if read.settled:
            break
    if kept is None:
        return None, turned_back
    used = kept.frame.endplate_points_ras
    moved = (float(np.linalg.norm(used[0] - marked[0])), float(np.linalg.norm(used[1] - marked[1])))
    (upper_at, lower_at) = frame.to_frame(np.array(used))
    followed = AxisLean(float(lower_at[0]), float(upper_at[0]), float(lower_at[1]), float(upper_at[1]))
    # The height the moved points span along the line as marked gives the angle between the two.
    kept.warnings.insert(0, axis_lean_warning(followed, float(upper_at[2] - lower_at[2]), moved))
    kept.along_own_axis = True
    return kept, turned_back


def _enclosure_levels(
    shell_levels: list[float], edge_level_hu: float | None, faint_cortex: bool, geometry: VolumeGeometry
) -> list[float]:
    """The shell levels (HU) the body is enclosed at (:func:`shell_enclosure.enclosed_by_shell`),
    in the order tried, given the cortex's edge level (``edge_level_hu``) and the CT's ``geometry``.

    A faint cortex's shell closes at the higher levels inside its edge, where its rings run
    (dished endplates lose their rims): it is enclosed at the levels at or below its edge, and
    an endplate that partial volume leaves under them stops short of its point: the kept
    enclosure's faces are extended to the points (``FAINT_FACE_SHORTFALL_MM`` at most). On thick
    slices a faint endplate is averaged with the disc and marrow along the slice and reads
    fainter than the side wall whose edge set the levels: a dished endplate's walls fall under
    the higher levels, so the lowest level that encloses the body comes first (a faint
    biconcave T12 on slice-averaged 2 mm slices, 0.45 mm blur: enclosed at 190 HU VBV -5.1%,
    at 130 HU -2.7%)."""
    if not faint_cortex or edge_level_hu is None:
        return shell_levels
    levels = [level for level in shell_levels if level <= edge_level_hu] or shell_levels[-1:]
    return sorted(levels) if has_thick_slices(geometry.spacing_mm) else levels


def _probed_face_lean(
    hu: np.ndarray,
    body: np.ndarray,
    slab: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    levels: list[float],
    settings: BodySegmentationSettings,
    parameters: MeasurementParameters,
    own_slices: np.ndarray,
) -> float | None:
    """The side-to-side lean (mm between the points, :func:`body_axis_lean.face_tilt_lateral_mm`)
    of the faces of the first shell that closes around ``body`` at the shell ``levels`` (HU;
    :func:`shell_enclosure.enclosed_by_shell` with ``first_closed``), or None. Frame grid
    ``[z, y, x]``: ``hu`` (HU), ``body`` (bool, the cross-sections found in ``own_slices``), the
    slices ``slab`` between the points, ``axial_mm`` above the lower point, the upper one at
    ``height_mm``. The body is not changed."""
    probe = enclosed_by_shell(
        hu,
        body,
        slab,
        axial_mm,
        height_mm,
        levels,
        settings,
        parameters.cement_min_hu,
        own_slices=own_slices,
        first_closed=True,
    )
    if probe is None:
        return None
    return face_tilt_lateral_mm(probe.mask, axial_mm, height_mm, settings.working_spacing_mm)


def segment_vertebral_body(
    ct: CtVolume,
    upper_ras: np.ndarray,
    lower_ras: np.ndarray,
    parameters: MeasurementParameters | None = None,
    settings: BodySegmentationSettings | None = None,
    *,
    follow_surfaces: bool = True,
    follow_axis: bool = True,
    lean_probe: bool = False,
) -> BodySegmentation:
    """Segment the vertebral body between two endplate midpoints (RAS mm).

    On thin slices, with ``follow_surfaces``, a point that lies off its endplate's outer surface
    along the axis (inside the body or out in the disc) is moved onto it and the body segmented
    again, with a warning (:mod:`endplate_surfaces`); on thicker slices a point whose endplate's
    surface reads further beyond it than a point on it can is named, not moved. With
    ``follow_axis``, where the line of the points leans against the body's own axis
    (:mod:`body_axis_lean`: read from the cross-sections, or, where they read none, from the
    side-to-side tilt of the enclosed faces), the points are moved onto that axis and the body
    segmented again along it, with a warning. With ``lean_probe`` (a round along the axis, which
    keeps no body whose lean is named), a body whose lean is named or unread is not enclosed in 3D:
    its mask is its cross-sections found slice by slice, and its lean what is read. Returns the mask on a
    sub-grid (box) of the CT grid; ``BodySegmentation.box`` locates it, ``BodySegmentation.frame``
    the frame of the points used.
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
    interiors = cross_sections_by_slice(hu, slab, axial_mm, frame.height_mm, centre, attempts, settings)
    if not interiors:
        raise CementLeakageError(
            "no vertebral body found between the endplate points: no bone ring encloses the axis between "
            "them; check the points and the bone threshold"
        )
    cut = _cut_body(interiors, shape=grid.shape, **shaping)
    body, interiors = _edge_trimmed(cut, interiors, **shaping)
    edge_level = None if cut[2] is None else cut[2].level()
    typical_area = float(np.median([interior.sum() for interior in interiors.values()]))
    ring = outline_ring(
        usual_outline(list(interiors.values())), centre, settings.working_spacing_mm, parameters.cement_min_hu
    )
    beyond = reach_beyond_points(
        hu, axial_mm, frame.height_mm, centre, attempts, settings, typical_area, ring
    )
    inside = tuple(lies_inside(reach, frame.height_mm, settings) for reach in beyond)
    named_inside = {
        name: inside_the_body_warning(name, reach.held_mm, reach.up_to_plate)
        for name, reach, lies in zip(("lower", "upper"), beyond, inside)
        if lies
    }
    kept_as_marked: dict[str, str] = {}
    thick = not reads_surfaces(ct.geometry.spacing_mm)
    surface_arguments = (
        hu,
        axial_mm,
        centre,
        frame.height_mm,
        edge_level,
        parameters.cement_min_hu,
        settings.working_spacing_mm,
        beyond,
    )
    if edge_level is not None and not thick and follow_surfaces:
        moved, kept_as_marked = _segmented_on_surfaces(
            ct,
            upper_ras,
            lower_ras,
            endplate_surface_readings(*surface_arguments),
            parameters,
            settings,
            follow_axis,
            set(named_inside),
            lean_probe,
        )
        if moved is not None:
            return moved
    elif edge_level is not None and thick:
        # Over 1 mm the surface read is not placed to move a point, only to name one inside.
        slice_mm = float(np.max(ct.geometry.spacing_mm))
        offsets = thick_slice_surface_offsets(*surface_arguments)
        for name, offset in thick_slice_points_inside(offsets, slice_mm).items():
            named_inside.setdefault(name, thick_slice_inside_warning(name, offset, slice_mm, frame.height_mm))
        in_cement = thick_slice_points_in_cement(
            offsets,
            hu,
            axial_mm,
            centre,
            frame.height_mm,
            parameters.cement_min_hu,
            settings.working_spacing_mm,
            beyond,
        )
        for name, held_mm in in_cement.items():
            named_inside.setdefault(name, in_cement_warning(name, held_mm, slice_mm))
    # A point kept as marked is named once: its warning says the body went on past it.
    point_warnings = [text for name, text in named_inside.items() if name not in kept_as_marked]
    point_warnings.extend(kept_as_marked.values())
    faint_cortex = cut[2] is not None and cut[2].is_faint(parameters.bone_min_hu)
    deficient = deficient_slices(body, interiors)
    if deficient or faint_cortex:
        # A faint cortex closes at a higher level only where cement or bone props it up: the ring
        # found there leaves out the rest of the body. Those slices look again, lowest level first.
        low_first = sorted(attempts, key=lambda attempt: attempt[0])
        again = cross_sections_by_slice(hu, slab, axial_mm, frame.height_mm, centre, low_first, settings)
        if again:
            # Rings closed at the lowest level lie outside a faint cortex's edge by more than the
            # first ones: the outer surface is moved to the cortex's edge down to that level.
            cut_again = _cut_body(again, shape=grid.shape, **shaping)
            alternative, kept = _edge_trimmed(cut_again, again, **shaping, shell_level_hu=low_first[0][0])
            if lost_throughout(body, interiors, alternative, kept, faint_cortex, centre[0]):
                body, interiors = alternative, kept
            elif deficient:
                # A few slices are mended with the outline the first rings would have had: a dense
                # cortex's at its edge, which lies above the bone threshold. A faint cortex's edge
                # lies below it, and its lowest-level rings outside that edge (a faint T12 on 2 mm
                # slices: 5% larger than the true cross-section, 0.6% smaller once moved to it), so
                # they are mended moved to the edge.
                if not faint_cortex:
                    alternative, kept = _edge_trimmed(cut_again, again, **shaping)
                for z in deficient:
                    if z in kept and alternative[z].sum() > body[z].sum():
                        body[z] = alternative[z]
    found = np.array(sorted(interiors))
    for z in slab:
        if int(z) not in interiors:
            nearest = found[np.argmin(np.abs(found - z))]
            body[z] = body[nearest]
    lean = axis_lean(body, found, axial_mm, frame.height_mm, centre, settings.working_spacing_mm)
    # Between a point that lies inside the body and the other the cross-sections are part of the
    # body, whose lean need not be its axis's: a real L2 whose upper point was marked at 60% of
    # its height leaned 13 degrees there, and segmented along that, held 44% of the body instead
    # of the 50% between the points. Beside the point named, the lean is named, not followed.
    enclosure_levels = _enclosure_levels(shell_levels, edge_level, faint_cortex, ct.geometry)
    lean_warned, faces_followed = False, False
    if follow_axis and lean is not None and lean.named:
        if any(inside) or not lean.followed(frame.height_mm):
            point_warnings.append(axis_lean_warning(lean, frame.height_mm, None))
            lean_warned = True
        else:
            along, turned_back = None, False
            # The enclosed faces read a side-to-side lean whole where the cross-sections read part
            # of it, or read it the wrong way: the rounds start from them, and from the
            # cross-sections where that fails.
            if abs(lean.lateral_mm) > LATERAL_LEAN_MM:
                probed = _probed_face_lean(
                    hu, body, slab, axial_mm, frame.height_mm, enclosure_levels, settings, parameters, found
                )
                if faces_lead_the_lean(probed, lean, frame.height_mm):
                    by_faces = lean_from_faces(lean, probed)
                    if by_faces.followed(frame.height_mm, MAX_FACE_FOLLOWED_DEG):
                        along, turned_back = _segmented_along_axis(
                            ct, frame, by_faces, parameters, settings, MAX_FACE_FOLLOWED_DEG
                        )
                        faces_followed = True
            if along is None:
                along, turned_back = _segmented_along_axis(ct, frame, lean, parameters, settings)
            # Cut by a line that leans, the cross-sections read front to back the less surely: where
            # the rounds that followed both ways turned back, they start again from the side-to-side
            # lean alone, and read the front-to-back one from there (the real L2 of the tests, its
            # points 3 mm apart front to back: Dice 0.881 against its labels along the line as
            # marked, with nothing said; 0.915 so, as with its points on one column).
            side_only = AxisLean(lean.lower_lateral_mm, lean.upper_lateral_mm, 0.0, 0.0)
            if along is None and turned_back and lean.anterior_mm != 0.0 and side_only.named:
                along, turned_back = _segmented_along_axis(ct, frame, side_only, parameters, settings)
            if along is not None:
                return along
            # A lean that turned back is the body's shape, as far as a shape moves cross-sections;
            # one that could not be followed, or is further, leans the mask with the line.
            if not turned_back or not lean.within_shape:
                point_warnings.append(axis_lean_warning(lean, frame.height_mm, None))
                lean_warned = True
    enclosed = None
    if not (lean_probe and (lean is None or lean.named)):
        enclosed = enclosed_by_shell(
            hu,
            body,
            slab,
            axial_mm,
            frame.height_mm,
            enclosure_levels,
            settings,
            parameters.cement_min_hu,
            shortfall_mm=FAINT_FACE_SHORTFALL_MM if max(enclosure_levels) < parameters.bone_min_hu else 0.0,
            ct_voxel_mm=float(np.max(ct.geometry.spacing_mm)),
            own_slices=found,
            thick_slices=_thick_slice_faces(ct, grid, crop, crop_grid, edge_level, settings, faint_cortex),
        )
    fill = FaceFill()
    face_lateral = None
    if enclosed is not None:
        body[:], fill = enclosed.mask, enclosed.fill
        face_lateral = face_tilt_lateral_mm(body, axial_mm, frame.height_mm, settings.working_spacing_mm)
        rows = np.flatnonzero(body.any(axis=(1, 2)))
        half = 0.5 * abs(axial_mm[1] - axial_mm[0])
        reach_below = max(0.0, -(float(axial_mm[rows[0]]) - half))
        reach_above = max(0.0, float(axial_mm[rows[-1]]) + half - frame.height_mm)
    else:
        reach_below, reach_above = add_concave_endplate_rims(
            body, bone, slab, axial_mm, frame.height_mm, settings, cement=hu >= parameters.cement_min_hu
        )
    # Cross-sections square to a line that leans far against the body are cut by its endplates,
    # and read little or no lean; the enclosed faces tilt with the body's axis.
    if follow_axis and not any(inside) and faces_show_a_lean(face_lateral, lean, frame.height_mm):
        by_faces = lean_from_faces(lean, face_lateral)
        if by_faces.followed(frame.height_mm, MAX_FACE_FOLLOWED_DEG) and not faces_followed:
            along, _ = _segmented_along_axis(ct, frame, by_faces, parameters, settings, MAX_FACE_FOLLOWED_DEG)
            if along is not None:
                return along
        if not lean_warned:
            point_warnings.append(axis_lean_warning(by_faces, frame.height_mm, None))
    warnings = []
    # Only the slices without a ring of their own can make a run.
    cement_slices = frozenset(
        int(z) for z in slab if int(z) not in interiors and (hu[z][body[z]] >= parameters.cement_min_hu).any()
    )
    gap = _largest_inner_gap_mm(slab, interiors, axial_mm, frame.height_mm, cement_slices)
    if gap is not None:
        length, middle = gap
        warnings.append(
            f"no closed bone ring over {length:.1f} mm at {middle:.1f} mm above the lower endplate point: "
            "the points may span a disc (endplates of two vertebrae); mark the upper and lower endplates "
            "of the same vertebra"
        )
    warnings.extend(point_warnings)
    if enclosed is None and reach_below == 0.0 and reach_above == 0.0:
        warnings.append(UNCLOSED_SHELL_WARNING)
    # Over 1 mm no face is placed on a surface read (endplate_surfaces): a faint shell with gaps
    # leaves the endplates unseen, and a dish between the point and the next slice that could show
    # it too.
    dishes = None
    if thick:
        slices = CtSlicePositions.between(grid, crop_grid)
        if slices.cross_the_columns():
            dishes = unseen_dishes(body, fill, slices, axial_mm, frame.height_mm)
    if faint_cortex and thick and (enclosed is None or not enclosed.whole):
        warnings.append(unseen_endplates_warning(float(edge_level), parameters.bone_min_hu, ct.geometry))
    elif dishes is not None and dishes.share >= UNSEEN_SHARE_NAMED and UNCLOSED_SHELL_WARNING not in warnings:
        warnings.append(unseen_dishes_warning(dishes, float(np.max(ct.geometry.spacing_mm))))
    missing = len(slab) - len(interiors)
    if missing > 0.5 * len(slab):
        warnings.append(
            f"the cortical shell was closed in only {len(interiors)} of {len(slab)} slices of the body; "
            "review the vertebral body mask"
        )

    native = _on_ct_grid(
        body, fill, grid, crop_grid, frame, reach_below, reach_above, crop >= parameters.cement_min_hu
    )
    return BodySegmentation(
        mask=native,
        geometry=crop_grid,
        box=box,
        frame=frame,
        slices_with_interior=len(interiors),
        slices_total=len(slab),
        warnings=warnings,
        unseen_dish_share=None if dishes is None else dishes.share,
        goes_on_past=inside,
        axis_lean=lean,
        face_lateral_mm=face_lateral,
    )
