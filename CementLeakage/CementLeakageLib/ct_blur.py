"""The CT's blur measured on the edges of its cement bolus.

Across an edge between two plateaus ``dH`` apart, blurred by a Gaussian of SD ``sigma``, the
intensity's slope is ``dH`` times a Gaussian of that SD: its integral across the edge is ``dH``,
the integral of its square ``dH² / (2 sqrt(pi) sigma)``. Summed over the pixels around an edge,
the gradient magnitude and its square therefore give ``sigma = dH * S1 / (2 sqrt(pi) S2)``
whatever the edge's length. The gradient is taken in the slice plane, with a Gaussian
derivative of ``DERIVATIVE_SIGMA_MM`` (at least three quarters of a pixel), whose variance adds
exactly and is taken off, as is the pixel's own extent (``spacing² / 12``, the model of
:func:`cement_curvature.blur_sigmas_mm`). Only the slices near the bolus's widest cross-section
count, where its wall runs along the slice axis and the in-plane profile is the point spread's
and the pixel's, not the slice's. The bolus, some 2500 HU above bone, is the sharpest edge a
postoperative CT holds: the image's noise (20 HU) adds little to the sums.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BLUR_RANGE_MM = (0.3, 1.2)
"""The blur (SD, mm) a measurement may return: from the sharpest bone kernel to a soft body
kernel on a large field of view. Beyond it the edge was not a blurred step."""
EDGE_BAND_MM = (2.0, 3.0)
"""The pixels that count lie within this far (mm) inside and outside the bolus's thresholded
core in their slice: the ramp of a blur up to about 1 mm on either side of the half maximum."""
BACKGROUND_RING_MM = (3.0, 4.5)
"""Distance (mm, in the slice) from the core of the ring whose most common intensity below
``BACKGROUND_MAX_HU`` (:func:`most_common_hu`) is the plateau outside the edge."""
BACKGROUND_MAX_HU = 1000.0
BACKGROUND_BIN_HU = 20.0
"""Width (HU) of the bins of the ring's histogram, which is smoothed over
``BACKGROUND_SMOOTHING_BINS`` bins (SD) before its peak is taken."""
BACKGROUND_SMOOTHING_BINS = 2.0
DERIVATIVE_SIGMA_MM = 0.5
"""SD (mm) of the Gaussian derivative, at least three quarters of the pixel."""
WIDEST_SHARE = 0.8
"""Slices whose cross-section of the bolus is at least this share of its widest count."""
EDGE_MIN_PIXELS = 300
"""Fewest pixels in the band for a measurement (a bolus of about 5 mm radius on 0.8 mm pixels)."""
CONTRAST_MIN_HU = 1000.0
"""Least contrast (HU) between the cement's plateau and the bone around it for a measurement."""
PLATEAU_DEPTH_MM = 2.5
"""The core must reach this far (mm) inside its surface somewhere: a thinner piece (a layer)
never reaches the cement's plateau, its edges rise by less than the contrast, and the blur would
read too wide (a 2 mm layer, 1.2 mm)."""


def blur_from_cement_edges(
    array_hu: np.ndarray, core: np.ndarray, spacing_mm: np.ndarray, cement_hu: float
) -> float | None:
    """SD (mm) of the CT's point spread, a Gaussian, measured across the in-plane edges of a
    cement bolus.

    ``array_hu`` (HU) and ``core`` (bool, the bolus's thresholded core) are ``[k, j, i]`` arrays
    on a grid of ``spacing_mm`` (mm, i j k) that reaches at least ``BACKGROUND_RING_MM`` beyond
    the core in the slice plane; ``cement_hu`` is the cement's own intensity (HU). Returns None
    when the bolus is too thin to reach the plateau (``PLATEAU_DEPTH_MM``), has too few edge
    pixels or too little contrast with the bone around it, or for a result outside
    ``BLUR_RANGE_MM``.
    """
    spacing = np.asarray(spacing_mm, dtype=float)
    in_plane = spacing[1::-1]  # j, i
    pixel = float(np.mean(spacing[:2]))
    derivative_mm = max(DERIVATIVE_SIGMA_MM, 0.75 * pixel)
    areas = core.reshape(core.shape[0], -1).sum(axis=1)
    if areas.max() == 0:
        return None
    if ndimage.distance_transform_edt(core, sampling=spacing[::-1]).max() < PLATEAU_DEPTH_MM:
        return None
    first = second = 0.0
    pixels = 0
    background = []
    for k in np.flatnonzero(areas >= WIDEST_SHARE * areas.max()):
        outside_mm = ndimage.distance_transform_edt(~core[k], sampling=in_plane)
        inside_mm = ndimage.distance_transform_edt(core[k], sampling=in_plane)
        ring = (outside_mm >= BACKGROUND_RING_MM[0]) & (outside_mm <= BACKGROUND_RING_MM[1])
        background.append(array_hu[k][ring & (array_hu[k] < BACKGROUND_MAX_HU)])
        band = (outside_mm <= EDGE_BAND_MM[1]) & (inside_mm <= EDGE_BAND_MM[0])
        slope = ndimage.gaussian_gradient_magnitude(
            array_hu[k].astype(np.float64), sigma=tuple(derivative_mm / in_plane), mode="nearest"
        )
        slope = slope[band] / np.sqrt(in_plane[0] * in_plane[1])  # HU per mm
        first += float(slope.sum())
        second += float((slope**2).sum())
        pixels += int(slope.size)
    background_hu = np.concatenate(background)
    if pixels < EDGE_MIN_PIXELS or background_hu.size == 0 or second <= 0.0:
        return None
    contrast = cement_hu - most_common_hu(background_hu)
    if contrast < CONTRAST_MIN_HU:
        return None
    measured = contrast * first / (2.0 * np.sqrt(np.pi) * second)
    variance = measured**2 - derivative_mm**2 - pixel**2 / 12.0
    if variance <= 0.0:
        return None
    sigma = float(np.sqrt(variance))
    low, high = BLUR_RANGE_MM
    return sigma if low <= sigma <= high else None


def most_common_hu(values_hu: np.ndarray) -> float:
    """The most common intensity (HU) of ``values_hu``: the centre of the highest bin of their
    histogram (``BACKGROUND_BIN_HU`` wide), smoothed over ``BACKGROUND_SMOOTHING_BINS`` bins.

    The ring around a bolus that fills the body crosses the cortex (about 750 HU on the
    phantoms) a few millimetres out, and beyond it soft tissue and fat: their share moves the
    ring's median (184-332 HU around the default phantom's bolus in trabecular bone of 110 HU,
    the blur read 0.50 mm for 0.6 mm), not its peak, the bone the cement's edge meets
    (0.57 mm).
    """
    low = float(np.floor(values_hu.min() / BACKGROUND_BIN_HU)) * BACKGROUND_BIN_HU
    edges = np.arange(low, float(values_hu.max()) + 2.0 * BACKGROUND_BIN_HU, BACKGROUND_BIN_HU)
    counts, _ = np.histogram(values_hu, bins=edges)
    smoothed = ndimage.gaussian_filter1d(counts.astype(float), BACKGROUND_SMOOTHING_BINS, mode="constant")
    peak = int(np.argmax(smoothed))
    return float(0.5 * (edges[peak] + edges[peak + 1]))
