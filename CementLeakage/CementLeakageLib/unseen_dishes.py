"""How much a concave endplate could hold beyond its point, unseen between thick CT slices.

The endplate points are marked on the endplates' floors, on the axis; a concave endplate's dish
reaches beyond its point up to its rim. A CT slice that cuts the dish shows its rim as a ring of
bone around a pocket of disc, from which the dish is read (:mod:`endplate_rings`), or its
contours are fitted (:mod:`endplate_contours`). A dish whose rim ends short of the first CT slice
beyond the point that could show that ring leaves no trace in the CT, and its face is taken
flat through the point: VBV reads low by what the dish holds. A slice's partial volume can
show part of such a dish, and the face then holds less than the dish does. A slice nearer the point than
``endplate_rings.AXIS_BLUR_MM`` shows the endplate's blurred cortex over the axis, not a pocket,
so the first slice that could show a ring is the first at least that far beyond the point.

The dish is modelled as in :mod:`endplate_rings`, a paraboloid over the face's outline: one that
reaches a distance ``g`` beyond the point at the outline holds half the face's area times ``g``.
The bound takes the slices' centres, not where their sensitivity starts: a rim that reaches into
a slice's profile by less than its partial volume can show is unseen too. On a 2 mm CT a shallow
biconcave T6 at 90% height (0.84 mm dishes, 5.3% of its volume) reads VBV from -5.5% to +1.7% at
eight positions of its slices, and is named at the four where its dishes could hold 4.7-6.9%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .endplate_contours import CtSlicePositions
from .endplate_faces import FaceFill, face_positions
from .endplate_rings import AXIS_BLUR_MM

DISHED_FACE_MEAN_MM = 0.2
"""A face holds part of a dish, seen in the CT's slices, when it reaches beyond its point by this
much (mm along the axis) on average over its columns: a paraboloid dish 0.4 mm deep. A flat face
moved onto its point holds nothing beyond it, give or take a tilt's two halves, and under this
its reach is taken as nothing. What a face holds counts against what a dish reaching the first
slice that could show its ring would hold: a slice's partial volume can show part of a dish that
ends short of it. A biconcave T8 at 85% on 2 mm slices (1.47 mm dishes, 0.73 mm beyond each point
on average) had 0.29 mm of its upper dish seen, and read VBV -7.0% where a bound leaving that
face out gave 5%."""


@dataclass(frozen=True)
class UnseenDishes:
    """What dishes beyond the endplate points could hold without showing in the CT's slices.

    ``gaps_mm`` (lower, upper) is how far beyond each point (mm along the vertebral axis) the
    first CT slice lies that could show a dish's ring, 0 for a face that already holds as much
    as a dish reaching it would; ``share`` is what paraboloid dishes reaching those slices would
    hold beyond what the faces hold, as a share of the body's volume (0 to 1).
    """

    gaps_mm: tuple[float, float]
    share: float


def first_revealing_slice_mm(
    slices: CtSlicePositions, point_z: float, outward: int, spacing_mm: float
) -> float:
    """How far (mm) beyond an endplate point at frame slice position ``point_z`` (``outward``:
    -1 for the lower point, +1 for the upper) the first CT slice lies, on the axis, that is at
    least ``AXIS_BLUR_MM`` beyond it: the nearest that could show a dish's ring. ``slices``
    places the CT's slices along the frame grid's columns (frame grid of ``spacing_mm`` along
    the axis)."""
    centre = (slices.start.shape[0] // 2, slices.start.shape[1] // 2)
    start, per_slice = float(slices.start[centre]), float(slices.per_slice[centre])
    k, step = slices.first_beyond(point_z, outward)
    while True:
        beyond_mm = outward * ((k - start) / per_slice - point_z) * spacing_mm
        if beyond_mm >= AXIS_BLUR_MM:
            return float(beyond_mm)
        k += step


def unseen_dishes(
    body: np.ndarray,
    fill: FaceFill,
    slices: CtSlicePositions,
    axial_mm: np.ndarray,
    height_mm: float,
) -> UnseenDishes:
    """The dishes ``body`` (bool ``[z, y, x]`` on the frame grid whose slice ``k`` lies
    ``axial_mm[k]`` mm along the axis above the lower point, the upper point at ``height_mm``;
    its end voxels filled by ``fill``) could miss beyond its points between the CT's slices
    (``slices``): :class:`UnseenDishes`."""
    step_mm = float(axial_mm[1] - axial_mm[0])
    spacing_mm = abs(step_mm)
    present, lower, upper = face_positions(body, fill)
    columns = int(np.count_nonzero(present))
    if columns == 0:
        return UnseenDishes((0.0, 0.0), 0.0)
    volume_columns_mm = float(np.sum(upper[present] - lower[present])) * spacing_mm  # mm x columns
    gaps, unseen_columns_mm = [], 0.0
    for face, axial_point, outward in ((lower, 0.0, -1), (upper, height_mm, 1)):
        point_z = (axial_point - float(axial_mm[0])) / step_mm
        orientation = outward * (1 if step_mm > 0 else -1)
        gap_mm = first_revealing_slice_mm(slices, point_z, orientation, spacing_mm)
        held_mm = float(np.sum(orientation * (face[present] - point_z))) * spacing_mm / columns
        if held_mm < DISHED_FACE_MEAN_MM:
            held_mm = 0.0
        unseen_mm = 0.5 * gap_mm - held_mm
        if unseen_mm <= 0.0:
            gaps.append(0.0)
            continue
        gaps.append(gap_mm)
        unseen_columns_mm += unseen_mm * columns
    share = unseen_columns_mm / volume_columns_mm if volume_columns_mm > 0.0 else 0.0
    return UnseenDishes((gaps[0], gaps[1]), share)


def unseen_dishes_warning(dishes: UnseenDishes, slice_mm: float) -> str:
    """The warning for dishes that could hold ``dishes.share`` of VBV unseen on CT slices of
    ``slice_mm`` (mm)."""
    lower_mm, upper_mm = dishes.gaps_mm
    sides = ((upper_mm, "above the upper point"), (lower_mm, "below the lower"))
    where = " and ".join(f"{gap:.1f} mm {side}" for gap, side in sides if gap > 0.0)
    share = f"{100.0 * dishes.share:.0f}%"
    return (
        f"on these {slice_mm:g} mm slices a concave endplate whose rim ends short of the first slice that "
        f"could show it ({where}) leaves no trace, or only part of itself, and its face is taken flat "
        "through its point or short of its rim: if the "
        f"endplates are dished, VBV may read up to {share} low and PSBCV/VBV% up to {share} "
        "of its value high; check the endplates on a sagittal view, or measure on thinner slices"
    )
