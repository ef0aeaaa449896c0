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
they hold that volume. The ends of a bolus whose curvature loss is not put back (below) hold the
cement their intensity does instead (:mod:`cement_slice_ends`: a cap within a slice, which the
interpolation misses while it fills less than half of it).

The largest piece (the bolus in the body) takes its level halfway between the cement's own
intensity (the brightest interior of any piece or the bolus's depth, :func:`cement_reference_hu`)
and the bone around it: a core's median sits below the cement's intensity, the more so the smaller
the blob, and a level halfway from it lies too low. The bone is the lower quartile of the ring
around the bolus (``cement_slice_ends.BONE_QUANTILE``, as for its ends): the rest of the ring is
brighter, the bolus's own blur near it and the cortex further out (gas, under
``cement_slice_ends.RING_GAS_MAX_HU``, is left out: a quarter of the ring in gas of -900 HU would
put the level at its floor, ``CEMENT_EDGE_FLOOR_HU``, and grow the whole bolus). At that level the
blur's curvature loss (1-3% of a large bolus, 3-10% of the smaller blobs of a low fill) is put back
(:mod:`cement_curvature`; on the slice-averaged phantom sweep the signed median error of PSBCV is
0.0% with it, -0.8% without). A bolus of fewer than ``CURVATURE_MIN_VOXELS`` voxels, one thinner
than the blur (for which the loss estimate does not hold) or one whose intensity the CT's scale
clips keeps the level from its own core and no correction.

Every piece but the largest is then sized from the cement its intensity
holds (:func:`size_pieces_by_intensity`): partial volume against the background around it,
layer by layer parallel to the piece (slice by slice on thick slices), with the cement's own
intensity from the brightest interior of any piece. Around a lens within one or two slices the
background is taken past its rim, which partial volume keeps faint for millimetres beyond the
half maximum (a ring in it read such leaks 11-47% low). On thick slices a lens in a disc (outside
the body, within two slices or flat and facing the vertebra's axis) takes it, voxel by voxel, from the profile
of its surroundings along the vertebra's axis (:mod:`cement_lens_background`): a disc tilted
against the slices puts endplate in every slice's ring. A half
maximum misplaces a leak thinner than the blur (its edge lies outside it) and loses the thin rim
of a flat leak in a disc (-11% to -17% on 1.25-2 mm slices; -6% to +8% sized by intensity).
Cement within bone along a needle's tract (a long piece with bone around it: a pedicle tract)
keeps its half-maximum surface; a flat leak filling a narrow disc, bone around it too on thick
slices, is sized by intensity (+34% -> +8% on 2 mm slices). Fragments of one leak or blob, split
at the threshold by partial volume and noise, are sized together: apart, the cement between them
lay in the regions of both. Each then takes the voxels nearer it than the others, as many as
they hold (taken over the whole, two blobs of a low fill 0.7 mm apart read +8.6% and -6.4% on
2 mm slices).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .cement_curvature import (
    CT_BLUR_SIGMA_MM,
    CURVATURE_LOSS_LIMIT,
    CURVATURE_MIN_VOXELS,
    add_lost_volume,
    clipped_by_scale,
    curvature_loss_fraction,
)
from .cement_lens_background import background_along_axis
from .cement_slice_ends import (
    BONE_QUANTILE,
    END_RING_OUTER_VOXELS,
    RING_GAS_MAX_HU,
    SLICE_ENDS_MIN_VOXELS,
    at_or_above_if_any,
    bone_around_hu,
    slice_end_coverage,
)
from .ct_blur import BACKGROUND_RING_MM, blur_from_cement_edges
from .mask_resampling import SAMPLE_SPACING_MM, coverage_along_axis, volume_preserving_mask
from .measurement import bounding_box, grown_box, voxels_across
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
BONE_RING_SHARE = 0.2
"""A long piece whose ring, in the slice where the piece is widest, is at least this share bone
lies within bone (a pedicle tract: 0.22-1.0 on the phantoms, the least in pedicles whose cortex
is faint) and keeps its half-maximum surface; a leak into a disc has bone mostly in the slices
above and below it (0.0-0.35 in nine of ten), but it is not long; a leak into the spinal canal
beside a tract has 0.0-0.05."""
TRACT_ELONGATION_MIN = 2.0
"""A piece is long like a needle's tract when the spread (SD, mm) of its voxels along its longest
axis is at least this many times that along its second: pedicle tracts 2.6-3.8 on the phantoms,
leaks into a disc (flat lenses) 1.1-1.3, whose ring a narrow disc's endplates make up to 97% bone
when the leak lies in the slice that cuts an endplate."""
TRACT_SPREAD_MIN_MM = 2.5
"""A tract is also at least this long: the spread (SD, mm) along its longest axis, about 9 mm of a
rod (SD = length / sqrt(12)). Pedicle tracts spread 3.2-3.7 mm on the phantoms; a fragment of a
lens tilted across thick slices, long and with the endplates around it, 1.6-2.2 mm."""
INTENSITY_REACH_MM = 1.5
"""How far (mm) beyond a piece its intensity is summed (one voxel at least): the tails of a
0.6 mm blur, about two and a half standard deviations (a reach of 1 mm lost 5% of a 1 mm layer)."""
SMALL_BOLUS_MAX_VOXELS = 300
"""On thick slices (``THICK_SLICE_RATIO``), with the vertebral body known, a bolus of fewer voxels
than this at its half-maximum surface, placed within the slices, is sized from its intensity like
the other pieces (:func:`size_pieces_by_intensity`): whole slices make up its faces, and half
maximum over one slice or two tips its volume. Two thoracic bodies of the sweeps with a low fill
on 2 mm slices read PSBCV -4.7% and -4.6% so, -0.1% and -1.8% sized from their intensity; over the
1250 rows of the sweeps 8 PSBCV errors moved by 0.3 points or more, the sum of their absolute values
from 25.8 to 9.1 points. A larger one is sized so only against its own plateau
(``PLATEAU_BOLUS_MAX_VOXELS``)."""
PLATEAU_BOLUS_MAX_VOXELS = 1000
"""On thick slices, with the body known, a bolus of fewer voxels than this whose curvature loss is
not put back and that has a plateau (:func:`bolus_plateau_hu`) is sized from its intensity against
the cement's intensity on that plateau. Read as usual (:func:`cement_reference_hu`), inside blobs
under 4 mm thick on 2 mm slices, that intensity is about 4.5% low: up to 1000 voxels, 98 of the 282
low fills on thick slices of the sweeps were sized against it, their BCV RMS error rose from 1.17%
to 1.36%, and two read PSBCV +4.2%, sized from the usual reading; a blob without a plateau, 14 x 12 x
6 mm on 0.8 x 0.8 x 2 mm voxels (412 voxels), read +3.6% so, -0.8% by its half-maximum surface."""
PLATEAU_RING_BONE_SHARE_MAX = 0.3
"""A bolus whose ring (one voxel beyond its sizing region, :func:`_sizing_region`) is at least this
share bone (at or above the bone threshold) lies against the cortex or an endplate, which no even
background makes, and keeps its half-maximum surface however small (``PLATEAU_BOLUS_MAX_VOXELS``):
eight boluses of low fills on thick slices of the sweeps had 0.10-0.21 of their ring bone; four small
boluses of high fills in T5 to T8 bodies on 1.5-2 mm slices had 0.45-0.50, and sized from their
intensity read BCV 0.5-2.3 points lower (one from -2.9% to -5.2%)."""
SMALL_BOLUS_PLATEAU_DEPTH_MM = 1.0
"""A small bolus's voxels show the cement's plateau when their voxel's whole extent lies at least
this far (mm) inside its half-maximum surface along every axis (:func:`bolus_plateau_hu`): a 0.6 mm
blur falls to 5% there."""
SMALL_BOLUS_PLATEAU_MIN_VOXELS = 50
"""Plateau voxels a small bolus needs to give the cement's intensity (:func:`bolus_plateau_hu`); with
fewer, the smooth texture of a few voxels sways their median: a bolus of 425 voxels with 40 on its
plateau read 146 HU above the usual reading, and its BCV -4.8%."""
REFERENCE_INTERIOR_MIN_VOXELS = 20
"""Interior voxels a piece needs to tell the cement's intensity (:func:`cement_reference_hu`)."""
REFERENCE_DEPTH_MM = 1.5
"""Depth (mm) within the bolus's core from which its voxels show the cement's own intensity:
two and a half standard deviations of a 0.6 mm blur (:func:`cement_reference_hu`)."""
LAYER_BACKGROUND_MIN_VOXELS = 10
"""Ring voxels a layer needs for a background of its own (:func:`size_pieces_by_intensity`)."""
SETTLED_REACH_MAX_STEPS = 4
"""A settling reach (:func:`size_pieces_by_intensity`) grows to at most this many times the reach
in the slice plane (6 mm for the usual 1.5 mm)."""
SETTLED_PIECE_MAX_SLICES = 2
"""Only a piece within this many slices settles its reach: a lens thinner than the slices, whose
rim partial volume makes faint in the slice plane. A piece across more slices (a tilted leak, a
tract) has its surroundings beside it, and a ring grown in the slice plane leaves them."""
LENS_REACH_STEPS = 2
"""On thick slices a lens's region reaches this many times the reach in the slice plane past its
faint rim (:func:`size_pieces_by_intensity`, with the vertebra's axis), its surroundings as far
again: two tilted disc leaks of the sweeps read -36% and -37% with the ring in their slices, -1.7%
and +4.1% so."""
LENS_FLATNESS_MAX = 0.5
"""A piece across more than two slices is flat like a lens in a disc when the spread of its voxels
across its thinnest axis is at most this share of that along its second (disc leaks 0.23-0.28 on
the phantoms and the test scenes; a leak beside the body's wall 0.5-0.9)."""
LENS_AXIS_ANGLE_MAX_DEG = 30.0
"""A flat piece lies in a disc when its thinnest axis is within this angle (degrees) of the
vertebra's (disc leaks within 3 degrees; leaks along the wall about 90)."""
IN_BODY_SHARE = 0.5
"""A piece with at least this share of its voxels inside the vertebral body is cement in the body
(a second blob of a fill), not a lens in a disc, however thin against the slices: beside the
bolus a lens's background along the axis holds the bolus's blur (a blob of a low fill 0.7 mm
from the bolus, within two 2 mm slices, read -10%; -3.6% sized as cement in the body)."""
SETTLED_RING_FALL_HU = 25.0
"""A settling reach grows while the ring in the piece's widest slice falls by more than this (HU)
with each step: it still lies in the leak's own faint rim (around the faint disc leaks of the
phantoms it fell 100-515 HU a step until it left the rim, then 1-17 HU)."""


def has_thick_slices(spacing_mm: np.ndarray) -> bool:
    """Whether the slices (spacing ``spacing_mm``, i j k, mm) are thick: over ``SAMPLE_SPACING_MM``
    and at least ``THICK_SLICE_RATIO`` times the larger pixel side."""
    slice_mm, pixel_mm = float(spacing_mm[2]), float(max(spacing_mm[0], spacing_mm[1]))
    return slice_mm > SAMPLE_SPACING_MM and slice_mm >= THICK_SLICE_RATIO * pixel_mm


def intensity_reach_voxels(spacing_mm: np.ndarray) -> tuple[int, int, int]:
    """``INTENSITY_REACH_MM`` in whole voxels along i, j and k (spacing ``spacing_mm``, mm)."""
    i, j, k = (voxels_across(INTENSITY_REACH_MM, float(step)) for step in spacing_mm)
    return i, j, k


def _box_around_labels(labels: np.ndarray) -> tuple[slice, slice, slice] | None:
    """The bounding box (``[k, j, i]`` slices) of the labelled voxels grown by one voxel, beyond
    which a one-voxel neighbourhood holds no label; None when there are none."""
    box = bounding_box(labels > 0)
    return None if box is None else grown_box(box, (1, 1, 1), labels.shape)


def _neighbouring_label(labels: np.ndarray) -> np.ndarray:
    """For every voxel, the largest label among itself and its 26 neighbours (``[k, j, i]``),
    worked out within :func:`_box_around_labels`."""
    reached = np.zeros_like(labels)
    box = _box_around_labels(labels)
    if box is None:
        return reached
    reached[box] = sitk.GetArrayFromImage(
        sitk.GrayscaleDilate(sitk.GetImageFromArray(labels[box]), [1, 1, 1], sitk.sitkBox)
    )
    return reached


def threshold_cement(array_hu: np.ndarray, parameters: MeasurementParameters) -> np.ndarray:
    """Cement mask: voxels in ``[cement_min_hu, cement_max_hu]`` (HU, inclusive), ``[k, j, i]``."""
    return (array_hu >= parameters.cement_min_hu) & (array_hu <= parameters.cement_max_hu)


def dilate_voxels(mask: np.ndarray, radius: int | tuple[int, int, int]) -> np.ndarray:
    """Dilation of a ``[k, j, i]`` mask by a ball of ``radius`` voxels (one, or per axis i j k)."""
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    radii = [int(radius)] * 3 if np.isscalar(radius) else [int(r) for r in radius]
    return sitk.GetArrayFromImage(sitk.BinaryDilate(image, radii)) > 0


def cement_edge_level(
    array_hu: np.ndarray,
    core: np.ndarray,
    parameters: MeasurementParameters,
    gap_voxels: int | tuple[int, int, int] = 1,
    cement_hu: float | None = None,
    near: np.ndarray | None = None,
    background_quantile: float = 0.5,
    background_min_hu: float | None = None,
) -> float:
    """Half-maximum level (HU) between the cement and the ring of voxels ``gap_voxels + 1``
    voxels around its ``core`` (one count, or per axis i j k).

    The cement's intensity is ``cement_hu`` (HU) when given, else the median of the core; the
    ring's intensity is its ``background_quantile`` (the median by default; the bolus's is
    ``cement_slice_ends.BONE_QUANTILE``), leaving out voxels under ``background_min_hu`` (HU) when
    given and some remain. Kept between ``CEMENT_EDGE_FLOOR_HU`` and ``cement_min_hu``,
    or up to ``cement_max_hu`` when that lies above 3071 HU (an extended scale, where the level may
    rise above 1500 HU).
    ``near``, the core dilated by ``gap_voxels``, saves working it out again.
    """
    if not core.any():
        return parameters.cement_min_hu
    if near is None:
        near = dilate_voxels(core, gap_voxels)
    around = dilate_voxels(near, 1) & ~near
    if not around.any():
        return parameters.cement_min_hu
    cement = float(np.median(array_hu[core])) if cement_hu is None else float(cement_hu)
    ring = array_hu[around]
    if background_min_hu is not None:
        ring = at_or_above_if_any(ring, background_min_hu)
    level = 0.5 * (cement + float(np.quantile(ring, background_quantile)))
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
    bolus: int | None = None,
    cement_hu: float | None = None,
    blur_sigma_mm: float = CT_BLUR_SIGMA_MM,
) -> np.ndarray:
    """The cement pieces (labels ``[k, j, i]``) with their faces placed within thick slices.

    Along the slice axis (k, ``slice_spacing_mm`` apart), each piece's voxels and their
    neighbours get the fraction of their thickness where the intensity, interpolated between
    slices, lies between the piece's edge level (``levels`` by label) and ``cement_max_hu``; the
    voxels with the largest fractions, brighter first among equals, are taken until they hold
    that covered volume. With the label of the ``bolus`` and the cement's intensity
    ``cement_hu`` (HU) given, the bolus's ends along k hold the cement their intensity does
    instead (:mod:`cement_slice_ends`, with the CT's point spread ``blur_sigma_mm``, mm), unless
    the scale clips that intensity (within ``SATURATION_MARGIN_HU`` of ``cement_max_hu``).
    Returns a bool mask.
    """
    result = np.zeros(pieces.shape, dtype=bool)
    neighbourhood = np.ones((3, 3, 3), dtype=bool)
    for label, found in enumerate(ndimage.find_objects(pieces), start=1):
        if found is None:
            continue
        box = grown_box(found, (1, 1, 1), pieces.shape)
        piece = pieces[box] == label
        near = ndimage.binary_dilation(piece, structure=neighbourhood) & ((pieces[box] == 0) | piece)
        hu = array_hu[box].astype(np.float32)
        coverage = coverage_along_axis(hu, levels[label], parameters.cement_max_hu, 0, slice_spacing_mm)
        # Cement the scale clips has no known intensity to take fractions of.
        if (
            label == bolus
            and cement_hu is not None
            and not clipped_by_scale(cement_hu, parameters.cement_max_hu)
        ):
            around = grown_box(found, (END_RING_OUTER_VOXELS,) * 3, pieces.shape)
            bone_hu = bone_around_hu(array_hu[around], pieces[around] == label)
            if bone_hu is not None and cement_hu > levels[label] > bone_hu:
                coverage = slice_end_coverage(
                    hu, piece, coverage, levels[label], cement_hu, bone_hu, slice_spacing_mm, blur_sigma_mm
                )
        covered = float(coverage[near].sum())
        result[box] |= volume_preserving_mask(coverage, covered, 1.0, near, -hu / 1000.0)
    return result


@dataclass(frozen=True)
class CementSegmentation:
    """What :func:`segment_cement` found: the cement mask (bool ``[k, j, i]``), the edge level
    (HU) of its largest piece and the cement's own intensity (HU, :func:`cement_reference_hu`;
    ``None`` without cement), against which later pieces are sized by intensity."""

    mask: np.ndarray
    edge_level_hu: float
    reference_hu: float | None
    blur_sigma_mm: float | None = None
    """The CT's point spread (SD, mm) measured on the bolus's edges (:mod:`ct_blur`); None when
    it could not be, and ``CT_BLUR_SIGMA_MM`` was assumed."""


def segment_cement(
    array_hu: np.ndarray,
    parameters: MeasurementParameters,
    spacing_mm: np.ndarray | None = None,
    axis_kji: np.ndarray | None = None,
    body_mask: np.ndarray | None = None,
) -> CementSegmentation:
    """Cement of ``array_hu`` (HU, ``[k, j, i]``): its mask, its largest piece's edge level and
    the cement's own intensity.

    Each connected piece of thresholded cement gets its own half-maximum level
    (:func:`cement_edge_level` of that piece: small leaks, whose blurred peak is lower than a
    large blob's, get a lower level), loses its voxels below that level and grows by up to
    ``EDGE_GROWTH_STEPS`` voxels (26-neighbourhood) through voxels at or above that level and
    at or below ``cement_max_hu``. With the voxel spacing (mm, i j k) given and thick slices
    (see ``THICK_SLICE_RATIO``), the pieces are then placed within the slices
    (:func:`place_within_slices`; the largest piece's ends from their intensity when its curvature
    loss is not put back). Every piece but the largest is then sized from its intensity, and on
    thick slices with the body known a small bolus too (``SMALL_BOLUS_MAX_VOXELS``; up to
    ``PLATEAU_BOLUS_MAX_VOXELS`` one with a plateau, against its intensity there:
    :func:`bolus_plateau_hu`) (:func:`size_pieces_by_intensity`; the vertebra's axis
    ``axis_kji``, unit along k j i scaled to mm, lets a lens on thick slices take its background
    along it; ``body_mask``, bool on the grid of ``array_hu``, tells cement in the vertebral body,
    which is no lens in a disc: ``IN_BODY_SHARE``). With the spacing
    given, the largest piece's level is halfway from the cement's own intensity
    (:func:`cement_reference_hu`) instead, and the volume the blur's curvature took from it is put
    back (:mod:`cement_curvature`), unless its core has fewer than ``CURVATURE_MIN_VOXELS``
    voxels, the cement's intensity is clipped by the scale (within ``SATURATION_MARGIN_HU`` of
    ``cement_max_hu``), or the estimated loss is negative or beyond ``CURVATURE_LOSS_LIMIT`` (a
    piece thinner than the blur). With the spacing given, the CT's blur is measured on the
    largest piece's edges (:mod:`ct_blur`) for that and for the bolus's ends on thick slices;
    ``CT_BLUR_SIGMA_MM`` is assumed where it cannot be (a small, thin or clipped bolus).
    """
    core = threshold_cement(array_hu, parameters)
    if not core.any():
        return CementSegmentation(core, parameters.cement_min_hu, None)
    labels = sitk.GetArrayFromImage(
        sitk.ConnectedComponent(sitk.GetImageFromArray(core.astype(np.uint8)), True)
    )
    count = int(labels.max())
    levels = np.full(count + 1, np.inf)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    gap = intensity_reach = (1, 1, 1)
    if spacing_mm is not None:
        gap = tuple(voxels_across(EDGE_RING_GAP_MM, float(step)) for step in spacing_mm)
        intensity_reach = intensity_reach_voxels(spacing_mm)
    reach = tuple(count + 1 for count in gap[::-1])  # voxels along k, j, i: the ring and one more
    largest = 1 + int(np.argmax(sizes[1:]))
    boxes = ndimage.find_objects(labels)
    reference_hu = cement_reference_hu(array_hu, labels, spacing_mm, sizes, boxes)
    measured_blur = None
    if spacing_mm is not None and not clipped_by_scale(reference_hu, parameters.cement_max_hu):
        measured_blur = _blur_of_bolus(
            array_hu, labels, largest, boxes[largest - 1], spacing_mm, reference_hu
        )
    blur_sigma_mm = CT_BLUR_SIGMA_MM if measured_blur is None else measured_blur
    correct_bolus = (
        spacing_mm is not None
        and sizes[largest] >= CURVATURE_MIN_VOXELS
        and not clipped_by_scale(reference_hu, parameters.cement_max_hu)
    )
    bolus_loss = 0.0
    # Each piece's level from its own neighbourhood: its box, grown by the voxels the ring around
    # it reaches (the same voxels as in the whole array, at a fraction of the work).
    for label, box in enumerate(boxes, start=1):
        if box is None:
            continue
        box = grown_box(box, reach, labels.shape)
        piece = labels[box] == label
        near = dilate_voxels(piece, gap)
        if label == largest and correct_bolus:
            level = cement_edge_level(
                array_hu[box],
                piece,
                parameters,
                gap,
                reference_hu,
                near,
                background_quantile=BONE_QUANTILE,
                background_min_hu=RING_GAS_MAX_HU,
            )
            own = near & ((labels[box] == 0) | piece)
            loss = curvature_loss_fraction(array_hu[box], own, level, spacing_mm, blur_sigma_mm)
            if 0.0 <= loss <= CURVATURE_LOSS_LIMIT:
                levels[label], bolus_loss = level, loss
                continue
        levels[label] = cement_edge_level(array_hu[box], piece, parameters, gap, near=near)
    largest_level = float(levels[largest])
    grown = labels.astype(np.int32)
    grown[(grown > 0) & (array_hu < levels[grown])] = 0
    below_top = array_hu <= parameters.cement_max_hu
    for _ in range(EDGE_GROWTH_STEPS):
        reached = _neighbouring_label(grown)
        add = (grown == 0) & (reached > 0) & below_top & (array_hu >= levels[reached])
        if not add.any():
            break
        grown = np.where(add, reached, grown)
    if spacing_mm is not None:
        if has_thick_slices(spacing_mm):
            # A bolus whose curvature loss is put back has its slice profile's share in it.
            ends_by_intensity = bolus_loss == 0.0 and sizes[largest] >= SLICE_ENDS_MIN_VOXELS
            placed = place_within_slices(
                array_hu,
                grown,
                levels,
                float(spacing_mm[2]),
                parameters,
                largest if ends_by_intensity else None,
                reference_hu,
                blur_sigma_mm,
            )
            # Voxels the placing added next to a piece take its label.
            grown = np.where(placed, np.where(grown > 0, grown, _neighbouring_label(grown)), 0).astype(
                np.int32
            )
    # A small bolus on thick slices is sized from its intensity like the other pieces, against its
    # own plateau where it has one; a larger one only where it has one and lies in marrow.
    bolus = grown == largest
    bolus_voxels = np.count_nonzero(bolus)
    # Sized from its intensity at all: on thick slices, with the body known, its curvature loss not put back.
    bolus_sizable = (
        spacing_mm is not None
        and body_mask is not None
        and has_thick_slices(spacing_mm)
        and bolus_loss == 0.0
    )
    plateau_hu = None
    if (
        bolus_sizable
        and 0 < bolus_voxels < PLATEAU_BOLUS_MAX_VOXELS
        and _ring_bone_share(array_hu, grown, largest, intensity_reach, parameters.bone_min_hu)
        < PLATEAU_RING_BONE_SHARE_MAX
    ):
        plateau_hu = bolus_plateau_hu(array_hu, bolus, spacing_mm)
    small_bolus = plateau_hu is not None or (bolus_sizable and bolus_voxels < SMALL_BOLUS_MAX_VOXELS)
    sizing_hu = reference_hu if plateau_hu is None else plateau_hu
    grown = size_pieces_by_intensity(
        array_hu,
        grown,
        set() if small_bolus else {largest},
        sizing_hu,
        parameters.bone_min_hu,
        intensity_reach,
        spacing_mm,
        axis_kji=axis_kji,
        body_mask=body_mask,
        small_bolus=largest if small_bolus else None,
    )
    if bolus_loss > 0.0:
        grown = add_lost_volume(array_hu, grown, largest, bolus_loss, parameters.cement_max_hu)
    return CementSegmentation(grown > 0, largest_level, reference_hu, measured_blur)


def _blur_of_bolus(
    array_hu: np.ndarray,
    labels: np.ndarray,
    bolus: int,
    found: tuple[slice, slice, slice],
    spacing_mm: np.ndarray,
    cement_hu: float,
) -> float | None:
    """The CT's point spread (SD, mm) measured on the edges of the piece ``bolus`` of ``labels``
    (:func:`ct_blur.blur_from_cement_edges`), whose box is ``found``, in that box grown by the
    background ring."""
    margin = tuple(voxels_across(BACKGROUND_RING_MM[1], float(step)) + 1 for step in spacing_mm[::-1])
    box = grown_box(found, margin, labels.shape)
    return blur_from_cement_edges(array_hu[box], labels[box] == bolus, spacing_mm, cement_hu)


def _principal_axes(piece: np.ndarray, spacing_kji: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The spreads (SD, mm, ascending) of a piece's voxel centres (bool ``[k, j, i]``, voxels
    ``spacing_kji`` mm) along its principal axes, and those axes (unit columns, ``[k, j, i]``).
    Fewer than three voxels have no spread, along the grid's axes."""
    points = np.argwhere(piece) * spacing_kji
    if len(points) < 3:
        return np.zeros(3), np.eye(3)
    variances, axes = np.linalg.eigh(np.cov(points.T))
    return np.sqrt(np.maximum(variances, 0.0)), axes


def _elongation(spreads: np.ndarray) -> float:
    """How long a piece is from its principal ``spreads`` (ascending, :func:`_principal_axes`):
    the spread along its longest axis over that along its second (1 for a ball, a disc or a single
    voxel; infinite for a line of voxels)."""
    if spreads[1] <= 0.0:
        return math.inf if spreads[2] > 0.0 else 1.0  # a line of voxels, or a single one
    return float(spreads[2] / spreads[1])


def _layers_across_thinnest_axis(
    piece: np.ndarray, spacing_kji: np.ndarray, normal: np.ndarray
) -> np.ndarray:
    """Layer index (int, ``[k, j, i]`` of ``piece``'s box) of every voxel: its distance (mm) from
    the plane across ``normal``, the piece's thinnest principal axis (:func:`_principal_axes`), in
    steps of a voxel's extent along that axis (``spacing_kji``, mm), the layers centred on the
    voxel nearest the piece's centroid. A flat leak's layers are parallel to it, whatever its tilt
    against the slices."""
    # Layers are centred on the voxel nearest the centroid: across a grid axis they are slices.
    origin = np.rint(np.argwhere(piece).mean(axis=0)) * spacing_kji
    step = float(np.abs(normal) @ spacing_kji)
    grid = np.indices(piece.shape).reshape(3, -1).T * spacing_kji
    distance = (grid - origin) @ normal
    return np.floor(distance / step + 0.5).astype(np.int32).reshape(piece.shape)


def _lies_along_tract(
    hu: np.ndarray, piece: np.ndarray, ring: np.ndarray, spacing_kji: np.ndarray, bone_min_hu: float
) -> bool:
    """Whether a piece (bool, ``[k, j, i]`` of its box, HU ``hu``) is cement within bone along a
    needle's tract: in the slice where it is widest, ``BONE_RING_SHARE`` of its ``ring`` at or
    above ``bone_min_hu`` (HU), and long (``TRACT_ELONGATION_MIN``, ``TRACT_SPREAD_MIN_MM``;
    voxels ``spacing_kji`` mm)."""
    widest = int(np.argmax(piece.sum(axis=(1, 2))))
    if not ring[widest].any() or (hu[widest][ring[widest]] >= bone_min_hu).mean() < BONE_RING_SHARE:
        return False
    spreads, _ = _principal_axes(piece, spacing_kji)
    return _elongation(spreads) >= TRACT_ELONGATION_MIN and spreads[2] >= TRACT_SPREAD_MIN_MM


def _sizing_region(
    grown: np.ndarray, label: int, box: tuple[slice, ...], reach_voxels: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The piece ``label`` of ``grown`` within ``box``, the voxels within ``reach_voxels`` (i j k)
    of it that no other piece holds, and the ring one voxel beyond those (bool, ``[k, j, i]``)."""
    piece = grown[box] == label
    region = dilate_voxels(piece, reach_voxels) & ((grown[box] == 0) | piece)
    return piece, region, dilate_voxels(region, 1) & ~region


def _pieces_sized_together(
    array_hu: np.ndarray,
    grown: np.ndarray,
    kept_labels: Collection[int],
    reach_voxels: tuple[int, int, int],
    spacing_kji: np.ndarray,
    bone_min_hu: float,
) -> tuple[np.ndarray, dict[int, bool], set[int]]:
    """The pieces (``grown`` labels ``[k, j, i]``) with those whose reaches overlap made one.

    Partial volume and noise split a faint leak (a lens tilted across thick slices, a blob of a
    low fill) into fragments at the threshold; sized apart, each fragment's region (``reach_voxels``,
    i j k, around it) covers part of the others' and the cement there is counted twice, or a
    later fragment takes back what an earlier one chose. Pieces within two reaches of each other
    therefore take the lowest of their labels; ``kept_labels`` and tracts
    (:func:`_lies_along_tract`) stay apart. Returns the labels; for each label now holding
    several pieces, whether every one of them lies within ``SETTLED_PIECE_MAX_SLICES`` slices
    (fragments of a lens, which settle their reach like a lens); and the labels of the tracts.
    """
    objects = ndimage.find_objects(grown)
    tracts = set()
    for label, found in enumerate(objects, start=1):
        if found is None or label in kept_labels:
            continue
        box = grown_box(found, (reach_voxels[2] + 1, reach_voxels[1] + 1, reach_voxels[0] + 1), grown.shape)
        piece, _, ring = _sizing_region(grown, label, box, reach_voxels)
        if _lies_along_tract(array_hu[box], piece, ring, spacing_kji, bone_min_hu):
            tracts.add(label)
    movable = (grown > 0) & ~np.isin(grown, [*kept_labels, *tracts])
    if not movable.any():
        return grown, {}, tracts
    groups, _ = ndimage.label(dilate_voxels(movable, reach_voxels), structure=np.ones((3, 3, 3), dtype=bool))
    result = grown.copy()
    first_label: dict[int, int] = {}
    members: dict[int, list[bool]] = {}
    for label in np.unique(grown[movable]):
        found = objects[int(label) - 1]
        voxels = grown[found] == label
        target = first_label.setdefault(int(groups[found][voxels][0]), int(label))
        result[found][voxels] = target
        members.setdefault(target, []).append(found[0].stop - found[0].start <= SETTLED_PIECE_MAX_SLICES)
    thin_fragments = {label: all(thin) for label, thin in members.items() if len(thin) > 1}
    return result, thin_fragments, tracts


def _join_blobs_in_body(
    grown: np.ndarray,
    thin_fragments: dict[int, bool],
    tracts: set[int],
    bolus: int,
    body_mask: np.ndarray,
    reach_voxels: tuple[int, int, int],
) -> np.ndarray:
    """The labels ``grown`` (``[k, j, i]``) with the label ``bolus`` given to the pieces within two
    reaches (``reach_voxels``, i j k) of it that have ``IN_BODY_SHARE`` of their voxels in
    ``body_mask`` (bool ``[k, j, i]``), tracts apart; ``thin_fragments`` (see
    :func:`_pieces_sized_together`, changed in place) then holds the bolus as fragments that do
    not settle. Blobs of one fill are sized together; a leak into a disc beside a small bolus is
    not."""
    grown = grown.copy()
    near = dilate_voxels(dilate_voxels(grown == bolus, reach_voxels), reach_voxels)
    for label in np.unique(grown[near & (grown > 0)]):
        label = int(label)
        if label == bolus or label in tracts:
            continue
        piece = grown == label
        if float(body_mask[piece].mean()) >= IN_BODY_SHARE:
            grown[piece] = bolus
            thin_fragments.pop(label, None)
            thin_fragments[bolus] = False
    return grown


def _chosen_by_fragment(
    fraction: np.ndarray,
    held: np.ndarray,
    region: np.ndarray,
    fragments: np.ndarray,
    piece: np.ndarray,
    spacing_kji: np.ndarray,
    tie_break: np.ndarray,
) -> np.ndarray:
    """The voxels of ``region`` that hold the cement ``held`` (share of each voxel, ``[k, j, i]``),
    those with the largest ``fraction`` first, piece by piece: ``piece`` is the pieces sized
    together, ``fragments`` their labels before (``spacing_kji``, mm, measures the distances).
    Each voxel of the region belongs to the nearest of them, and each takes as many of its own
    as they hold (rounded so that the counts add up to the whole's). Taken over the whole region,
    the voxels that partial volume made brightest went to one of them: two blobs of a low fill
    0.7 mm apart on 2 mm slices read +8.6% and -6.4%, and the split plane between them put that
    error into PSBCV (+8.4%)."""
    labels = np.unique(fragments[piece])
    labels = labels[labels > 0]
    if labels.size <= 1:
        wanted = max(0, int(round(float(held[region].sum()))))
        return volume_preserving_mask(fraction, float(wanted), 1.0, region, tie_break)
    seeds = np.where(piece, fragments, 0)
    nearest = ndimage.distance_transform_edt(
        seeds == 0, sampling=spacing_kji, return_distances=False, return_indices=True
    )
    owner = seeds[tuple(nearest)]
    chosen = np.zeros(region.shape, dtype=bool)
    held_before = 0.0
    for label in labels:
        share = region & (owner == label)
        held_here = float(held[share].sum())
        wanted = max(0, int(round(held_before + held_here)) - int(round(held_before)))
        held_before += held_here
        chosen |= volume_preserving_mask(fraction, float(wanted), 1.0, share, tie_break)
    return chosen


def _settled_region(
    hu: np.ndarray,
    piece: np.ndarray,
    free: np.ndarray,
    reach_voxels: tuple[int, int, int],
    widest: int,
    region: np.ndarray,
    ring: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The region and ring of ``piece`` (``[k, j, i]`` of its box, HU ``hu``) with the reach grown
    in the slice plane, ``reach_voxels`` (i j k) at a time, while the ring's median in slice
    ``widest`` falls by more than ``SETTLED_RING_FALL_HU`` (see :func:`size_pieces_by_intensity`);
    ``region`` and ``ring`` are those of the first step, ``free`` where the region may lie."""

    def median_in_widest(ring_mask: np.ndarray) -> float:
        values = hu[widest][ring_mask[widest]]
        return float(np.median(values)) if values.size else -math.inf

    level = median_in_widest(ring)
    for step in range(2, SETTLED_REACH_MAX_STEPS + 1):
        reach = (step * reach_voxels[0], step * reach_voxels[1], reach_voxels[2])
        wider = dilate_voxels(piece, reach) & free
        wider_ring = dilate_voxels(wider, 1) & ~wider
        wider_level = median_in_widest(wider_ring)
        if wider_level >= level - SETTLED_RING_FALL_HU:
            break  # the ring has left the piece's rim
        region, ring, level = wider, wider_ring, wider_level
    return region, ring


def _background_by_layers(hu: np.ndarray, ring: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """Background (HU, float32, shape of ``hu``): the median of the ``ring`` (bool) in each layer
    (``layers``, int) where the layer holds ``LAYER_BACKGROUND_MIN_VOXELS`` of it, the ring's
    median elsewhere."""
    background = np.full(hu.shape, float(np.median(hu[ring])), dtype=np.float32)
    for layer in np.unique(layers[ring]):
        in_layer = layers == layer
        layer_ring = ring & in_layer
        if layer_ring.sum() >= LAYER_BACKGROUND_MIN_VOXELS:
            background[in_layer] = float(np.median(hu[layer_ring]))
    return background


def _is_lens(spreads: np.ndarray, axes: np.ndarray, axis_kji: np.ndarray, settles: bool) -> bool:
    """Whether a piece (principal ``spreads`` and ``axes``, :func:`_principal_axes`) is a lens in a
    disc across the vertebra's axis ``axis_kji`` (unit, k j i scaled to mm): not long
    (``TRACT_ELONGATION_MIN``), and either within a slice or two (``settles``) or flat
    (``LENS_FLATNESS_MAX``) with its thinnest axis within ``LENS_AXIS_ANGLE_MAX_DEG`` of the
    vertebra's."""
    if _elongation(spreads) >= TRACT_ELONGATION_MIN:
        return False
    if settles:
        return True
    facing = abs(float(axes[:, 0] @ axis_kji)) >= math.cos(math.radians(LENS_AXIS_ANGLE_MAX_DEG))
    return bool(spreads[0] <= LENS_FLATNESS_MAX * spreads[1] and facing)


def _lens_region(
    hu: np.ndarray, labels: np.ndarray, piece: np.ndarray, reach_voxels: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The region of a lens on thick slices (``piece``, bool ``[k, j, i]`` of its box, HU ``hu``,
    ``labels`` the pieces there) and its surroundings, or ``None`` without surroundings.

    The region reaches ``LENS_REACH_STEPS`` times ``reach_voxels`` (i j k) in the slice plane
    and one reach along k, clear of the other pieces' reach; the surroundings are the voxels
    within as far again (one reach along k) that lie clear of them too and under
    ``CEMENT_EDGE_FLOOR_HU`` (no cement's blur)."""
    reach_i, reach_j, reach_k = reach_voxels
    lens_reach = (LENS_REACH_STEPS * reach_i, LENS_REACH_STEPS * reach_j, reach_k)
    others = dilate_voxels((labels > 0) & ~piece, reach_voxels)
    region = dilate_voxels(piece, lens_reach) & ~others
    surroundings = dilate_voxels(region, lens_reach) & ~region & ~others & (hu < CEMENT_EDGE_FLOOR_HU)
    if not surroundings.any():
        return None
    return region, surroundings


def _ring_bone_share(
    array_hu: np.ndarray,
    grown: np.ndarray,
    label: int,
    reach_voxels: tuple[int, int, int],
    bone_min_hu: float,
) -> float:
    """The share of the ring around piece ``label`` of ``grown`` (labels ``[k, j, i]``; the ring of
    :func:`_sizing_region` with ``reach_voxels``, i j k) at or above ``bone_min_hu`` (HU)."""
    piece_box = ndimage.find_objects((grown == label).astype(np.uint8))[0]
    box = grown_box(piece_box, [reach + 1 for reach in reach_voxels[::-1]], grown.shape)
    _, _, ring = _sizing_region(grown, label, box, reach_voxels)
    if not ring.any():
        return 1.0
    return float(np.count_nonzero(array_hu[box][ring] >= bone_min_hu)) / float(np.count_nonzero(ring))


def bolus_plateau_hu(array_hu: np.ndarray, bolus: np.ndarray, spacing_mm: np.ndarray) -> float | None:
    """The cement's intensity (HU) on a small bolus's plateau, or None where it has too little.

    The plateau is the voxels of ``bolus`` (bool ``[k, j, i]``, its half-maximum surface) whose
    whole extent lies at least ``SMALL_BOLUS_PLATEAU_DEPTH_MM`` inside that surface along every
    axis: the nearest voxel outside the bolus lies, along each axis, at least that depth plus one
    voxel away (``spacing_mm``, i j k, mm), so that on thick slices a slice at the bolus's end,
    which averages its surface, is no plateau. Their median, or None with fewer than
    ``SMALL_BOLUS_PLATEAU_MIN_VOXELS`` of them. Read so on the largest thresholded piece of the 63
    phantoms on thick slices of two sweep sets (seeds 2026 and 2040; 61 with 20 such voxels or
    more), it came within -49 to +87 HU of the mean of their cement (RMS 22 HU), where
    :func:`cement_reference_hu` read -119 to +46 HU (RMS 39 HU, mean -27 HU).
    """
    if not bolus.any():
        return None
    box = ndimage.find_objects(bolus.astype(np.uint8))[0]
    step_kji = np.asarray(spacing_mm, float)[::-1]
    # Distances scaled so that one unit is the depth plus a voxel along each axis.
    depth = ndimage.distance_transform_edt(
        np.pad(bolus[box], 1), sampling=step_kji / (step_kji + SMALL_BOLUS_PLATEAU_DEPTH_MM)
    )[1:-1, 1:-1, 1:-1]
    plateau = depth >= 1.0
    if np.count_nonzero(plateau) < SMALL_BOLUS_PLATEAU_MIN_VOXELS:
        return None
    return float(np.median(array_hu[box][plateau]))


def cement_reference_hu(
    array_hu: np.ndarray,
    labels: np.ndarray,
    spacing_mm: np.ndarray | None = None,
    sizes: np.ndarray | None = None,
    boxes: list[tuple[slice, ...] | None] | None = None,
) -> float:
    """The cement's own intensity (HU): the highest median over the pieces' interiors.

    A piece's interior is its thresholded core (``labels`` ``[k, j, i]``) less one voxel all
    round in the slice plane; pieces with fewer than ``REFERENCE_INTERIOR_MIN_VOXELS`` interior
    voxels do not count. A core's own median sits below the cement's plateau, the more so the
    thinner the piece (a layer about a slice thick never reaches it): the brightest interior is
    the one that does. With the voxel spacing (mm, i j k) given, the largest core's voxels at
    least ``REFERENCE_DEPTH_MM`` from its edge are one more interior: one voxel in from a bolus's
    edge still holds some of the blur's slope, and so do whole slices at its ends (on the
    seed-2028 phantom sweep the brightest interior read 122 HU below to 90 HU above the bolus's
    median without blur and noise, the bolus's voxels 1.5 mm deep 5 HU below to 50 HU above).
    Falls back to the largest core's median. ``sizes`` (voxels per label, the background's
    first) and ``boxes`` (``ndimage.find_objects`` of ``labels``) are worked out when not given.
    """
    # In the slice plane, within the box around the cores (nothing beyond is core).
    interiors = np.zeros(labels.shape, dtype=bool)
    around = _box_around_labels(labels)
    if around is not None:
        cores = sitk.GetImageFromArray((labels[around] > 0).astype(np.uint8))
        interiors[around] = sitk.GetArrayFromImage(sitk.BinaryErode(cores, [1, 1, 0])) > 0
    sizes = np.bincount(labels.ravel()) if sizes is None else np.array(sizes)
    sizes[0] = 0
    largest = int(np.argmax(sizes))
    plateaus = []
    for label, box in enumerate(ndimage.find_objects(labels) if boxes is None else boxes, start=1):
        if box is None:
            continue
        interior = interiors[box] & (labels[box] == label)
        if interior.sum() >= REFERENCE_INTERIOR_MIN_VOXELS:
            plateaus.append(float(np.median(array_hu[box][interior])))
        if label == largest and spacing_mm is not None:
            core = np.pad(labels[box] == label, 1)
            depth_mm = ndimage.distance_transform_edt(core, sampling=np.asarray(spacing_mm, float)[::-1])
            deep = depth_mm[1:-1, 1:-1, 1:-1] >= REFERENCE_DEPTH_MM
            if deep.sum() >= REFERENCE_INTERIOR_MIN_VOXELS:
                plateaus.append(float(np.median(array_hu[box][deep])))
    if plateaus:
        return max(plateaus)
    return float(np.median(array_hu[labels == largest]))


def size_pieces_by_intensity(
    array_hu: np.ndarray,
    grown: np.ndarray,
    kept_labels: Collection[int],
    reference_hu: float,
    bone_min_hu: float,
    reach_voxels: tuple[int, int, int] = (1, 1, 1),
    spacing_mm: np.ndarray | None = None,
    settle_reach: bool = True,
    axis_kji: np.ndarray | None = None,
    body_mask: np.ndarray | None = None,
    small_bolus: int | None = None,
) -> np.ndarray:
    """Every piece but ``kept_labels`` (the largest), re-sized from the cement its intensity holds.

    A half-maximum surface misplaces what is thin or small against the blur: a leak thinner than
    the blur never reaches the cement's intensity and its edge lies outside its surface, while
    the thin rim of a flat leak in a disc (a lens) stays under half maximum and is lost, as is a
    rim of every curved surface. Partial volume holds the cement whatever its shape: each piece
    (``grown`` labels ``[k, j, i]``) takes the brightest voxels within ``reach_voxels`` (i j k,
    about ``INTENSITY_REACH_MM``) of it, as many as the sum of ``(HU - background) / (cement -
    background)`` over them, the cement's intensity ``reference_hu`` (HU,
    :func:`cement_reference_hu`). The
    background is the median of the ring just outside, layer by layer where a layer holds
    ``LAYER_BACKGROUND_MIN_VOXELS`` of it: next to a disc leak the endplates raise the
    surroundings of the layers they cross only. The layers lie across the piece's thinnest axis
    (:func:`_layers_across_thinnest_axis`), parallel to a flat leak even in a disc tilted against
    the slices; on thick slices (``THICK_SLICE_RATIO``), where each voxel averages its slice, they
    are the slices. The kept pieces (the bolus in the body, against
    cortex, clefts and the pedicle tract) keep their half-maximum surface, and so does cement
    within bone (``BONE_RING_SHARE`` of its ring at or above ``bone_min_hu``, HU, in the slice
    where it is widest, and long: ``TRACT_ELONGATION_MIN``; a pedicle tract): cortex and marrow
    around it are no even background. ``spacing_mm`` (i j k, mm; 1 mm by default) measures the
    pieces and the slices. With ``settle_reach``, a piece within ``SETTLED_PIECE_MAX_SLICES``
    slices (a lens thinner than them, whose rim stays faint for millimetres beyond its half
    maximum) has its reach grown in the slice plane, a step of ``reach_voxels`` at a time up to
    ``SETTLED_REACH_MAX_STEPS``, while the ring's median in its widest slice falls by more than
    ``SETTLED_RING_FALL_HU``: until the ring has left the rim. On thick slices with the
    vertebra's axis ``axis_kji`` given (unit, k j i scaled to mm), such a piece that is not long
    (a lens, not a tract's fragments: ``TRACT_ELONGATION_MIN``) takes its background voxel by
    voxel from its surroundings' profile along the axis instead (:mod:`cement_lens_background`;
    a disc tilted against the slices puts endplate in a slice's ring; a piece with
    ``IN_BODY_SHARE`` of its voxels in ``body_mask``, bool ``[k, j, i]``, is cement in the
    body and no lens), its region reaching
    ``LENS_REACH_STEPS`` reaches in the slice plane; there a voxel below the background counts
    against the cement (noise over the wide region cancels instead of adding up). A lens that
    neither settles nor takes its background along the axis (across more slices) takes its ring
    a voxel further out: its rim, thinner than the blur, stays faint beyond the reach, and the
    ring right outside it took up the rim's tail (a lens 1.5 mm thick under a 0.75 mm blur read
    7-9% low, 1.5-3.6% with the ring further out). Pieces whose
    regions overlap are sized as one, under the lowest of their labels
    (:func:`_pieces_sized_together`), each keeping the cement of the voxels nearest it
    (:func:`_chosen_by_fragment`). A ``small_bolus`` (a label not kept; see
    ``SMALL_BOLUS_MAX_VOXELS``) is sized together only with the pieces within two reaches of it
    that lie mostly in the body (``IN_BODY_SHARE`` of ``body_mask``): blobs of the same fill, not
    a leak into a disc next to it. Returns the new labels.
    """
    spacing_kji = np.ones(3) if spacing_mm is None else np.asarray(spacing_mm, float)[::-1]
    thick_slices = has_thick_slices(spacing_kji[::-1])
    # A lens takes its background along the vertebra's axis (see _lens_region).
    lens_possible = thick_slices and axis_kji is not None
    fragments = grown
    apart = set(kept_labels) if small_bolus is None else {*kept_labels, small_bolus}
    grown, thin_fragments, tracts = _pieces_sized_together(
        array_hu, grown, apart, reach_voxels, spacing_kji, bone_min_hu
    )
    if small_bolus is not None and body_mask is not None:
        grown = _join_blobs_in_body(grown, thin_fragments, tracts, small_bolus, body_mask, reach_voxels)
    result = grown.copy()
    for label, box in enumerate(ndimage.find_objects(grown), start=1):
        if box is None or label in kept_labels or label in tracts:
            continue  # the bolus and cement within bone along a tract keep their surface
        # The region reaches ``reach_voxels`` beyond the piece (a settling one up to
        # SETTLED_REACH_MAX_STEPS times that in the slice plane) and its ring one voxel further.
        settles = settle_reach and thin_fragments.get(
            label, box[0].stop - box[0].start <= SETTLED_PIECE_MAX_SLICES
        )
        # A lens's region and surroundings reach twice LENS_REACH_STEPS reaches in the slice plane
        # and two along k.
        steps = max(SETTLED_REACH_MAX_STEPS if settles else 1, 2 * LENS_REACH_STEPS if lens_possible else 1)
        k_steps = 2 if lens_possible else 1
        margins = (k_steps * reach_voxels[2] + 1, steps * reach_voxels[1] + 1, steps * reach_voxels[0] + 1)
        box = grown_box(box, margins, grown.shape)
        piece, region, ring = _sizing_region(grown, label, box, reach_voxels)
        if not ring.any():
            continue
        hu = array_hu[box].astype(np.float32)
        # Single pieces were judged when grouped; fragments made one are judged as a whole.
        if label in thin_fragments and _lies_along_tract(hu, piece, ring, spacing_kji, bone_min_hu):
            continue  # cement within bone, along a tract
        spreads, axes = _principal_axes(piece, spacing_kji)
        in_body = body_mask is not None and float(body_mask[box][piece].mean()) >= IN_BODY_SHARE
        lens_like = axis_kji is not None and not in_body and _is_lens(spreads, axes, axis_kji, settles)
        lens = _lens_region(hu, grown[box], piece, reach_voxels) if lens_possible and lens_like else None
        if lens is not None:
            region, surroundings = lens
            background = background_along_axis(hu, surroundings, axis_kji, spacing_kji)
        else:
            if lens_like and not settles:
                ring = dilate_voxels(region, 2) & ~dilate_voxels(region, 1)  # beyond the faint rim
            elif settles:
                free = (grown[box] == 0) | piece
                widest = int(np.argmax(piece.sum(axis=(1, 2))))
                region, ring = _settled_region(hu, piece, free, reach_voxels, widest, region, ring)
            # Layers across the piece's thinnest axis; on thick slices, the slices themselves.
            layers = (
                np.indices(hu.shape)[0]
                if thick_slices
                else _layers_across_thinnest_axis(piece, spacing_kji, axes[:, 0])
            )
            background = _background_by_layers(hu, ring, layers)
        contrast = np.maximum(reference_hu - background, 1.0)
        excess = (hu - background) / contrast
        fraction = np.clip(excess, 0.0, 1.0)
        # A background voxel by voxel lets the noise under it cancel the noise over it.
        held = np.minimum(excess, 1.0) if lens is not None else fraction
        chosen = _chosen_by_fragment(fraction, held, region, fragments[box], piece, spacing_kji, -hu / 1000.0)
        local = result[box]
        local[piece] = 0
        local[chosen] = label
    return result
