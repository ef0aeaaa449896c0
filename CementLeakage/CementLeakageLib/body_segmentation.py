"""Automatic vertebral body segmentation between two endplate midpoints.

The body is found slice by slice in a grid aligned with the vertebra (see
:mod:`vertebra_frame`): bone is thresholded (226 HU and above by default, cement included),
small gaps in the cortical shell are closed, the enclosed trabecular interior around the
vertebral axis is taken with the shell around it, holes (cement, low-density trabecular bone)
are filled, and anything attached through a neck narrower than the pedicles (pedicles,
ribs, leaked cement) is cut off by a morphological opening of the cross-section. Slices
without a closed interior (the endplates themselves) take the outline of the nearest slice
that has one. The mask is then resampled onto the CT grid and clipped to the slab between
the two endplate points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .ct_volume import CtVolume
from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .parameters import MeasurementParameters
from .sitk_bridge import box_around_ras_points, crop_geometry, resample_onto, to_sitk
from .vertebra_frame import VertebraFrame, vertebra_frame


@dataclass(frozen=True)
class BodySegmentationSettings:
    """Geometric settings of the body segmentation, all in millimetres."""

    working_spacing_mm: float = 0.5
    half_width_mm: float = 40.0
    closing_radii_mm: tuple[float, ...] = (1.0, 2.0, 3.0)
    shell_levels_hu: tuple[float, ...] = (190.0, 160.0, 130.0)
    endplate_extension: float = 0.3
    rim_coverage: tuple[float, float] = (0.05, 0.6)
    seed_radius_mm: float = 6.0
    neck_radius_mm: float = 4.5
    canal_gap_mm: float = 2.0
    posterior_wall_quantile: float = 0.2
    slab_margin_mm: float = 2.0
    closing_3d_radius_mm: float = 0.0


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
    margin = settings.slab_margin_mm + settings.endplate_extension * frame.height_mm
    n_xy = int(round(2 * half / spacing)) + 1
    n_z = int(np.ceil((frame.height_mm + 2 * margin) / spacing)) + 1
    matrix = np.eye(4)
    matrix[:3, :3] = frame.rotation * spacing
    matrix[:3, 3] = frame.to_ras([[-half, -half, -margin]])[0]
    return VolumeGeometry(matrix, (n_z, n_xy, n_xy))


def _disk_radius(radius_mm: float, spacing_mm: float) -> list[int]:
    pixels = max(1, int(round(radius_mm / spacing_mm)))
    return [pixels, pixels]


def _fill_holes_2d(mask: np.ndarray) -> np.ndarray:
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.BinaryFillhole(image, fullyConnected=False, foregroundValue=1)) > 0


def _labels_2d(mask: np.ndarray) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8))))


def _cross_section_around_axis(
    bone_slice: np.ndarray,
    centre: tuple[int, int],
    seed_radius_px: float,
    closing_radius: list[int],
    canal_gap_px: float,
) -> np.ndarray | None:
    """The filled bone ring that encloses the axis pixel in a 2D slice, without the spinal canal.

    Returns None when no closed ring encloses the axis (within ``seed_radius_px``). Holes of the
    ring whose centre lies behind the body's anterior half-depth by more than
    ``canal_gap_px`` (the spinal canal, enclosed by pedicles and laminae) are left out.
    """
    closed = sitk.GetArrayFromImage(
        sitk.BinaryMorphologicalClosing(sitk.GetImageFromArray(bone_slice.astype(np.uint8)), closing_radius)
    ).astype(bool)
    filled = _fill_holes_2d(closed)
    if not filled.any():
        return None
    labels = _labels_2d(filled)
    label = labels[centre]
    if label == 0:
        rows, cols = np.nonzero(labels)
        distance = np.hypot(rows - centre[0], cols - centre[1])
        if distance.min() > seed_radius_px:
            return None
        label = labels[rows[np.argmin(distance)], cols[np.argmin(distance)]]
    component = labels == label
    holes = component & ~closed
    if not holes.any():
        return None
    column = np.flatnonzero(component[:, centre[1]])
    anterior_depth = max(float(column.max() - centre[0]), 1.0) if column.size else 1.0
    hole_labels = _labels_2d(holes)
    for hole in range(1, int(hole_labels.max()) + 1):
        rows = np.flatnonzero((hole_labels == hole).any(axis=1))
        if rows.size and rows.max() < centre[0] - anterior_depth - canal_gap_px:
            component &= hole_labels != hole
    return component


def _largest_component_near(mask: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    if not mask.any():
        return mask
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8))))
    label_at_centre = labels[centre]
    if label_at_centre == 0:
        rows, cols = np.nonzero(labels)
        nearest = np.argmin(np.hypot(rows - centre[0], cols - centre[1]))
        label_at_centre = labels[rows[nearest], cols[nearest]]
    return labels == label_at_centre


def _cut_necks(cross_section: np.ndarray, centre: tuple[int, int], radius: list[int]) -> np.ndarray:
    """Keep the part of a cross-section that a disk of ``radius`` reaches from the axis."""
    image = sitk.GetImageFromArray(cross_section.astype(np.uint8))
    core = sitk.GetArrayFromImage(sitk.BinaryErode(image, radius)).astype(bool)
    core = _largest_component_near(core, centre)
    if not core.any():
        return cross_section
    grown = sitk.GetArrayFromImage(sitk.BinaryDilate(sitk.GetImageFromArray(core.astype(np.uint8)), radius))
    return grown.astype(bool) & cross_section


def _cut_at_posterior_wall(
    body: np.ndarray, slices: list[int], centre: tuple[int, int], quantile: float
) -> None:
    """Cut every slice at the body's posterior wall, i.e. at the pedicles' anterior edge.

    The wall is where the cross-sections that reach least far back end (the slices below the
    pedicles, where the body stands alone); ``quantile`` picks that depth among all slices.
    """
    depths = []
    for z in slices:
        rows = np.flatnonzero(body[z].any(axis=1))
        if rows.size:
            depths.append(centre[0] - rows.min())
    if not depths:
        return
    wall = int(np.floor(centre[0] - np.quantile(depths, quantile)))
    if wall > 0:
        body[:, :wall, :] = False


def body_extent_mm(body: np.ndarray, axial_mm: np.ndarray) -> tuple[float, float]:
    """Axial extent (mm along the vertebral axis) of the slices that hold body voxels."""
    present = np.flatnonzero(body.any(axis=(1, 2)))
    if present.size == 0:
        return 0.0, 0.0
    return float(axial_mm[present[0]]), float(axial_mm[present[-1]])


def _add_concave_endplate_rims(
    body: np.ndarray,
    bone: np.ndarray,
    slab: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    settings: BodySegmentationSettings,
) -> None:
    """Extend the body beyond the endplate points where a concave endplate's bony rim continues.

    A slice beyond a point belongs to the body only where bone covers part of the body's
    outline as a rim (a full plate is the endplate surface the point was marked on); the
    extension stops at the first slice without such a rim (the disc) and at
    ``endplate_extension`` times the height.
    """
    low_cover, high_cover = settings.rim_coverage
    limit = settings.endplate_extension * height_mm
    for edge, step in ((int(slab[0]), -1), (int(slab[-1]), 1)):
        outline = body[edge]
        area = outline.sum()
        if area == 0:
            continue
        z = edge + step
        while 0 <= z < body.shape[0] and abs(axial_mm[z] - axial_mm[edge]) <= limit:
            rim = bone[z] & outline
            coverage = rim.sum() / area
            if not low_cover <= coverage <= high_cover:
                break
            body[z] = rim
            z += step


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
    crop_grid = crop_geometry(ct.geometry, box)
    hu = resample_onto(to_sitk(crop.astype(np.float32), crop_grid), grid, linear=True, default_value=-1024.0)
    bone = hu >= parameters.bone_min_hu
    if settings.closing_3d_radius_mm > 0:
        radius = max(1, int(round(settings.closing_3d_radius_mm / settings.working_spacing_mm)))
        bone = sitk.GetArrayFromImage(
            sitk.BinaryMorphologicalClosing(sitk.GetImageFromArray(bone.astype(np.uint8)), [radius] * 3)
        ).astype(bool)
    spacing = settings.working_spacing_mm
    centre = (grid.shape[1] // 2, grid.shape[2] // 2)
    axial_mm = np.arange(grid.shape[0]) * spacing - (
        settings.slab_margin_mm + settings.endplate_extension * frame.height_mm
    )
    slab = np.flatnonzero((axial_mm >= -spacing) & (axial_mm <= frame.height_mm + spacing))

    interiors: dict[int, np.ndarray] = {}
    shell_levels = [level for level in settings.shell_levels_hu if level <= parameters.bone_min_hu]
    shell_levels = [parameters.bone_min_hu] + [lvl for lvl in shell_levels if lvl < parameters.bone_min_hu]
    attempts = [(level, radius) for level in shell_levels for radius in settings.closing_radii_mm]
    for z in slab:
        for level, radius_mm in attempts:
            interior = _cross_section_around_axis(
                hu[z] >= level,
                centre,
                settings.seed_radius_mm / spacing,
                _disk_radius(radius_mm, spacing),
                settings.canal_gap_mm / spacing,
            )
            if interior is not None:
                interiors[int(z)] = interior
                break
    if interiors:
        areas = np.array([m.sum() for m in interiors.values()], dtype=float)
        typical = float(np.median(areas))
        interiors = {z: m for z, m in interiors.items() if 0.5 * typical <= m.sum() <= 2.0 * typical}
    if not interiors:
        raise CementLeakageError(
            "no vertebral body found between the endplate points: no bone ring encloses the axis between "
            "them; check the points and the bone threshold"
        )
    neck_radius = _disk_radius(settings.neck_radius_mm, spacing)
    body = np.zeros(grid.shape, dtype=bool)
    for z, cross_section in interiors.items():
        body[z] = _cut_necks(cross_section, centre, neck_radius)
    _cut_at_posterior_wall(body, list(interiors), centre, settings.posterior_wall_quantile)
    areas = {z: int(body[z].sum()) for z in interiors}
    typical = float(np.median(list(areas.values())))
    interiors = {z: m for z, m in interiors.items() if areas[z] >= 0.5 * typical}
    found = np.array(sorted(interiors))
    for z in slab:
        if int(z) not in interiors:
            nearest = found[np.argmin(np.abs(found - z))]
            body[z] = body[nearest]
    _add_concave_endplate_rims(body, bone, slab, axial_mm, frame.height_mm, settings)
    warnings = []
    missing = len(slab) - len(interiors)
    if missing > 0.5 * len(slab):
        warnings.append(
            f"the cortical shell was closed in only {len(interiors)} of {len(slab)} slices of the body; "
            "review the vertebral body mask"
        )

    native = (
        resample_onto(to_sitk(body.astype(np.float32), grid), crop_grid, linear=True, default_value=0.0)
        >= 0.5
    )
    extension = settings.endplate_extension * frame.height_mm
    below, above = body_extent_mm(body, axial_mm)
    k, j, i = np.nonzero(native)
    axial = frame.to_frame(crop_grid.voxel_centers_ras((k, j, i)))[:, 2]
    outside_slab = (axial < min(0.0, below)) | (axial > max(frame.height_mm, above)) | (axial < -extension)
    outside_slab |= axial > frame.height_mm + extension
    native[k[outside_slab], j[outside_slab], i[outside_slab]] = False
    return BodySegmentation(
        mask=native,
        geometry=crop_grid,
        box=box,
        frame=frame,
        slices_with_interior=len(interiors),
        slices_total=len(slab),
        warnings=warnings,
    )
