"""The bony rim of a concave endplate beyond the marked endplate points, slice by slice on the
frame grid, for a body whose cortical shell does not enclose it in 3D (see
:mod:`shell_enclosure`)."""

from __future__ import annotations

import numpy as np

from . import slicewise
from .body_settings import BodySegmentationSettings
from .measurement import voxels_across

FLOOR_RADIUS_MM = 2.0
"""Radius (mm) of the disc around the axis, beyond a marked point, where a dished endplate has
its floor (the disc lies there) rather than its rim."""
FLOOR_BONE_SHARE_MAX = 0.5
"""Most of that disc that bone may cover in a slice that holds a rim."""
RIM_SECTORS = 12
RIM_SECTORS_NEEDED = 9
RIM_BAND_MM = 3.0
"""Width (mm) of the band along the outline where cement beyond a point may be a bolus filling
the rim; cement further in lies over the dish's floor, in the disc."""


def _is_rim(rim: np.ndarray, centre: tuple[int, int], floor: np.ndarray) -> bool:
    """Whether bone pixels ``rim`` of a slice beyond a marked point form a concave endplate's
    rim around the axis (``centre``: its row and column) rather than a plate.

    The point is marked on the dish's floor, on the axis: beyond it the floor leaves the
    ``floor`` disc around the axis (bool, the slice's pixels within ``FLOOR_RADIUS_MM``) nearly
    free (bone on at most ``FLOOR_BONE_SHARE_MAX`` of it), while a flat endplate seen through
    partial volume covers it. The rim runs all around the axis (``RIM_SECTORS_NEEDED`` of
    ``RIM_SECTORS`` angular sectors); a wedged face beyond the point lies on one side. How far
    the rim reaches in from the outline does not matter: on a shallow dish it is a wide annulus
    (a biconcave T7 at 93% height: bone on 18-33% of the outline eroded by 3 mm in its slices
    beyond the upper point; the endplates of a real L2: 9-22%).
    """
    if np.count_nonzero(rim & floor) > FLOOR_BONE_SHARE_MAX * np.count_nonzero(floor):
        return False
    rows, cols = np.nonzero(rim)
    return slicewise.sectors_around(rows, cols, centre, RIM_SECTORS) >= RIM_SECTORS_NEEDED


def add_concave_endplate_rims(
    body: np.ndarray,
    bone: np.ndarray,
    slab: np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    settings: BodySegmentationSettings,
    cement: np.ndarray | None = None,
) -> tuple[float, float]:
    """Extend the body beyond the endplate points where a concave endplate's bony rim continues.

    ``body``, ``bone`` and ``cement`` are bool ``[z, y, x]`` on the frame grid (its axis through
    the points at the centre of each slice, ``axial_mm`` along it); ``slab`` the slices between
    the points. A slice beyond a point belongs to the body only where bone covers part of the
    body's outline as a rim (:func:`_is_rim`; a full plate is the endplate surface the point was
    marked on); the extension stops at the first slice without such a rim (the disc), at the
    first with cement further than ``RIM_BAND_MM`` inside the outline (a leak into the disc
    beside the axis, which would otherwise pass for rim and be taken into the body; cement
    nearer the outline counts as the rim's bone, a bolus that fills it) and at
    ``endplate_extension`` times the height. Each column is then body from the point out to its
    last rim pixel. Returns how far (mm, along the axis) the body now reaches below the lower
    and above the upper endplate point (0 without a rim).
    """
    low_cover, high_cover = settings.rim_coverage
    limit = settings.endplate_extension * height_mm
    spacing_mm = abs(float(axial_mm[1] - axial_mm[0]))
    centre = (body.shape[1] // 2, body.shape[2] // 2)
    rows, cols = np.indices(body.shape[1:])
    floor = np.hypot(rows - centre[0], cols - centre[1]) <= FLOOR_RADIUS_MM / spacing_mm
    band_px = voxels_across(RIM_BAND_MM, spacing_mm)
    reach = [0.0, 0.0]
    for index, (edge, step) in enumerate(((int(slab[0]), -1), (int(slab[-1]), 1))):
        outline = body[edge]
        area = outline.sum()
        if area == 0:
            continue
        inner = slicewise.binary_erode(outline[None], band_px)[0]
        taken = []
        z = edge + step
        while 0 <= z < body.shape[0] and abs(axial_mm[z] - axial_mm[edge]) <= limit:
            if cement is not None and (cement[z] & inner).any():
                break
            rim = bone[z] & outline
            coverage = rim.sum() / area
            if not low_cover <= coverage <= high_cover or not _is_rim(rim, centre, floor & outline):
                break
            body[z] = rim
            taken.append(z)
            endplate_mm = 0.0 if step < 0 else height_mm
            reach[index] = abs(axial_mm[z] - endplate_mm) + 0.5 * spacing_mm
            z += step
        if len(taken) > 1:
            # The rim's bone caps the bone under it: a column is body out to its last rim pixel.
            outward = body[taken]
            body[taken] = np.logical_or.accumulate(outward[::-1], axis=0)[::-1]
    return reach[0], reach[1]
