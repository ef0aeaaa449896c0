"""Two-dimensional image operations on every slice of a ``[z, y, x]`` volume at once.

Each operation acts within the slices (the y, x plane) only: nothing reaches from one slice
into the next, and every slice gets exactly what the 2D SimpleITK operation gives on that
slice alone (disks for structuring elements, 4-connectivity for components and holes, the
recursive Gaussian for smoothing). Radii and sigmas are in pixels of the slice grid; rows are
the y index, columns the x index.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

_NO_LINKS = [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
IN_SLICE_FACE_NEIGHBOURS = np.array([_NO_LINKS, [[0, 1, 0], [1, 1, 1], [0, 1, 0]], _NO_LINKS], dtype=bool)
"""Structuring element ``[z, y, x]`` of 4-connectivity within a slice, without links between slices."""


def disk_half_widths(radius_px: int) -> np.ndarray:
    """Half-width (pixels along x) of SimpleITK's disk of ``radius_px`` in each of its rows, from
    ``-radius_px`` to ``radius_px`` along y: the offsets (dy, dx) with
    dx² + dy² <= radius_px² + radius_px (a pixel belongs where its centre lies within
    ``radius_px + 0.5``)."""
    reach = radius_px * radius_px + radius_px
    return np.array([math.isqrt(reach - dy * dy) for dy in range(-radius_px, radius_px + 1)])


def _disk_maximum(values: np.ndarray, radius_px: int) -> np.ndarray:
    """The largest value within the disk of ``radius_px`` around every pixel of every slice of a
    ``[z, y, x]`` array (logical or for masks); pixels beyond the slice's edge do not count.

    The disk is taken row by row: the maximum along x over the row's half-width, moved along y
    by the row's offset.
    """
    widths = disk_half_widths(radius_px)
    along_x = [values]
    for width in range(1, radius_px + 1):
        wider = along_x[-1].copy()
        np.maximum(wider[:, :, width:], values[:, :, :-width], out=wider[:, :, width:])
        np.maximum(wider[:, :, :-width], values[:, :, width:], out=wider[:, :, :-width])
        along_x.append(wider)
    result = along_x[radius_px].copy()
    for offset in range(1, radius_px + 1):
        row = along_x[widths[radius_px + offset]]
        np.maximum(result[:, :-offset], row[:, offset:], out=result[:, :-offset])
        np.maximum(result[:, offset:], row[:, :-offset], out=result[:, offset:])
    return result


def binary_dilate(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """Dilation of every slice of a ``[z, y, x]`` mask by a disk of ``radius_px`` (as
    ``sitk.BinaryDilate``: nothing comes from beyond the slice's edge)."""
    return _disk_maximum(mask.astype(bool), radius_px)


def binary_erode(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """Erosion of every slice of a ``[z, y, x]`` mask by a disk of ``radius_px`` (as
    ``sitk.BinaryErode``: beyond the slice's edge counts as foreground)."""
    return ~binary_dilate(~mask.astype(bool), radius_px)


def binary_closing(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """Morphological closing of every slice of a ``[z, y, x]`` mask with a disk of ``radius_px``
    (as ``sitk.BinaryMorphologicalClosing`` with its safe border: the slice is padded with
    background by the radius, so the edge neither closes nor opens anything)."""
    pad = ((0, 0), (radius_px, radius_px), (radius_px, radius_px))
    padded = np.pad(mask.astype(bool), pad)
    closed = binary_erode(binary_dilate(padded, radius_px), radius_px)
    inside = (
        slice(None),
        slice(radius_px, radius_px + mask.shape[1]),
        slice(radius_px, radius_px + mask.shape[2]),
    )
    return np.ascontiguousarray(closed[inside])


def grayscale_dilate(values: np.ndarray, radius_px: int) -> np.ndarray:
    """The largest value within a disk of ``radius_px`` around every pixel of every slice (as
    ``sitk.GrayscaleDilate``), in the dtype of ``values``."""
    return _disk_maximum(values, radius_px)


def gaussian_smoothing(values: np.ndarray, sigma_px: float) -> np.ndarray:
    """Every slice smoothed by the recursive Gaussian of ``sigma_px`` (float32, as
    ``sitk.SmoothingRecursiveGaussian`` on the slice: along y first, then along x)."""
    image = sitk.GetImageFromArray(values.astype(np.float32))
    for direction in (1, 0):
        image = sitk.RecursiveGaussian(
            image, sigma_px, False, sitk.RecursiveGaussianImageFilter.ZeroOrder, direction
        )
    return sitk.GetArrayFromImage(image)


def gradient(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-plane gradient of every slice (per pixel, along rows and along columns), as
    ``np.gradient`` gives it on the slice."""
    along_rows, along_cols = np.gradient(values, axis=(1, 2))
    return along_rows, along_cols


def labels(mask: np.ndarray) -> np.ndarray:
    """Connected components (4-connectivity) of every slice of a ``[z, y, x]`` mask.

    Labels are positive integers, distinct across the whole volume (no component spans two
    slices); background is 0. The numbering differs from ``sitk.ConnectedComponent``'s, the
    components do not.
    """
    labelled, _ = ndimage.label(mask, structure=IN_SLICE_FACE_NEIGHBOURS)
    return labelled


def members(labelled: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Pixels of ``labelled`` whose label is among ``chosen`` (label 0, the background, never)."""
    keep = np.zeros(int(labelled.max()) + 1, dtype=bool)
    keep[chosen] = True
    keep[0] = False
    return keep[labelled]


def touching_border(labelled: np.ndarray) -> np.ndarray:
    """Pixels of the components of ``labelled`` (see :func:`labels`) that reach the edge of
    their slice."""
    edge = np.concatenate(
        [
            labelled[:, 0, :].ravel(),
            labelled[:, -1, :].ravel(),
            labelled[:, :, 0].ravel(),
            labelled[:, :, -1].ravel(),
        ]
    )
    return members(labelled, edge)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Every slice with its holes filled: the background that cannot reach the slice's edge
    through 4-connected background pixels (``sitk.BinaryFillhole`` with fullyConnected off)."""
    mask = mask.astype(bool)
    return mask | ~touching_border(labels(~mask))


def nearest_labels(labelled: np.ndarray, point: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For every slice, the label at ``point`` (row, column) and 0 pixels, or, where ``point`` is
    background, the label of the nearest labelled pixel (the first in row order among equally
    near ones) and its distance in pixels. Empty slices give label 0 at infinite distance."""
    inside = 0 <= point[0] < labelled.shape[1] and 0 <= point[1] < labelled.shape[2]
    chosen = labelled[:, point[0], point[1]].copy() if inside else np.zeros(labelled.shape[0], labelled.dtype)
    distances = np.zeros(labelled.shape[0])
    searched = np.flatnonzero(chosen == 0)
    if searched.size == 0:
        return chosen, distances
    rows = np.arange(labelled.shape[1])[:, None] - point[0]
    cols = np.arange(labelled.shape[2])[None, :] - point[1]
    distance = np.hypot(rows, cols).ravel()
    flat = labelled[searched].reshape(searched.size, -1)
    masked = np.where(flat > 0, distance[None, :], np.inf)
    nearest = np.argmin(masked, axis=1)
    within = np.arange(searched.size)
    chosen[searched] = flat[within, nearest]
    distances[searched] = masked[within, nearest]
    return chosen, distances


def component_near(mask: np.ndarray, point: tuple[int, int]) -> np.ndarray:
    """In every slice, the component (4-connectivity) of ``mask`` at ``point`` (row, column),
    or the one nearest to it; empty slices stay empty."""
    labelled = labels(mask)
    chosen, _ = nearest_labels(labelled, point)
    return members(labelled, chosen)


def sector_of(rows: np.ndarray, cols: np.ndarray, centre: tuple[float, float], count: int) -> np.ndarray:
    """Which of ``count`` equal angular sectors around ``centre`` (row, column) each point
    (``rows``, ``cols``; pixels of a slice) lies in: 0 to ``count - 1``."""
    angles = np.arctan2(np.asarray(rows) - centre[0], np.asarray(cols) - centre[1])
    return np.floor((angles + np.pi) / (2 * np.pi) * count).astype(int) % count


def sectors_around(rows: np.ndarray, cols: np.ndarray, centre: tuple[float, float], count: int) -> int:
    """How many of ``count`` equal angular sectors around ``centre`` (row, column) hold at least
    one of the points (``rows``, ``cols``; pixels of a slice)."""
    return int(np.unique(sector_of(rows, cols, centre, count)).size)
