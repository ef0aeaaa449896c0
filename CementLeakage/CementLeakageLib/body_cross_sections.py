"""The vertebral body's cross-section slice by slice on the frame grid (``[z, y, x]``, see
:mod:`body_settings`): the filled bone ring that encloses the vertebral axis, without the spinal
canal, tried at several shell levels and closing radii, with what hangs on it through a neck
narrower than the pedicles (ribs, leaked cement) cut off."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import slicewise
from .body_settings import BodySegmentationSettings
from .measurement import voxels_across

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


def cut_necks(cross_sections: np.ndarray, centre: tuple[int, int], radius_px: int) -> np.ndarray:
    """Keep the part of every cross-section (slice of a ``[z, y, x]`` stack) that a disk of
    ``radius_px`` reaches from the axis pixel ``centre`` (row, column); a cross-section the disk
    fits nowhere in is kept whole."""
    core = slicewise.component_near(slicewise.binary_erode(cross_sections, radius_px), centre)
    necks_cut = slicewise.binary_dilate(core, radius_px) & cross_sections
    too_thin = ~core.any(axis=(1, 2))
    necks_cut[too_thin] = cross_sections[too_thin]
    return necks_cut


def cross_sections_by_slice(
    hu: np.ndarray,
    slab: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    centre: tuple[int, int],
    attempts: list[tuple[float, float]],
    settings: BodySegmentationSettings,
) -> dict[int, np.ndarray]:
    """The body's cross-section in every slab slice where one is found, by slice index, with
    what hangs on it through a neck cut off (:func:`cut_necks`).

    Each slice takes the first of ``attempts`` (shell level in HU, closing radius in mm) whose
    ring has an interior of its own; failing that, the first solid cross-section (cement up to
    the cortex, or an endplate's plate), taken at once within ``SOLID_SLICE_FACE_MM`` of the
    endplate points where solid slices are the rule. Cross-sections far from the typical area
    (below half, above twice the median) are dropped, their areas taken with the necks cut:
    where pedicle roots span most of a compressed body's height, the slices free of them would
    otherwise look like stray rings beside the others.
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
    if not interiors:
        return interiors
    # Each slice's neck is cut on its own: the stack is only for speed.
    necks_cut = cut_necks(
        np.stack(list(interiors.values())), centre, voxels_across(settings.neck_radius_mm, spacing)
    )
    areas = necks_cut.sum(axis=(1, 2))
    typical = float(np.median(areas))
    return {
        z: cross_section
        for z, cross_section, area in zip(interiors, necks_cut, areas)
        if 0.5 * typical <= area <= 2.0 * typical
    }
