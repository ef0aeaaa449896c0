"""The vertebral body as the region its cortical shell encloses in 3D on the frame grid: its
faces follow tilted, dished and pitted endplates rather than the marked points (see
:mod:`endplate_faces` for how they are checked, smoothed and calibrated)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from . import slicewise
from .body_settings import BodySegmentationSettings
from .cortex_edge import level_offset_px
from .endplate_contours import ThickSliceFaces, dished_faces_on_contours
from .endplate_faces import (
    FACE_FIT_INSET_MM,
    FACE_TOLERANCE_MM,
    FaceFill,
    calibrate_to_endplate_points,
    columns_within_outline,
    faces_meet_the_points,
    fill_beyond,
)
from .endplate_rings import faces_on_rings
from .faint_disc_cement import FAINT_CEMENT_MIN_HU
from .measurement import bounding_box, grown_box, voxels_across

ENCLOSED_VOLUME_RANGE = (0.7, 1.6)
"""The shell-enclosed body is used when its volume is within this range of the slab's body: a
biconcave fracture to 60% of the rim's height holds about a third more than its slab, and the
enclosed region, before its faces are calibrated and its columns kept within the outline, up to
half as much again."""
ENCLOSED_COVERAGE_MIN = 0.95
"""The shell-enclosed body must hold this fraction of the body found slice by slice between the
endplate points: the shell may add concave rims and take off tilted corners, but a shell with
holes encloses only part of the body."""
CEMENT_HALO_BLUR_MM = 1.0
"""Beyond the endplate points, cement's blur makes its surroundings look like bone out to about a
CT voxel (the voxel's partial volume, then the interpolation between voxels onto the frame grid)
and this much further (mm): 1.5 mm on 0.5 mm voxels, 3 mm on 2 mm slices, where a leak into the
disc otherwise leaves a lid of blurred cement that joins the body to the next vertebra."""

FAINT_LEAK_BRIDGE_MM = 1.0
"""A thin leak into the disc reads over the cement's faint level (``FAINT_CEMENT_MIN_HU``) only at
its thickest; past the halo around that core, the blur of its thinner edge still reads over the
shell levels, a tube up to about 2 mm thick from the endplate to the next vertebra. Beyond the
points, the enclosed region's cross-sections are opened by this radius (mm) when such a leak is
taken out of the shell, which cuts such bridges (:func:`_without_thin_bridges`)."""

FAINT_RETRY_MIN_RIMS = 0.1
"""The shell enclosed with a faint leak taken out of it replaces the faces on the points only
when what it holds beyond the points is at least this share of the slab's body: the rims of
dished endplates (10-35% on the phantom sweeps), which faces on the points leave out. Faces that
only follow flat endplates beyond the points, where faces on the points are right, stray by up to
6% on 2 mm slices. A shell one of whose faces the CT's thick slices placed through its point
(``Enclosure.slices_placed_a_face``) does not stray so, and is kept whatever it holds. On 2 mm
slices, a biconcave T6 at 90% height with a faint leak in its upper disc, its 0.84 mm dishes
holding 5% of it: with a faint cortex, averaged over each slice, its lower dish read in the slice
beyond its point, VBV -6.3% from the faces on the points, -1.8% from the shell; with a normal
cortex, sampled at the slices' centres, -4.4% and -1.4%. The same body with flat endplates, at the
seven slice positions where no shell closed but this one, reads -0.5% to +0.2% (-0.4% to +0.7%
from the faces on the points)."""


RIM_MIN_MM = 0.5
"""Mean reach (mm) beyond a point of the enclosed columns in the outer quarter of the outline's
depth from which they are a dish's rims (see ``RIM_INNER_SHARE``)."""
RIM_INNER_SHARE = 0.3
"""Beyond a point, the columns in the inner half of the outline's depth reach less than this
share of the outer quarter's mean where the enclosure holds a dish's rims. A biconcave T7 at 88%
height on 1.25 mm slices with a faint leak in its upper disc, its dishes holding 7% of it:
0.79 and 0.76 mm along the outline, 0.15 and 0.20 mm in the inner half (VBV -5.8% from the faces
on the points, -0.6% from the shell). Past flat endplates such shells lie across the face
beyond at least one point: a T5 on 2 mm slices tilted 11 degrees reached 0.37 mm in the inner
half below it and 0.58 mm along the outline (VBV +1.1% from the faces on the points, +7.1% from
the shell). Over the 850 sweep phantoms the rule changes one other result, a T7 with flat
endplates on 2 mm slices and leaks into both discs: 0.53 mm along the outline above it, 0.07 mm
in the inner half (VBV +0.4% from the faces on the points, +0.9% from the shell)."""
RIM_NONE_MM = 0.1
"""Mean reach (mm) beyond a point of the enclosed columns under which the enclosure holds nothing
there."""

OPEN_END_AREA_FRACTION = 0.1
"""An enclosed region whose cross-section in the last slice the search allows beyond an endplate
point (``endplate_extension`` of the height) is at least this share of the slab's mean
cross-section reaches the search's limit there; see ``OPEN_END_NECK_RATIO``."""
OPEN_END_NECK_RATIO = 3.0
"""A region that reaches the search's limit beyond a point (``OPEN_END_AREA_FRACTION``) through
a neck, a cross-section this many times smaller than the one at the limit, was closed there by
the limit, not by the shell: the shell opened into the disc and reached the next vertebra (a
leak's halo taken out of the upper endplate of a T6 on 2 mm slices, one slice 0.4 mm short of
the next vertebra's endplate reading over 130 HU across its 4.5 mm disc: VBV +22%). The rim of a
deep dish also reaches the limit, but narrows all the way to it."""


@dataclass(frozen=True)
class Enclosure:
    """The body its cortical shell encloses, on the frame grid."""

    mask: np.ndarray
    """bool ``[z, y, x]``."""
    fill: FaceFill
    """The share of their end voxels its columns fill (:func:`calibrate_to_endplate_points`)."""
    whole: bool
    """False when every shell that closed had holes and the body found slice by slice filled
    what the best one left out: its faces beyond the points are then only where that shell
    closed."""
    slices_placed_a_face: bool = False
    """True when the CT's thick slices beyond the points placed at least one face through its
    point (:func:`~.endplate_rings.faces_on_rings`): what the shell held beyond the points no
    longer sets that face."""


def cement_halo_px(ct_voxel_mm: float, working_spacing_mm: float) -> int:
    """Radius (frame-grid voxels of ``working_spacing_mm``) around cement that is not shell, for a
    CT whose largest voxel spacing is ``ct_voxel_mm`` (mm); see ``CEMENT_HALO_BLUR_MM``."""
    return voxels_across(CEMENT_HALO_BLUR_MM + ct_voxel_mm, working_spacing_mm)


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


def enclosed_by_shell(
    hu: np.ndarray,
    body: np.ndarray,
    slab: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    shell_levels: list[float],
    settings: BodySegmentationSettings,
    cement_min_hu: float = 1500.0,
    shortfall_mm: float = 0.0,
    ct_voxel_mm: float = 0.5,
    own_slices: np.ndarray | None = None,
    thick_slices: ThickSliceFaces | None = None,
    first_closed: bool = False,
) -> Enclosure | None:
    """The body as the region its cortical shell encloses in 3D, within the body's outline.

    Side wall and both endplates enclose the body; the disc, the canal and the gaps between
    processes are open, so filling the shell's cavities in 3D follows the endplates wherever
    they lie: tilted (wedge fractures), dimpled (biconcave fractures, Schmorl's nodes) or
    concave, rather than cutting at the marked points. The outline (x, y) is the union of the
    slab's cross-sections. The faces of the enclosure kept that stop short of the points on the
    axis are extended by up to ``shortfall_mm`` (see :func:`calibrate_to_endplate_points`).
    Beyond the points, cement (``cement_min_hu`` and up) and its blur are not shell: the blur
    within a frame voxel's halo, and, when no shell closes so with the closing of a round,
    within the halo of a voxel of the CT, whose largest spacing is ``ct_voxel_mm`` (mm,
    :func:`cement_halo_px`), before the next round's wider closing.
    When every shell that closes has holes, the best one is merged with the body found slice by
    slice in ``own_slices`` (the slab's slices whose cross-section closed a ring of its own; all
    of the slab by default).
    On thick slices (``thick_slices`` given), a dished face of the body kept is fitted to the
    contours where the CT's slices cut it (:mod:`endplate_contours`).
    When no shell closes whole so and voxels beyond the points are as bright as a thin leak into
    the disc that partial volume keeps under ``cement_min_hu`` (``FAINT_CEMENT_MIN_HU`` and up),
    the rounds are tried again with those voxels, the halo of a CT voxel around them and the thin
    blur past it not shell either; a whole shell found so is kept when it holds the rims of dished
    endplates beyond the points (``FAINT_RETRY_MIN_RIMS``) or the CT's slices placed one of its faces.
    With ``first_closed``, the first shell that closes is kept, whole or not, and nothing is tried
    again: enough to read the faces' tilt (:func:`body_axis_lean.face_tilt_lateral_mm`), and no
    more costly where no shell closes whole (a line leaning front to back against the demo's L1:
    one candidate instead of all of a round's, 1.6 s).
    Returns the enclosure (:class:`Enclosure`), or None when no shell level closes (the slab's
    body is kept).
    """
    arguments = (hu, body, slab, axial_mm, height_mm, shell_levels, settings, cement_min_hu)
    options = {
        "shortfall_mm": shortfall_mm,
        "ct_voxel_mm": ct_voxel_mm,
        "own_slices": own_slices,
        "thick_slices": thick_slices,
        "first_closed": first_closed,
    }
    enclosure = _enclosed(*arguments, faint_leaks=False, **options)
    if first_closed:
        return enclosure
    if (enclosure is not None and enclosure.whole) or not _faint_cement_beyond_points(
        hu, axial_mm, height_mm, cement_min_hu
    ):
        return enclosure
    second = _enclosed(*arguments, faint_leaks=True, **options)
    if second is None or not second.whole:
        return enclosure
    beyond = (axial_mm < 0.0) | (axial_mm > height_mm)
    holds_rims = second.mask[beyond].sum() >= FAINT_RETRY_MIN_RIMS * body[slab].sum()
    if not (
        second.slices_placed_a_face or holds_rims or holds_only_rims(second, body, slab, axial_mm, height_mm)
    ):
        return enclosure
    return second


def holds_only_rims(
    enclosure: Enclosure, body: np.ndarray, slab: np.ndarray, axial_mm: np.ndarray, height_mm: float
) -> bool:
    """Whether what ``enclosure`` holds beyond the points (frame grid, slices at ``axial_mm`` above
    the lower point, the upper one at ``height_mm``) lies as dishes' rims do beyond at least one
    point, and beyond the other either so or not at all: the rims of a dished endplate are deepest
    along the body's outline and hold nothing at the axis, where the face meets the point on the
    dish's floor, whereas a face that strays past a flat endplate lies across it. The outline is
    the slab's ``body`` in at least half of its slices. Each column reaches beyond a point by its
    voxels there, its end voxel counted by the share it fills (``Enclosure.fill``); a face holds
    rims where the columns in the outer quarter of the outline's depth reach ``RIM_MIN_MM`` or more
    on average and those in its inner half less than ``RIM_INNER_SHARE`` of that, and holds nothing
    where its columns reach under ``RIM_NONE_MM`` on average."""
    outline = _typical_outline(body, slab)
    depth = ndimage.distance_transform_edt(outline)
    if depth.max() <= 0.0:
        return False
    share = depth / depth.max()
    outer, inner = outline & (share < 0.25), outline & (share >= 0.5)
    slice_mm = abs(float(axial_mm[1] - axial_mm[0]))
    kinds = []
    for beyond, fill in zip((axial_mm < 0.0, axial_mm > height_mm), enclosure.fill.per_column(outline.shape)):
        voxels = enclosure.mask[beyond].sum(axis=0).astype(float)
        reach_mm = np.where(voxels > 0, voxels - (1.0 - fill), 0.0) * slice_mm
        if reach_mm[outline].mean() < RIM_NONE_MM:
            kinds.append("none")
        elif (
            reach_mm[outer].mean() >= RIM_MIN_MM
            and reach_mm[inner].mean() < RIM_INNER_SHARE * reach_mm[outer].mean()
        ):
            kinds.append("rims")
        else:
            return False
    return "rims" in kinds


def _typical_outline(body: np.ndarray, slab: np.ndarray) -> np.ndarray:
    """The pixels (bool ``[y, x]``) in at least half of the cross-sections of ``body`` in the
    ``slab``'s slices: pedicle roots and ribs are in fewer."""
    return body[slab].mean(axis=0) >= 0.5


def _beyond_points(axial_mm: np.ndarray, height_mm: float) -> np.ndarray:
    """Which frame slices lie beyond the endplate points: at or outside 0 and ``height_mm`` along
    the axis (``axial_mm``, mm above the lower point), the complement of the slab."""
    return (axial_mm <= 0.0) | (axial_mm >= height_mm)


def _faint_cement_beyond_points(
    hu: np.ndarray, axial_mm: np.ndarray, height_mm: float, cement_min_hu: float
) -> bool:
    """Whether any voxel beyond the endplate points (``axial_mm`` outside 0 to ``height_mm``)
    reads from ``FAINT_CEMENT_MIN_HU`` up to under ``cement_min_hu``."""
    values = hu[_beyond_points(axial_mm, height_mm)]
    return bool(((values >= FAINT_CEMENT_MIN_HU) & (values < cement_min_hu)).any())


def _enclosed(
    hu: np.ndarray,
    body: np.ndarray,
    slab: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    shell_levels: list[float],
    settings: BodySegmentationSettings,
    cement_min_hu: float,
    faint_leaks: bool,
    shortfall_mm: float,
    ct_voxel_mm: float,
    own_slices: np.ndarray | None,
    thick_slices: ThickSliceFaces | None,
    first_closed: bool = False,
) -> Enclosure | None:
    """:func:`enclosed_by_shell`, beyond the points with cement (``cement_min_hu`` and up) and its
    blur not shell, or with ``faint_leaks`` what a thin leak's partial volume leaves:
    ``FAINT_CEMENT_MIN_HU`` and up, within the halo of a CT voxel, and the cross-sections of the
    enclosed region opened by ``FAINT_LEAK_BRIDGE_MM`` before its largest component is taken."""
    outline = body[slab].any(axis=0)
    if not outline.any():
        return None
    reference = float(body[slab].sum())
    slab_body = np.zeros_like(body)
    slab_body[slab] = body[slab]
    # A slice without a ring of its own took the nearest one's cross-section, which past a wedged
    # endplate covers the disc in front of it: it does not fill what a shell leaves out.
    ringed = slab if own_slices is None else np.intersect1d(slab, own_slices)
    ringed_body = np.zeros_like(body)
    ringed_body[ringed] = body[ringed]
    # The faces come from the shell, the outline from the slab: pixels in at least half of the
    # slab's cross-sections (pedicle roots and ribs are in fewer).
    typical_outline = _typical_outline(body, slab)
    outlines = np.broadcast_to(outline, body.shape)
    limit = settings.endplate_extension * height_mm
    allowed = (axial_mm >= -limit) & (axial_mm <= height_mm + limit)
    middle = slab[len(slab) // 4 : max(len(slab) // 4 + 1, 3 * len(slab) // 4)]
    # Beyond the endplate points cement is not shell: a leak into the disc must not close a lid.
    beyond = _beyond_points(axial_mm, height_mm)
    beyond_slices = np.flatnonzero(beyond)
    beyond_points = beyond[:, None, None]
    cement = hu >= (FAINT_CEMENT_MIN_HU if faint_leaks else cement_min_hu)
    bridge_px = voxels_across(FAINT_LEAK_BRIDGE_MM, settings.working_spacing_mm) if faint_leaks else 0

    inset_px = voxels_across(FACE_FIT_INSET_MM, settings.working_spacing_mm)
    tolerance_px = FACE_TOLERANCE_MM / settings.working_spacing_mm

    def finished(calibrated: np.ndarray, raise_inner_columns: bool) -> np.ndarray:
        """The body from a candidate's calibrated faces and the outline. A candidate is judged
        without its few short inner columns raised (one that encloses part of the body must not
        pass for one whole); the body kept has them raised."""
        inset = inset_px if raise_inner_columns else 0
        return columns_within_outline(calibrated, typical_outline, tolerance_px, slab, inset)

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

    def closed_candidate(
        level: float, radius_mm: float, not_shell: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The region the shell at ``level`` (less ``not_shell``) closed by ``radius_mm``
        encloses, with the closed shell, if it spans the middle slices, was not closed by the
        search's limits beyond the points (:func:`reaches_the_limit_through_a_neck`), has a
        plausible volume and meets the points."""
        radius = voxels_across(radius_mm, settings.working_spacing_mm)
        # Closed in the slice plane only: closing along the axis would bridge a narrow disc
        # (or a leak lying in it) and enclose the next vertebra.
        closed = slicewise.binary_closing(((hu >= level) & ~not_shell).astype(np.uint8), radius)
        filled = (
            sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(closed.astype(np.uint8)))) > 0
        )
        candidate = filled & outlines & allowed[:, None, None]
        if not candidate[middle].any(axis=(1, 2)).all():
            return None
        if bridge_px:
            candidate = _without_thin_bridges(candidate, beyond_slices, bridge_px)
        candidate = _largest_component_3d(candidate)
        if reaches_the_limit_through_a_neck(candidate, allowed, axial_mm, height_mm, reference / len(slab)):
            return None
        volume = float(candidate.sum())
        low, high = ENCLOSED_VOLUME_RANGE
        within_range = low * reference <= volume <= high * reference
        if not (within_range and faces_meet_the_points(candidate, axial_mm, height_mm)):
            return None
        return candidate, closed

    # The halo of a voxel of the frame grid first: a wider one takes more of an endplate that
    # cement touches beyond a point. The halo of a CT voxel, which hides what the blur of a leak
    # into the disc leaves on thick slices, comes next in each round, before a wider closing:
    # past a frame voxel's halo a leak's blur can lid a pocket under a dished endplate, the
    # enclosures that follow the dish run into it and miss the point, and one closed wider loses
    # the dish's rims.
    frame_voxel_halo = cement_halo_px(settings.working_spacing_mm, settings.working_spacing_mm)
    ct_voxel_halo = cement_halo_px(ct_voxel_mm, settings.working_spacing_mm)
    halos = [frame_voxel_halo]
    if faint_leaks:
        halos = [max(frame_voxel_halo, ct_voxel_halo)]
    elif ct_voxel_halo > frame_voxel_halo:
        halos.append(ct_voxel_halo)
    not_shells = {halo_px: beyond_points & _dilated_within_box(cement, halo_px) for halo_px in halos}
    # A CT voxel's halo hides millimetres of endplate under a leak, and the faces there sink into
    # the hole: the faces fitted to find the endplates on the axis leave those columns out. A
    # frame voxel's halo hides little, and on a dished endplate, whose leak lies in the dish, the
    # columns under it are those that show how deep the dish is.
    hidden = {
        halo_px: not_shells[halo_px].any(axis=0) if halo_px > frame_voxel_halo else None for halo_px in halos
    }
    candidates: dict[tuple[int, float, float], tuple[np.ndarray, np.ndarray] | None] = {}
    partial: tuple[float, np.ndarray, FaceFill] | None = None
    for (attempts, core_slices), halo_px in ((round_, halo) for round_ in rounds for halo in halos):
        for attempt in attempts:
            key = (halo_px, *attempt)
            if key not in candidates:
                candidates[key] = closed_candidate(*attempt, not_shells[halo_px])
            if candidates[key] is None:
                continue
            candidate, closed = candidates[key]
            if not (candidate & ~closed)[core_slices].any():
                continue
            shell = (hu, attempt[0])
            calibrated, fill = calibrate_to_endplate_points(
                candidate, axial_mm, height_mm, inset_px, excluded_columns=hidden[halo_px], shell=shell
            )
            coverage = float((finished(calibrated, False) & slab_body).sum()) / reference
            if coverage >= ENCLOSED_COVERAGE_MIN:
                if shortfall_mm > 0.0:
                    # Judged with its faces as the shell left them, kept with them on the points.
                    calibrated, fill = calibrate_to_endplate_points(
                        candidate, axial_mm, height_mm, inset_px, shortfall_mm, hidden[halo_px], shell
                    )
                kept = finished(calibrated, True)
                from_slices = False
                if thick_slices is not None:
                    kept, fill, from_slices = _dishes_on_contours(
                        candidate,
                        kept,
                        fill,
                        hu,
                        attempt[0],
                        middle,
                        axial_mm,
                        height_mm,
                        thick_slices,
                        inset_px,
                        settings.working_spacing_mm,
                        cement_min_hu,
                    )
                return Enclosure(kept, fill, whole=True, slices_placed_a_face=from_slices)
            if partial is None or coverage > partial[0]:
                partial = (coverage, calibrated, fill)
            if first_closed:
                break
        if partial is not None:
            break
    if partial is None:
        return None
    # Every shell that closed has holes: its faces still follow the endplates beyond the points
    # (concave rims), and the body found slice by slice fills what it leaves out between them.
    _, calibrated, fill = partial
    shell_body = finished(calibrated, True)
    slab_part = ringed_body & typical_outline[None]
    merged, merged_fill = shell_body | slab_part, fill_beyond(shell_body, slab_part, fill)
    if thick_slices is not None and thick_slices.planes is not None:
        # Its dished faces as the rings (or the partial volume) of the CT's slices beyond the
        # points show them, as a whole shell's.
        on_rings = faces_on_rings(
            merged,
            merged_fill,
            thick_slices.planes,
            _points_z(axial_mm, height_mm),
            thick_slices.edge_level_hu,
            settings.working_spacing_mm,
            cement_min_hu,
            (False, False),
        )
        if on_rings is not None:
            merged, merged_fill, _ = on_rings
    return Enclosure(merged, merged_fill, whole=False)


def _points_z(axial_mm: np.ndarray, height_mm: float) -> tuple[float, float]:
    """The lower and upper endplate points as frame slice positions (fractional indices along
    ``axial_mm``, mm above the lower point)."""
    step = float(axial_mm[1] - axial_mm[0])
    return (-float(axial_mm[0]) / step, (height_mm - float(axial_mm[0])) / step)


def _dishes_on_contours(
    enclosed: np.ndarray,
    body: np.ndarray,
    fill: FaceFill,
    hu: np.ndarray,
    level_hu: float,
    middle: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    thick_slices: ThickSliceFaces,
    inset_px: int,
    spacing_mm: float,
    cement_min_hu: float,
) -> tuple[np.ndarray, FaceFill, bool]:
    """``body`` (the enclosure kept, ``enclosed`` before its faces were calibrated, closed at
    ``level_hu``; frame grid of ``spacing_mm``) with its dished faces fitted to the contours
    where the CT's slices cut them (:mod:`endplate_contours`; columns at least ``inset_px``
    inside the outline; not when the distance from that level to the cortex's edge cannot be
    measured on the anterior wall in the ``middle`` slices), then each face as the rings the CT's
    slices beyond its point show it (:mod:`endplate_rings`: a fitted face only when they show a
    shallower dish; slices with cement, ``cement_min_hu`` and up, are not read), and whether
    those slices placed at least one face."""
    points_z = _points_z(axial_mm, height_mm)
    centre = (body.shape[1] // 2, body.shape[2] // 2)
    offset_px = level_offset_px(hu, middle, centre, level_hu, thick_slices.edge_level_hu)
    contoured, fitted = body, (False, False)
    if offset_px is not None:
        contoured, fill, fitted = dished_faces_on_contours(
            enclosed,
            body,
            fill,
            points_z,
            thick_slices.slices,
            offset_px,
            inset_px,
            thick_slices.tolerance_px,
            spacing_mm,
            faint=thick_slices.faint,
        )
    if thick_slices.planes is not None:
        on_rings = faces_on_rings(
            contoured,
            fill,
            thick_slices.planes,
            points_z,
            thick_slices.edge_level_hu,
            spacing_mm,
            cement_min_hu,
            fitted,
        )
        if on_rings is not None:
            read_body, read_fill, placed = on_rings
            return read_body, read_fill, any(placed)
    return contoured, fill, False


def reaches_the_limit_through_a_neck(
    region: np.ndarray, allowed: np.ndarray, axial_mm: np.ndarray, height_mm: float, mean_area_px: float
) -> bool:
    """Whether ``region`` (bool ``[z, y, x]`` on the frame grid) reaches the last slice the search
    allows (``allowed``) beyond either endplate point (``axial_mm``, mm above the lower point,
    outside 0 to ``height_mm``) with a cross-section of at least ``OPEN_END_AREA_FRACTION`` of
    ``mean_area_px`` (the slab's mean cross-section, pixels), through a neck ``OPEN_END_NECK_RATIO``
    times smaller between the point and that slice."""
    areas = region.sum(axis=(1, 2))
    allowed_slices = np.flatnonzero(allowed)
    for end, beyond in (
        (allowed_slices[-1], allowed & (axial_mm >= height_mm)),
        (allowed_slices[0], allowed & (axial_mm <= 0.0)),
    ):
        at_limit = float(areas[end])
        if beyond.any() and at_limit >= OPEN_END_AREA_FRACTION * mean_area_px:
            if OPEN_END_NECK_RATIO * float(areas[beyond].min()) < at_limit:
                return True
    return False


def _without_thin_bridges(region: np.ndarray, slices: np.ndarray, radius_px: int) -> np.ndarray:
    """``region`` (bool ``[z, y, x]``) without what a thin bridge joins to its largest part.

    The cross-sections of ``slices`` are opened by ``radius_px``; of what the opening took, the
    pieces that touch only the largest component left are given back (the thin rims of a dished
    endplate) and those that lead elsewhere are not (the blur of a leak's edge from the endplate to
    the next vertebra, with what it led to)."""
    trimmed = region.copy()
    trimmed[slices] &= slicewise.binary_dilate(slicewise.binary_erode(region[slices], radius_px), radius_px)
    kept = _largest_component_3d(trimmed)
    rest, _ = ndimage.label(region & ~kept)
    leading_elsewhere = np.unique(rest[trimmed & ~kept])
    return region & ~np.isin(rest, leading_elsewhere[leading_elsewhere > 0])


def _largest_component_3d(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected component of a 3D bool mask (the mask itself when it has one)."""
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8))))
    if labels.max() <= 1:
        return mask
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == int(np.argmax(counts))
