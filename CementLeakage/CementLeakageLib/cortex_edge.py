"""The cortical shell's outer edge in the body's cross-sections: the HU level of its outer
surface (blur moves a fixed level such as 226 HU outward of it), and the outline moved to it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import slicewise
from .measurement import bounding_box, grown_box

EDGE_PEAK_FRACTION = 0.4
"""Where the outer surface level lies between the inflection (0) and the cortical peak (1)."""
FAINT_OUTLINE_PEAK_FRACTION = 0.32
"""The same for the outline of a faint cortex (its edge level at or under the bone threshold).

The fainter the cortex, the more the marrow behind it lifts the blurred flank's inflection towards
its peak, and the nearer the inflection its surface lies. Across a 1 mm cortex under a Gaussian
blur of 0.6-0.7 mm, with tissue of 40 HU outside and marrow of 110 HU inside, the surface lies
0.29-0.37 of the way for 300 HU and 0.36-0.46 for 750 HU: 0.8 times as far (so too for cortices
of 0.7 and 1.5 mm). On the frame grid of a faint T5 on 0.8 x 0.8 x 2 mm voxels (sweep seed 2040
#6) the median HU on its side walls' surface lay 0.315 of the way; at 0.4, 6 HU above it, the
outline ran inside the surface all round, and the cross-sections away from its cleft and its
faces were 0.9-1.5% small (0.0-0.7% at 0.32)."""


@dataclass(frozen=True)
class CortexEdgeReading:
    """The outer flank of the cortex read in the body's cross-sections (HU): the median intensity
    at its steepest pixels (the inflection) and the median cortical peak next to them."""

    steepest_hu: float
    peak_hu: float

    def level(self, fraction: float = EDGE_PEAK_FRACTION) -> float:
        """The HU level ``fraction`` of the way from the inflection (0) to the peak (1)."""
        return self.steepest_hu + fraction * (self.peak_hu - self.steepest_hu)

    def is_faint(self, bone_min_hu: float) -> bool:
        """Whether the cortex is faint: its edge level (:meth:`level`) at or under ``bone_min_hu``."""
        return self.level() <= bone_min_hu

    def outline_level(self, bone_min_hu: float) -> float:
        """The HU level the cross-sections' outline is moved to: :meth:`level`, or for a faint
        cortex (:meth:`is_faint`) ``FAINT_OUTLINE_PEAK_FRACTION`` of the way."""
        return self.level(FAINT_OUTLINE_PEAK_FRACTION) if self.is_faint(bone_min_hu) else self.level()


CORTEX_PEAK_MAX_HU = 1000.0
"""Brighter pixels next to the outline are cement (or its blur), not the cortical peak."""
CEMENT_RIM_MM = 2.0
"""Width (mm) of the blurred rim around cement left out when the cortex's edge level is measured:
cement filling the body up to a faint cortex would otherwise set that level."""


EDGE_WORK_MARGIN_PX = 24
"""Margin (pixels of the frame grid) around the body within which its cortex's edge is read and
trimmed. A pixel's result depends on the pixels within the band, the cement halo and the cortical
peak's reach (under 10 pixels together), on the mask's Gaussian (nothing but background lies
beyond the margin) and on the intensities' Gaussian of 1 pixel, whose recursive filter carries
what lies 24 pixels away by far less than a float32's precision. The result is that of the whole
cross-section, in about 60% of the area: the frame's cross-sections reach the posterior elements."""


def _work_box(body: np.ndarray, slices: list[int]) -> tuple[slice, slice] | None:
    """The rows and columns of the frame grid (``[y, x]`` slices) within ``EDGE_WORK_MARGIN_PX`` of
    the body in any of ``slices``, or None when it holds nothing there."""
    masks = body[slices]
    box = bounding_box(masks)
    if box is None:
        return None
    _, rows, cols = grown_box(box, (0, EDGE_WORK_MARGIN_PX, EDGE_WORK_MARGIN_PX), masks.shape)
    return rows, cols


def read_outer_edge(
    hu: np.ndarray,
    body: np.ndarray,
    slices: list[int],
    band_px: int,
    cement_min_hu: float = 1500.0,
    halo_px: int = 4,
    axis_row: int | None = None,
) -> CortexEdgeReading | None:
    """The cortex's outer flank, from which the HU level of its outer surface follows, or None
    when it cannot be told.

    Blur moves a fixed iso-level such as 226 HU outward of the cortex surface. In a band of
    ``band_px`` around the outline, the outer flank of the cortex is where intensity falls
    going outward; its steepest pixels (strongest fifth of the in-plane gradient) give the
    level of the inflection, and the brightest pixels on the inner side give the cortical
    peak. The surface level lies ``EDGE_PEAK_FRACTION`` of the way from the first to the
    second (:meth:`CortexEdgeReading.level`): for a thick cortex the surface is at the
    inflection, while for a cortex thinner than the blur the inflection lies outside the
    surface; in between keeps the bias within a fraction of the blur either way.

    With ``axis_row`` (the axis's row on the frame grid, rows growing anteriorly) only the
    outline in front of the axis is sampled: behind it, pedicles and rib heads touch the wall
    with cortex of their own, and where the body's cortex is faint (osteoporosis) theirs is far
    brighter and its steep flanks would set the level of a cortex that is not the body's.
    """
    box = _work_box(body, slices)
    if box is None:
        return None
    masks = body[slices, box[0], box[1]]
    hu_slices = hu[slices, box[0], box[1]]
    outer = slicewise.binary_dilate(masks, band_px)
    inner = slicewise.binary_erode(masks, band_px)
    # Cement next to the wall is not cortex: it would raise the peak far above the cortex's. Nor
    # is the blurred rim around cement: within ``halo_px`` of it the flank is the cement's.
    near_cement = slicewise.binary_dilate(hu_slices >= cement_min_hu, halo_px)
    band = outer & ~inner & (hu_slices < cement_min_hu) & ~near_cement
    if axis_row is not None:
        band[:, : max(axis_row - box[0].start, 0), :] = False
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
    return CortexEdgeReading(float(np.median(np.concatenate(values))), float(np.median(peaks)))


def trim_outer_edge(
    hu: np.ndarray, body: np.ndarray, slices: list[int], level: float, band_px: int, centre: tuple[int, int]
) -> None:
    """Remove outline pixels below ``level`` that the outside reaches within ``band_px``.

    Only pixels on the cortex's outer flank (intensity rising inward) may go: behind a faint,
    noisy cortex the trabecular bone is below ``level`` too, and must not be reached.
    """
    box = _work_box(body, slices)
    if box is None:
        return
    masks = body[slices, box[0], box[1]]
    hu_slices = hu[slices, box[0], box[1]]
    inner = slicewise.binary_erode(masks, band_px)
    inward = slicewise.gradient(slicewise.gaussian_smoothing(masks, 2.0))
    slope = slicewise.gradient(slicewise.gaussian_smoothing(hu_slices, 1.0))
    outer_flank = (slope[0] * inward[0] + slope[1] * inward[1]) > 0
    candidates = masks & ~inner & (hu_slices < level) & outer_flank
    open_space = ~masks | candidates
    reached = slicewise.touching_border(slicewise.labels(open_space)) & candidates
    trimmed = slicewise.fill_holes(masks & ~reached)
    body[slices, box[0], box[1]] = slicewise.component_near(
        trimmed, (centre[0] - box[0].start, centre[1] - box[1].start)
    )


def level_offset_px(
    hu: np.ndarray,
    slices: np.ndarray,
    centre: tuple[int, int],
    level_hu: float,
    edge_level_hu: float,
    half_width_px: int = 6,
    max_offset_px: float = 6.0,
) -> float | None:
    """How far (px of the frame grid, ``[z, y, x]``) the iso-surface of ``level_hu`` lies outside
    the cortex's outer edge (the iso-surface of ``edge_level_hu``, :meth:`CortexEdgeReading.level`):
    measured on the anterior wall, in the ``slices`` given, along the rows of the columns within
    ``half_width_px`` of the axis (``centre``: its row and column; rows grow anteriorly), across
    the wall there, as the distance between the outermost crossings of the two levels (on a
    cubic through the pixels either side). Negative when ``level_hu`` lies above the edge's
    level. The median of at least ten profiles whose crossings lie within ``max_offset_px`` of
    each other, or None.

    Blur moves a level below the cortex's edge outward of it by about the same distance along
    its normal wherever the cortex is alike: on the endplates as on the wall (on the phantoms'
    1 mm cortex of 750 HU under a 0.6 mm blur, 190 HU lies 0.43-0.54 mm outside the edge level
    :func:`read_outer_edge` gives).
    """
    row, column = centre
    offsets = []
    for z in slices:
        for col in range(column - half_width_px, column + half_width_px + 1):
            profile = hu[z, row:, col].astype(float)
            crossings = [outermost_crossing(profile, level) for level in (level_hu, edge_level_hu)]
            if None in crossings:
                continue
            offset = crossings[0] - crossings[1]
            if abs(offset) <= max_offset_px:
                offsets.append(offset)
    return float(np.median(offsets)) if len(offsets) >= 10 else None


def outermost_crossing(profile: np.ndarray, level: float) -> float | None:
    """Position (fractional index) where ``profile`` last falls below ``level``, or None: on
    the cubic through the two pixels either side (a blurred edge's curvature moves a linear
    crossing by up to 0.07 mm on 0.5 mm pixels), linear where they are not all there or the
    cubic does not cross between the two."""
    above = np.flatnonzero(profile >= level)
    if above.size == 0 or above[-1] + 1 >= profile.size:
        return None
    index = int(above[-1])
    inner, outer = float(profile[index]), float(profile[index + 1])
    linear = index + (inner - level) / (inner - outer)
    if index < 1 or index + 2 >= profile.size:
        return linear
    cubic = np.polyfit([-1.0, 0.0, 1.0, 2.0], profile[index - 1 : index + 3].astype(float) - level, 3)
    roots = [root.real for root in np.roots(cubic) if abs(root.imag) < 1e-9 and 0.0 <= root.real <= 1.0]
    return index + min(roots, key=lambda root: abs(index + root - linear)) if roots else linear
