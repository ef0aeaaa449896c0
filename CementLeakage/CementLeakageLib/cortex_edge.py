"""The cortical shell's outer edge in the body's cross-sections: the HU level of its outer
surface (blur moves a fixed level such as 226 HU outward of it), and the outline moved to it."""

from __future__ import annotations

import numpy as np

from . import slicewise

EDGE_PEAK_FRACTION = 0.4
"""Where the outer surface level lies between the inflection (0) and the cortical peak (1)."""


CORTEX_PEAK_MAX_HU = 1000.0
"""Brighter pixels next to the outline are cement (or its blur), not the cortical peak."""
CEMENT_RIM_MM = 2.0
"""Width (mm) of the blurred rim around cement left out when the cortex's edge level is measured:
cement filling the body up to a faint cortex would otherwise set that level."""


def outer_edge_level(
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


def trim_outer_edge(
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
