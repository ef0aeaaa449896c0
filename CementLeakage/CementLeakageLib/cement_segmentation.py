"""Cement mask of a CT: the 1500 HU threshold with the blob edges placed at half maximum.

Cement is far brighter than the bone around it (about 2500-3000 HU against 100-300 HU), so
partial volume and blur spread each blob's edge over a voxel or two. A fixed threshold of
1500 HU lies above the halfway level between cement and its surroundings and trims a thin
rim off every blob, a few per cent of the volume. The edge is therefore refined: voxels
touching the thresholded cement are added when they are brighter than halfway between the
cement's median intensity and that of the voxels around it, never below
``CEMENT_EDGE_FLOOR_HU`` nor above 1500 HU. On an extended CT scale (upper bound above
3071 HU) dense cement is not clipped and lies well above 3071 HU (about 3500 HU), its halfway
level above 1500 HU: there the rim between 1500 HU and that level, mostly bone partly covered
by cement, is trimmed off the piece instead (BCV +5% -> within 1% on such phantoms).

On slices markedly thicker than the pixels (``THICK_SLICE_RATIO``) a thin layer of cement can
lie anywhere within a slice, and whole voxels move its volume by up to half a slice at each
face. Each piece is then placed within the slices (:func:`place_within_slices`): the intensity
is interpolated between slices, each voxel gets the fraction of its thickness at or above the
piece's edge level, and the voxels around the piece with the largest fractions are taken until
they hold that volume. On other grids, a piece whose peak stays faint (a leak thinner than the
blur, whose half-maximum edge lies outside its surface) is sized from the cement its intensity
holds instead (:func:`size_faint_pieces_by_intensity`).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .mask_resampling import SAMPLE_SPACING_MM, coverage_along_axis, volume_preserving_mask
from .measurement import grown_box
from .parameters import CT_SCALE_TOP_HU, MeasurementParameters

CEMENT_EDGE_FLOOR_HU = 1000.0
"""Lowest level (HU) the refined cement edge may reach."""
THICK_SLICE_RATIO = 1.5
"""Slices at least this many times thicker than the pixels (and over ``SAMPLE_SPACING_MM``) are
thick: the cement's faces are placed within them."""
EDGE_GROWTH_STEPS = 3
"""Voxels the thresholded cement may grow into its half-maximum edge: thin leaks and tracts, whose
blurred peak is lower, keep their 1500 HU core further inside their true edge than big blobs."""
EDGE_RING_GAP_MM = 1.0
"""The surroundings of a piece are sampled about this far (mm) beyond it, past most of the blur
(one voxel beyond it when the spacing is not known)."""
FAINT_PIECE_PEAK_FRACTION = 0.8
"""A piece whose core median is under this fraction of the largest piece's is thinner than the
blur: it is sized from its intensity (see :func:`size_faint_pieces_by_intensity`)."""


def threshold_cement(array_hu: np.ndarray, parameters: MeasurementParameters) -> np.ndarray:
    """Cement mask: voxels in ``[cement_min_hu, cement_max_hu]`` (HU, inclusive), ``[k, j, i]``."""
    return (array_hu >= parameters.cement_min_hu) & (array_hu <= parameters.cement_max_hu)


def _dilate(mask: np.ndarray, radius: int | tuple[int, int, int]) -> np.ndarray:
    """Dilation of a ``[k, j, i]`` mask by a ball of ``radius`` voxels (one, or per axis i j k)."""
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    radii = [int(radius)] * 3 if np.isscalar(radius) else [int(r) for r in radius]
    return sitk.GetArrayFromImage(sitk.BinaryDilate(image, radii)) > 0


def cement_edge_level(
    array_hu: np.ndarray,
    core: np.ndarray,
    parameters: MeasurementParameters,
    gap_voxels: int | tuple[int, int, int] = 1,
) -> float:
    """Half-maximum level (HU) between the cement ``core`` and the ring of voxels
    ``gap_voxels + 1`` voxels around it (one count, or per axis i j k).

    Kept between ``CEMENT_EDGE_FLOOR_HU`` and ``cement_min_hu``, or up to ``cement_max_hu`` when
    that lies above 3071 HU (an extended scale, where the level may rise above 1500 HU).
    """
    if not core.any():
        return parameters.cement_min_hu
    near = _dilate(core, gap_voxels)
    around = _dilate(near, 1) & ~near
    if not around.any():
        return parameters.cement_min_hu
    level = 0.5 * (float(np.median(array_hu[core])) + float(np.median(array_hu[around])))
    # On the usual scale 1500 HU is about halfway between cement and bone; only cement on an
    # extended scale (upper bound above 3071 HU) lies so high that its halfway level is above it.
    extended_scale = parameters.cement_max_hu > CT_SCALE_TOP_HU
    ceiling = parameters.cement_max_hu if extended_scale else parameters.cement_min_hu
    return float(np.clip(level, CEMENT_EDGE_FLOOR_HU, ceiling))


def place_within_slices(
    array_hu: np.ndarray,
    pieces: np.ndarray,
    levels: np.ndarray,
    slice_spacing_mm: float,
    parameters: MeasurementParameters,
) -> np.ndarray:
    """The cement pieces (labels ``[k, j, i]``) with their faces placed within thick slices.

    Along the slice axis (k, ``slice_spacing_mm`` apart), each piece's voxels and their
    neighbours get the fraction of their thickness where the intensity, interpolated between
    slices, lies between the piece's edge level (``levels`` by label) and ``cement_max_hu``; the
    voxels with the largest fractions, brighter first among equals, are taken until they hold
    that covered volume. Returns a bool mask.
    """
    result = np.zeros(pieces.shape, dtype=bool)
    neighbourhood = np.ones((3, 3, 3), dtype=bool)
    for label, box in enumerate(ndimage.find_objects(pieces), start=1):
        if box is None:
            continue
        box = grown_box(box, (1, 1, 1), pieces.shape)
        piece = pieces[box] == label
        near = ndimage.binary_dilation(piece, structure=neighbourhood) & ((pieces[box] == 0) | piece)
        hu = array_hu[box].astype(np.float32)
        coverage = coverage_along_axis(hu, levels[label], parameters.cement_max_hu, 0, slice_spacing_mm)
        covered = float(coverage[near].sum())
        result[box] |= volume_preserving_mask(coverage, covered, 1.0, near, -hu / 1000.0)
    return result


def segment_cement(
    array_hu: np.ndarray, parameters: MeasurementParameters, spacing_mm: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Cement mask ``[k, j, i]`` of ``array_hu`` (HU) and the edge level (HU) of the largest piece.

    Each connected piece of thresholded cement gets its own half-maximum level
    (:func:`cement_edge_level` of that piece: small leaks, whose blurred peak is lower than a
    large blob's, get a lower level), loses its voxels below that level and grows by up to
    ``EDGE_GROWTH_STEPS`` voxels (26-neighbourhood) through voxels at or above that level and
    at or below ``cement_max_hu``. With the voxel spacing (mm, i j k) given and thick slices
    (see ``THICK_SLICE_RATIO``), the pieces are then placed within the slices
    (:func:`place_within_slices`).
    """
    core = threshold_cement(array_hu, parameters)
    if not core.any():
        return core, parameters.cement_min_hu
    labels = sitk.GetArrayFromImage(
        sitk.ConnectedComponent(sitk.GetImageFromArray(core.astype(np.uint8)), True)
    )
    count = int(labels.max())
    levels = np.full(count + 1, np.inf)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    gap = (1, 1, 1)
    if spacing_mm is not None:
        gap = tuple(max(1, int(round(EDGE_RING_GAP_MM / float(step)))) for step in spacing_mm)
    reach = tuple(count + 1 for count in gap[::-1])  # voxels along k, j, i: the ring and one more
    # Each piece's level from its own neighbourhood: its box, grown by the voxels the ring around
    # it reaches (the same voxels as in the whole array, at a fraction of the work).
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        box = grown_box(box, reach, labels.shape)
        levels[label] = cement_edge_level(array_hu[box], labels[box] == label, parameters, gap)
    largest_level = float(levels[1 + int(np.argmax(sizes[1:]))])
    grown = labels.astype(np.int32)
    grown[(grown > 0) & (array_hu < levels[grown])] = 0
    below_top = array_hu <= parameters.cement_max_hu
    for _ in range(EDGE_GROWTH_STEPS):
        reached = sitk.GetArrayFromImage(
            sitk.GrayscaleDilate(sitk.GetImageFromArray(grown), [1, 1, 1], sitk.sitkBox)
        )
        add = (grown == 0) & (reached > 0) & below_top & (array_hu >= levels[reached])
        if not add.any():
            break
        grown = np.where(add, reached, grown)
    if spacing_mm is not None:
        slice_mm, pixel_mm = float(spacing_mm[2]), float(max(spacing_mm[0], spacing_mm[1]))
        if slice_mm > SAMPLE_SPACING_MM and slice_mm >= THICK_SLICE_RATIO * pixel_mm:
            return place_within_slices(array_hu, grown, levels, slice_mm, parameters), largest_level
    grown = size_faint_pieces_by_intensity(array_hu, grown, labels, sizes, gap)
    return grown > 0, largest_level


def size_faint_pieces_by_intensity(
    array_hu: np.ndarray,
    grown: np.ndarray,
    labels: np.ndarray,
    sizes: np.ndarray,
    reach_voxels: tuple[int, int, int] = (1, 1, 1),
) -> np.ndarray:
    """Pieces whose blurred peak is faint, re-sized from the cement their intensity holds.

    A leak thinner than the blur (a layer in a disc, a thin vein) never reaches the cement's
    own intensity: its half-maximum edge lies outside its true surface and overstates it. Each
    piece (``grown`` labels ``[k, j, i]``; ``labels`` the thresholded cores, ``sizes`` their
    voxel counts) whose core median stays under ``FAINT_PIECE_PEAK_FRACTION`` of the largest
    piece's (the cement's intensity, HU) takes the brightest voxels within ``reach_voxels``
    (i j k, about ``EDGE_RING_GAP_MM``) of it, as many as the sum of
    ``(HU - background) / (cement - background)`` over them: the volume of cement its partial
    volume holds. The background is the median of the ring just outside; a wider reach would
    take in the cortex of an endplate next to a disc leak. Returns the new labels.
    """
    largest = 1 + int(np.argmax(sizes[1:]))
    reference_hu = float(np.median(array_hu[labels == largest]))
    result = grown.copy()
    # The region reaches ``reach_voxels`` beyond the piece and its ring one voxel further.
    margins = tuple(count + 1 for count in reach_voxels[::-1])  # k, j, i
    for label, box in enumerate(ndimage.find_objects(grown), start=1):
        if box is None or label == largest:
            continue
        box = grown_box(box, margins, grown.shape)
        piece = grown[box] == label
        hu = array_hu[box].astype(np.float32)
        core_median = float(np.median(hu[labels[box] == label])) if (labels[box] == label).any() else 0.0
        if core_median >= FAINT_PIECE_PEAK_FRACTION * reference_hu:
            continue
        region = _dilate(piece, reach_voxels) & ((grown[box] == 0) | piece)
        ring = _dilate(region, 1) & ~region
        if not ring.any():
            continue
        background = float(np.median(hu[ring]))
        contrast = max(reference_hu - background, 1.0)
        fraction = np.clip((hu - background) / contrast, 0.0, 1.0)
        wanted = int(round(float(fraction[region].sum())))
        chosen = volume_preserving_mask(fraction, float(wanted), 1.0, region, -hu / 1000.0)
        local = result[box]
        local[piece] = 0
        local[chosen] = label
    return result
