"""The bony rim of a concave endplate beyond the marked endplate points, slice by slice on the
frame grid, for a body whose cortical shell does not enclose it in 3D (see
:mod:`shell_enclosure`)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from . import slicewise
from .body_settings import BodySegmentationSettings
from .measurement import voxels_across

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
    centroid = (float(rows.mean()), float(cols.mean()))
    return slicewise.sectors_around(rim_rows, rim_cols, centroid, RIM_SECTORS) >= RIM_SECTORS_NEEDED


def add_concave_endplate_rims(
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
