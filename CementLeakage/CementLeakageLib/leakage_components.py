"""Every cement component outside the vertebral body: its volume, where it lies and what it suggests.

Input masks are boolean ``[k, j, i]`` on one :class:`~CementLeakageLib.geometry.VolumeGeometry`:
the vertebral body (cortex included) and all cement near the vertebra (inside and outside the
body). The cement outside the body (``cement & ~body``) is split into 26-connected components
inside a box around the body (the body's voxel bounding box plus :data:`CROP_MARGIN_MM` on every
side), and those of one location class that come within :data:`FRAGMENT_GAP_MM` of each other are
one component (the fragments of a thin leak across thick slices); cement beyond the box is not
described but its volume is reported
(:attr:`ExtravertebralCement.outside_box_volume_cm3`). Components smaller than
``min_volume_mm3`` are not listed either; their count and total volume are reported
(:attr:`ExtravertebralCement.ignored_volume_cm3`), so that listed + ignored + outside the box
equals all cement outside the body.

Per component: ``volume_cm3`` is the voxel count times the voxel volume; ``centroid_ras`` the
mean of its voxel centres (RAS mm); ``distance_to_body_mm`` the smallest gap between a
component voxel and the body mask (mm, 0 when they touch), taken from a Euclidean distance map
of the body with the grid's spacing: for each component voxel the nearest body voxel (centre to
centre) is found and the gap between the two voxels is ``|max(|di| - 1, 0) * spacing|`` over the
index offsets, i.e. the distance between the voxels' boxes.

Classification uses the vertebra frame (:mod:`vertebra_frame`) of the endplate midpoints:
``x`` lateral (patient right), ``y`` anterior, ``z`` axial, in mm from the lower endplate
midpoint. The body's own extent comes from the body voxels' frame coordinates:
``x_min..x_max`` (centre ``x_c``, half width ``w``), ``y_min..y_max`` (posterior and anterior
walls) and its projected outline in the x-y plane. With the component centroid at (x, y, z),
the rules are tried in this order:

1. disc superior / disc inferior: (x, y) lies inside the body's core outline (the columns it
   spans over at least half its height, :data:`CORE_COLUMN_FRACTION`) dilated by
   :data:`DISC_OUTLINE_MARGIN_MM` (2 mm), and z lies above the highest (below the lowest) body
   voxel of those columns within :data:`LOCAL_EXTENT_RADIUS_MM` of (x, y) in the x-y plane;
2. spinal canal: ``|x - x_c| < CANAL_HALF_WIDTH_FRACTION * w`` (0.3) and y behind the posterior
   wall where the component lies: the body's rearmost voxel within :data:`LOCAL_WALL_RADIUS_MM`
   of (x, z) in the x-z plane (``y_min`` where none is; a real body's posterior wall is concave,
   and a leak through the basivertebral foramen lies in front of ``y_min``);
3. pedicle tract: ``y < y_min + PEDICLE_WALL_MARGIN_MM`` (3 mm), ``x - x_c`` on the puncture
   side with ``0.3 * w <= |x - x_c| <= 1.0 * w`` (:data:`PEDICLE_LATERAL_FRACTION`), and either
   elongated roughly along the AP axis (largest to second principal SD at least
   :data:`ELONGATION_MIN_RATIO`, principal axis within :data:`AP_ALIGNMENT_MAX_DEG` of ``y``) or
   its centroid at most :data:`PEDICLE_MAX_DEPTH_MM` (25 mm) behind the posterior wall;
4. anterior: ``y > y_max - ANTERIOR_WALL_MARGIN_MM`` (2 mm) and
   ``|x - x_c| < ANTERIOR_HALF_WIDTH_FRACTION * w`` (0.8);
5. paravertebral: everything else (the default).

The side is the patient side of the centroid relative to the split plane through the
endplate midpoints (frame ``x = 0``): ``midline`` within :data:`MIDLINE_MM` (3 mm), else
``left`` (-R) or ``right`` (+R). The Yeom type is only a suggestion for the reader to confirm
(:data:`~CementLeakageLib.leak_classes.SUGGESTED_YEOM_TYPE`); cement in the pedicle tract is the
injection's own path, reported but not leakage. With the CT, each component carries the share of
bone in its surroundings (:func:`bone_around_share`), and one outside the discs and the tract that
lies in bone (:data:`BONE_AROUND_NOTED_SHARE`) is noted as possibly dense cortex, not cement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .leak_classes import (
    ANTERIOR,
    DISC_INFERIOR,
    DISC_SUPERIOR,
    NOT_LEAKAGE,
    PARAVERTEBRAL,
    PEDICLE_TRACT,
    SPINAL_CANAL,
    SUGGESTED_YEOM_TYPE,
    YEOM_TYPES,
)
from .measurement import bounding_box, grown_box
from .split_plane import check_side
from .vertebra_frame import VertebraFrame, vertebra_frame

MM3_PER_CM3 = 1000.0

CROP_MARGIN_MM = 40.0
"""Margin (mm) added around the body's bounding box; cement beyond it is not described."""

DEFAULT_MIN_VOLUME_MM3 = 5.0
"""Components smaller than this (mm³) are not listed (their total is reported)."""

MIDLINE_MM = 3.0
"""A centroid within this lateral distance (mm) of the split plane is on the midline."""

DISC_OUTLINE_MARGIN_MM = 2.0
"""Dilation (mm) of the body's projected x-y outline for the disc rules."""

CORE_COLUMN_FRACTION = 0.5
"""The disc rules use the body's core outline: the x-y columns over which it spans at least this
fraction of its tallest column's height (a biconcave centre about 0.6), not a lip that spans a
few millimetres at one endplate (an osteophyte's, or a rim)."""

LOCAL_EXTENT_RADIUS_MM = 3.0
"""Radius (mm, x-y plane) around the centroid within which the body's local top and bottom are taken."""

LOCAL_WALL_RADIUS_MM = 2.0
"""Radius (mm, x-z plane) around the centroid within which the body's posterior wall is read for
the canal rule: a leak 2 mm behind the middle of the real L2's posterior wall, which is concave,
lies 0.5 mm in front of the body's rearmost voxel and was classed paravertebral."""

CANAL_HALF_WIDTH_FRACTION = 0.3
"""Spinal canal: centroid behind the body within this fraction of the body's half width of its centre."""

PEDICLE_WALL_MARGIN_MM = 3.0
"""Pedicle tract: centroid less than this (mm) in front of the posterior wall, or behind it."""

PEDICLE_LATERAL_FRACTION = (0.3, 1.0)
"""Pedicle tract: lateral offset from the body centre as a fraction of the half width (low, high)."""

PEDICLE_MAX_DEPTH_MM = 25.0
"""Pedicle tract: a centroid at most this far (mm) behind the posterior wall qualifies without elongation."""

ELONGATION_MIN_RATIO = 1.5
"""Elongated: the largest principal SD is at least this multiple of the second."""

AP_ALIGNMENT_MAX_DEG = 45.0
"""Along the AP axis: the principal axis is within this angle (degrees) of the frame's anterior axis."""

ANTERIOR_WALL_MARGIN_MM = 2.0
"""Anterior: centroid in front of (anterior wall - this margin), mm."""

ANTERIOR_HALF_WIDTH_FRACTION = 0.8
"""Anterior: centroid within this fraction of the body's half width of its centre."""

FRAGMENT_GAP_MM = 1.5
"""Pieces of one location class whose voxels come within this gap (mm, between the voxels'
boxes) of each other are one component: the reach of a 0.6 mm blur's tails (2.5 SD), within
which the CT cannot show two pieces apart. A thin leak tilted against thick slices shows as bands
a slice apart, joined only by cement under the threshold: a 1 mm lens in a disc, tilted 10
degrees on 1.5 mm slices, read as 0.053 cm³ and a faint 0.006 cm³ beside it, 1.2 mm apart."""

BONE_AROUND_MM = (2.0, 3.0)
"""What lies this far (mm, nearest and furthest) from a component, outside the body, is its
surroundings in :func:`bone_around_share`: beyond its own blur (a 0.6 mm blur takes cement's edge
under the bone threshold within about 1 mm of it)."""

BONE_AROUND_NOTED_SHARE = 0.2
"""A component outside the discs and the pedicle tract with at least this share of its
surroundings (``BONE_AROUND_MM``) at or above the bone threshold lies in bone: dense cortex reads
as cement (a facet's or a lamina's over 1500 HU), and its note says so. Leaks in soft tissue:
0-0.14 over 26 phantom sweep sets (2087 paravertebral, anterior and canal leaks), up to 0.08
planted around the real L2 of the tests; the cortex of that L2's posterior arch over 1500 HU, taken for
a leak into the canal: 0.23-0.28. A leak into a disc lies against the next vertebra's endplate
(up to 0.94), the cement of the tract in the pedicle (0.55 and over)."""

_STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)


@dataclass
class ExtravertebralComponent:
    """One piece of cement outside the body, connected or in fragments within
    ``FRAGMENT_GAP_MM`` of each other (volumes cm³, lengths mm, points RAS mm)."""

    index: int
    volume_cm3: float
    voxels: int
    location: str
    side: str
    distance_to_body_mm: float
    centroid_ras: list
    suggested_yeom_type: Optional[str]
    is_leakage: bool
    note: str
    peak_hu: Optional[float] = None
    """Brightest CT voxel of the component (HU); ``None`` when described without the CT."""
    bone_around_share: Optional[float] = None
    """Share (0 to 1) of its surroundings outside the body (:func:`bone_around_share`) at or above
    the bone threshold; ``None`` when described without the CT or with no surroundings in it."""

    def as_dict(self) -> dict:
        """Plain JSON-ready dictionary (Python floats, ints, strings, lists)."""
        return asdict(self)


@dataclass
class ExtravertebralCement:
    """All cement outside the body: the listed components and what was left out (cm³).

    ``listed + ignored + outside the box`` is all cement outside the body mask.
    """

    components: list = field(default_factory=list)
    ignored_count: int = 0
    ignored_volume_cm3: float = 0.0
    min_volume_mm3: float = DEFAULT_MIN_VOLUME_MM3
    outside_box_volume_cm3: float = 0.0
    label_box: Optional[tuple] = field(default=None, repr=False)
    """Index box (slices ``k, j, i``) of :attr:`labels` in the full grid."""
    labels: Optional[np.ndarray] = field(default=None, repr=False)
    """``int16`` labels inside :attr:`label_box`: component ``index`` n is the voxels equal to n."""

    def component_mask(self, index: int, shape: tuple) -> np.ndarray:
        """Boolean ``[k, j, i]`` mask (full grid of ``shape``) of the listed component ``index``."""
        mask = np.zeros(shape, dtype=bool)
        if self.labels is not None:
            mask[self.label_box] = self.labels == index
        return mask

    @property
    def total_volume_cm3(self) -> float:
        """Volume (cm³) of the listed components."""
        return float(sum(c.volume_cm3 for c in self.components))

    @property
    def leakage_volume_cm3(self) -> float:
        """Volume (cm³) of the listed components that are leakage (pedicle tract excluded)."""
        return float(sum(c.volume_cm3 for c in self.components if c.is_leakage))

    def as_dict(self) -> dict:
        """Plain JSON-ready dictionary with the components and the totals."""
        return {
            "components": [c.as_dict() for c in self.components],
            "total_volume_cm3": self.total_volume_cm3,
            "leakage_volume_cm3": self.leakage_volume_cm3,
            "ignored_count": int(self.ignored_count),
            "ignored_volume_cm3": float(self.ignored_volume_cm3),
            "min_volume_mm3": float(self.min_volume_mm3),
            "outside_box_volume_cm3": float(self.outside_box_volume_cm3),
        }


@dataclass(frozen=True)
class _BodyExtent:
    """The body's voxel centres in its core columns in frame coordinates (mm), and the numbers the
    rules use (from all its voxels)."""

    frame_points: np.ndarray
    tree_xy: cKDTree
    tree_xz: cKDTree
    """Over all the body's voxel centres (x, z), with their ``all_y``."""
    all_y: np.ndarray
    x_centre: float
    half_width: float
    y_min: float
    y_max: float
    z_min: float
    z_max: float
    max_spacing_mm: float


def _check_inputs(body_mask, cement_mask, geometry: VolumeGeometry, min_volume_mm3) -> tuple:
    if not isinstance(geometry, VolumeGeometry):
        raise CementLeakageError("geometry must be a VolumeGeometry (the grid of the masks)")
    masks = []
    for name, mask in (("body", body_mask), ("cement", cement_mask)):
        array = np.asarray(mask)
        if array.shape != geometry.shape:
            raise CementLeakageError(
                f"the {name} mask has shape {array.shape} but the grid is {geometry.shape}: "
                "give masks [k, j, i] on the same grid"
            )
        masks.append(array if array.dtype == bool else array != 0)
    try:
        minimum = float(min_volume_mm3)
    except (TypeError, ValueError):
        minimum = float("nan")
    if not (np.isfinite(minimum) and minimum >= 0.0):
        raise CementLeakageError(f"min_volume_mm3 must be a finite number >= 0, got {min_volume_mm3!r}")
    if not masks[0].any():
        raise CementLeakageError("the body mask is empty: segment the vertebral body first")
    return masks[0], masks[1], minimum


def _bounding_box(mask: np.ndarray, margin_voxels: np.ndarray | None = None) -> tuple[slice, ...]:
    """``[k, j, i]`` slices of a non-empty mask's bounding box, grown by ``margin_voxels`` (k, j, i)."""
    tight = bounding_box(mask)
    return tight if margin_voxels is None else grown_box(tight, margin_voxels, mask.shape)


MIN_BODY_ANISOTROPY = 1.08
"""Ratio of the body cross-section's principal axes above which its own lateral axis is used:
thoracic bodies are nearly round (a T7 drawn 1.15 to 1 measures less in its mask), and turned
20 degrees about its axis such a body carries its canal out of the midline band of the patient's
frame."""


def _aligned_with_body(body: np.ndarray, geometry: VolumeGeometry, frame: VertebraFrame) -> VertebraFrame:
    """``frame`` turned about its axis so that its lateral axis is the body's wider axis.

    A vertebra rotated about its long axis (scoliosis) carries its pedicles and canal with it;
    locations are judged relative to the vertebra, not to the patient. A nearly round body
    (principal axes within ``MIN_BODY_ANISOTROPY``) keeps the patient frame.
    """
    points = frame.to_frame(geometry.voxel_centers_ras(np.nonzero(body)))[:, :2]
    if len(points) < 10:
        return frame
    values, vectors = np.linalg.eigh(np.cov(points.T))
    if values[1] < MIN_BODY_ANISOTROPY**2 * max(values[0], 1e-9):
        return frame
    major = vectors[:, 1] * (1.0 if vectors[0, 1] >= 0 else -1.0)
    lateral = major[0] * frame.lateral_ras + major[1] * frame.anterior_ras
    anterior = np.cross(frame.axial_ras, lateral)
    return VertebraFrame(frame.origin_ras, lateral, anterior, frame.axial_ras, frame.height_mm)


def _core_columns(points: np.ndarray, step_mm: float) -> np.ndarray:
    """Which frame points (mm, ``(N, 3)``) lie in the body's core columns: cells of ``step_mm``
    in the x-y plane over which the body spans at least ``CORE_COLUMN_FRACTION`` of its tallest
    column's height."""
    cells = np.floor(points[:, :2] / step_mm).astype(np.int64)
    _, cell_of_point = np.unique(cells, axis=0, return_inverse=True)
    cell_of_point = cell_of_point.ravel()
    count = int(cell_of_point.max()) + 1
    low = np.full(count, np.inf)
    high = np.full(count, -np.inf)
    np.minimum.at(low, cell_of_point, points[:, 2])
    np.maximum.at(high, cell_of_point, points[:, 2])
    height = high - low
    return (height >= CORE_COLUMN_FRACTION * height.max())[cell_of_point]


def _body_extent(body: np.ndarray, geometry: VolumeGeometry, frame: VertebraFrame) -> _BodyExtent:
    points = frame.to_frame(geometry.voxel_centers_ras(np.nonzero(body)))
    x_min, y_min, z_min = points.min(axis=0)
    x_max, y_max, z_max = points.max(axis=0)
    core = points[_core_columns(points, float(np.max(geometry.spacing_mm)))]
    return _BodyExtent(
        frame_points=core,
        tree_xy=cKDTree(core[:, :2]),
        tree_xz=cKDTree(points[:, [0, 2]]),
        all_y=points[:, 1],
        x_centre=float(0.5 * (x_min + x_max)),
        half_width=float(max(0.5 * (x_max - x_min), 1e-6)),
        y_min=float(y_min),
        y_max=float(y_max),
        z_min=float(z_min),
        z_max=float(z_max),
        max_spacing_mm=float(np.max(geometry.spacing_mm)),
    )


def _posterior_wall_y(centroid: np.ndarray, body: _BodyExtent) -> float:
    """Frame y (mm) of the body's posterior wall at the centroid's x and z: its rearmost voxel
    centre within ``LOCAL_WALL_RADIUS_MM`` (at least a voxel) in the x-z plane, ``y_min`` where
    none is."""
    radius = max(LOCAL_WALL_RADIUS_MM, body.max_spacing_mm)
    near = body.tree_xz.query_ball_point([centroid[0], centroid[2]], radius)
    return float(body.all_y[np.asarray(near, dtype=int)].min()) if len(near) else body.y_min


def _disc_location(centroid: np.ndarray, body: _BodyExtent) -> Optional[str]:
    """Disc superior/inferior if the centroid lies over/under the body's dilated x-y outline, else None."""
    xy = centroid[:2]
    # Projected voxel centres are at most one voxel apart: half a voxel more covers the voxel itself.
    reach = DISC_OUTLINE_MARGIN_MM + 0.5 * body.max_spacing_mm
    nearest, _ = body.tree_xy.query(xy)
    if nearest > reach:
        return None
    near = body.tree_xy.query_ball_point(xy, max(LOCAL_EXTENT_RADIUS_MM, nearest + 0.5 * body.max_spacing_mm))
    z = body.frame_points[np.asarray(near, dtype=int), 2]
    top, bottom = (float(z.max()), float(z.min())) if len(z) else (body.z_max, body.z_min)
    if centroid[2] > top:
        return DISC_SUPERIOR
    if centroid[2] < bottom:
        return DISC_INFERIOR
    return None


def disc_locations(
    centroids_ras: np.ndarray, body_mask: np.ndarray, geometry: VolumeGeometry, frame: VertebraFrame
) -> list[Optional[str]]:
    """Disc superior, disc inferior or None for each point (RAS mm, ``(N, 3)``): the first rule of
    :func:`classify_location`, against the body (bool ``[k, j, i]`` on ``geometry``, not empty)
    in ``frame`` turned with the body as for the components."""
    aligned = _aligned_with_body(body_mask, geometry, frame)
    extent = _body_extent(body_mask, geometry, aligned)
    points = aligned.to_frame(np.asarray(centroids_ras, dtype=float).reshape(-1, 3))
    return [_disc_location(point, extent) for point in points]


def _along_ap(points: np.ndarray) -> bool:
    """Whether frame points (mm) form a shape elongated roughly along the anterior (y) axis."""
    if len(points) < 3:
        return False
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(points.T))
    sd = np.sqrt(np.clip(eigenvalues, 0.0, None))
    if sd[1] > 0 and sd[2] / sd[1] < ELONGATION_MIN_RATIO:
        return False
    return abs(float(eigenvectors[1, 2])) >= np.cos(np.radians(AP_ALIGNMENT_MAX_DEG))


def classify_location(
    centroid_frame: np.ndarray, points_frame: np.ndarray, body: _BodyExtent, side: str
) -> str:
    """Location class (:data:`~CementLeakageLib.leak_classes.LOCATIONS`) of one component.

    ``centroid_frame`` and ``points_frame`` (its voxel centres, ``(N, 3)``) are frame coordinates
    in mm; ``side`` is the puncture side. The rules are listed in the module docstring.
    """
    x, y, _ = centroid_frame
    disc = _disc_location(centroid_frame, body)
    if disc is not None:
        return disc
    lateral = x - body.x_centre
    if abs(lateral) < CANAL_HALF_WIDTH_FRACTION * body.half_width and y < _posterior_wall_y(
        centroid_frame, body
    ):
        return SPINAL_CANAL
    puncture_sign = -1.0 if side == "left" else 1.0
    low, high = PEDICLE_LATERAL_FRACTION
    if (
        y < body.y_min + PEDICLE_WALL_MARGIN_MM
        and lateral * puncture_sign > 0.0
        and low * body.half_width <= abs(lateral) <= high * body.half_width
        and (_along_ap(points_frame) or body.y_min - y <= PEDICLE_MAX_DEPTH_MM)
    ):
        return PEDICLE_TRACT
    if (
        y > body.y_max - ANTERIOR_WALL_MARGIN_MM
        and abs(lateral) < ANTERIOR_HALF_WIDTH_FRACTION * body.half_width
    ):
        return ANTERIOR
    return PARAVERTEBRAL


def patient_side(lateral_mm: float) -> str:
    """``left``, ``right`` or ``midline`` for a frame lateral coordinate (mm from the split plane)."""
    if abs(lateral_mm) <= MIDLINE_MM:
        return "midline"
    return "right" if lateral_mm > 0 else "left"


def _reaches_box_face(sub: tuple, crop_box: tuple, box: tuple, shape: tuple) -> bool:
    """Whether a component (``sub``: slices in the crop) touches a box face that is not the grid edge."""
    for axis in range(3):
        start = crop_box[axis].start + sub[axis].start
        stop = crop_box[axis].start + sub[axis].stop
        if (start == box[axis].start > 0) or (stop == box[axis].stop < shape[axis]):
            return True
    return False


def _box_gap_mm(offsets_kji: np.ndarray, spacing_kji: np.ndarray) -> np.ndarray:
    """The gap (mm) between the boxes of two voxels whose indices differ by ``offsets_kji`` (k, j,
    i along the last axis) on a grid of ``spacing_kji`` (mm): 0 where they touch."""
    gaps = np.maximum(np.abs(offsets_kji) - 1, 0) * spacing_kji
    return np.sqrt((gaps**2).sum(axis=-1))


def _box_gaps_mm(mask: np.ndarray, spacing_kji: np.ndarray) -> np.ndarray:
    """For every voxel of a ``[k, j, i]`` grid of ``spacing_kji`` (mm), the gap (mm) between its
    box and the box of the nearest voxel of ``mask`` (centre to centre), 0 where they touch."""
    _, nearest = ndimage.distance_transform_edt(~mask, sampling=spacing_kji, return_indices=True)
    return _box_gap_mm(np.moveaxis(nearest - np.indices(mask.shape), 0, -1), spacing_kji)


def joined_fragments(
    labels: np.ndarray, locations: list[str], spacing_kji: np.ndarray, gap_mm: float = FRAGMENT_GAP_MM
) -> tuple[np.ndarray, int]:
    """``labels`` (``[k, j, i]``, components 1 to n, 0 elsewhere; grid ``spacing_kji``, mm) with
    the components of one location class (``locations[n - 1]``) that come within ``gap_mm`` of
    each other (:data:`FRAGMENT_GAP_MM`) given one label, and the count of labels left; labels
    are renumbered from 1 in the order of their first component."""
    count = len(locations)
    group = np.arange(count + 1)

    def root(n: int) -> int:
        while group[n] != n:
            n = int(group[n])
        return n

    margin = np.ceil(gap_mm / spacing_kji).astype(int) + 1
    for first, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        near = grown_box(box, margin, labels.shape)
        local = labels[near]
        others = [int(n) for n in np.unique(local) if n > first and locations[n - 1] == locations[first - 1]]
        if not others:
            continue
        gaps = _box_gaps_mm(local == first, spacing_kji)
        for second in others:
            if float(gaps[local == second].min()) <= gap_mm:
                group[root(second)] = root(first)
    roots = np.array([root(n) for n in range(count + 1)])
    unique_roots = list(dict.fromkeys(int(r) for r in roots[1:]))
    renumbered = np.zeros(count + 1, dtype=labels.dtype)
    for new_label, r in enumerate(unique_roots, start=1):
        renumbered[roots == r] = new_label
    return renumbered[labels], len(unique_roots)


def bone_around_share(
    kji: tuple[np.ndarray, np.ndarray, np.ndarray],
    body: np.ndarray,
    array_hu: np.ndarray,
    spacing_kji: np.ndarray,
    bone_min_hu: float,
) -> Optional[float]:
    """Share (0 to 1) of the voxels ``BONE_AROUND_MM`` from a component (its voxels' indices
    ``kji`` on the grid of ``body``, bool ``[k, j, i]``, voxels ``spacing_kji`` mm apart; distances
    between voxel centres) that lie outside ``body`` and read at or above ``bone_min_hu`` in
    ``array_hu`` (HU, same grid); None when none lie in the grid outside the body."""
    near, far = BONE_AROUND_MM
    reach = np.ceil(far / np.asarray(spacing_kji, float)).astype(int) + 1
    points = np.stack(kji, axis=1)
    low = np.maximum(points.min(axis=0) - reach, 0)
    high = np.minimum(points.max(axis=0) + reach + 1, body.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    component = np.zeros(tuple(high - low), dtype=bool)
    component[tuple((points - low).T)] = True
    distance = ndimage.distance_transform_edt(~component, sampling=spacing_kji)
    around = (distance >= near) & (distance <= far) & ~body[box]
    if not around.any():
        return None
    return float(np.count_nonzero(array_hu[box][around] >= bone_min_hu)) / float(np.count_nonzero(around))


def _in_bone(location: str, share: Optional[float]) -> bool:
    """Whether a component at ``location`` whose surroundings hold ``share`` of bone lies in bone
    other than a disc's neighbour or the pedicle (``BONE_AROUND_NOTED_SHARE``)."""
    if share is None or location in NOT_LEAKAGE or location in (DISC_SUPERIOR, DISC_INFERIOR):
        return False
    return share >= BONE_AROUND_NOTED_SHARE


def _note(
    location: str,
    reaches_box_edge: bool,
    faint_peak_hu: Optional[float],
    cement_min_hu: float,
    in_bone_share: Optional[float] = None,
) -> str:
    yeom = SUGGESTED_YEOM_TYPE[location]
    if yeom is None:
        text = f"cement along the {location} of the puncture: not leakage"
    else:
        text = f"{location} cement: suggests Yeom type {yeom} ({YEOM_TYPES[yeom]}); confirm on the images"
    if reaches_box_edge:
        text += f"; it continues beyond {CROP_MARGIN_MM:.0f} mm from the body (volume counted inside only)"
    if faint_peak_hu is not None:
        text += (
            f"; faint: its peak ({faint_peak_hu:.0f} HU) is under the {cement_min_hu:.0f} HU "
            "cement threshold (a layer thinner than the slice reads fainter); confirm it is cement "
            "and not a calcification"
        )
    if in_bone_share is not None:
        text += (
            f"; it lies in bone ({100.0 * in_bone_share:.0f}% of what surrounds it {BONE_AROUND_MM[0]:.0f}-"
            f"{BONE_AROUND_MM[1]:.0f} mm out, outside the body, reads as bone): it may be dense cortical "
            "bone (a facet, a lamina, a rib) rather than cement"
        )
    return text


def describe_extravertebral_cement(
    body_mask: np.ndarray,
    cement_mask: np.ndarray,
    geometry: VolumeGeometry,
    upper_ras: np.ndarray,
    lower_ras: np.ndarray,
    side: str,
    *,
    min_volume_mm3: float = DEFAULT_MIN_VOLUME_MM3,
    array_hu: Optional[np.ndarray] = None,
    cement_min_hu: float = 1500.0,
    bone_min_hu: float = 226.0,
) -> ExtravertebralCement:
    """Describe all cement outside the body: listed components plus what was left out.

    ``body_mask`` and ``cement_mask`` are boolean ``[k, j, i]`` on ``geometry``; ``upper_ras`` and
    ``lower_ras`` are the endplate midpoints (RAS mm); ``side`` is the puncture side (``left`` or
    ``right``). Components are ordered by volume, largest first (ties by voxel order). With the CT
    (``array_hu``, HU on the same grid) each component carries its peak intensity, and one whose
    peak stays under ``cement_min_hu`` (a faint leak, see :mod:`faint_disc_cement`) says so in its
    note, as does one that lies in bone (its surroundings' share at or above ``bone_min_hu``:
    :func:`bone_around_share`, ``BONE_AROUND_NOTED_SHARE``).
    """
    body, cement, minimum = _check_inputs(body_mask, cement_mask, geometry, min_volume_mm3)
    if array_hu is not None and np.shape(array_hu) != geometry.shape:
        raise CementLeakageError(
            f"the CT has shape {np.shape(array_hu)} but the masks' grid is {geometry.shape}: "
            "give the CT the masks were drawn on"
        )
    side = check_side(side)
    frame = vertebra_frame(upper_ras, lower_ras)
    voxel_mm3 = geometry.voxel_volume_mm3
    spacing_kji = geometry.spacing_mm[::-1]

    box = _bounding_box(body, np.ceil(CROP_MARGIN_MM / spacing_kji).astype(int))
    # The body lies within its box: the cement outside the box is all outside the body.
    outside = cement[box] & ~body[box]
    result = ExtravertebralCement(min_volume_mm3=minimum)
    beyond_box = np.count_nonzero(cement) - np.count_nonzero(cement[box])
    result.outside_box_volume_cm3 = float(beyond_box) * voxel_mm3 / MM3_PER_CM3
    if not outside.any():
        return result

    # Work in the smallest box holding the body and the outside cement (labels are unchanged).
    inner = _bounding_box(body[box] | outside)
    body_crop, outside_crop = body[box][inner], outside[inner]
    crop_box = tuple(slice(b.start + i.start, b.start + i.stop) for b, i in zip(box, inner))
    crop_geometry = geometry.cropped(crop_box)

    frame_of_body = _aligned_with_body(body_crop, crop_geometry, frame)
    extent = _body_extent(body_crop, crop_geometry, frame_of_body)

    def location_of(kji: tuple) -> str:
        centres_ras = crop_geometry.voxel_centers_ras(kji)
        points = frame_of_body.to_frame(centres_ras)
        return classify_location(frame_of_body.to_frame(centres_ras.mean(axis=0))[0], points, extent, side)

    labels, count = ndimage.label(outside_crop, structure=_STRUCTURE_26)
    if count > 1:
        # Fragments of one piece (a thin leak across thick slices) are reported as one.
        locations = [
            location_of(tuple(idx + part.start for idx, part in zip(np.nonzero(labels[box] == n), box)))
            for n, box in enumerate(ndimage.find_objects(labels), start=1)
        ]
        labels, count = joined_fragments(labels, locations, spacing_kji)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = sizes * voxel_mm3 >= minimum
    result.ignored_count = int(np.count_nonzero(~keep))
    result.ignored_volume_cm3 = float(sizes[~keep].sum()) * voxel_mm3 / MM3_PER_CM3
    if not keep.any():
        return result

    _, nearest = ndimage.distance_transform_edt(~body_crop, sampling=spacing_kji, return_indices=True)
    order = sorted(np.flatnonzero(keep), key=lambda n: (-int(sizes[n]), int(n)))
    objects = ndimage.find_objects(labels)
    ranks = np.zeros(count + 1, dtype=np.int16)
    ranks[np.asarray(order, dtype=int) + 1] = np.arange(1, len(order) + 1, dtype=np.int16)
    result.label_box, result.labels = crop_box, ranks[labels]
    for rank, label_index in enumerate(order, start=1):
        sub = objects[label_index]
        local = np.nonzero(labels[sub] == label_index + 1)
        kji = tuple(idx + s.start for idx, s in zip(local, sub))
        offsets = np.stack([nearest[a][kji] - kji[a] for a in range(3)], axis=1)
        distance = float(_box_gap_mm(offsets, spacing_kji).min())
        centroid_ras = crop_geometry.voxel_centers_ras(kji).mean(axis=0)
        location = location_of(kji)
        centroid = frame.to_frame(centroid_ras)[0]
        at_edge = _reaches_box_face(sub, crop_box, box, body.shape)
        voxels = int(sizes[label_index])
        peak_hu = bone_share = None
        if array_hu is not None:
            peak_hu = float(array_hu[crop_box][kji].max())
            in_grid = tuple(idx + part.start for idx, part in zip(kji, crop_box))
            bone_share = bone_around_share(in_grid, body, array_hu, spacing_kji, bone_min_hu)
        faint_peak_hu = peak_hu if peak_hu is not None and peak_hu < cement_min_hu else None
        result.components.append(
            ExtravertebralComponent(
                index=rank,
                volume_cm3=voxels * voxel_mm3 / MM3_PER_CM3,
                voxels=voxels,
                location=location,
                side=patient_side(float(centroid[0])),
                distance_to_body_mm=distance,
                centroid_ras=[float(v) for v in centroid_ras],
                suggested_yeom_type=SUGGESTED_YEOM_TYPE[location],
                is_leakage=location not in NOT_LEAKAGE,
                note=_note(
                    location,
                    at_edge,
                    faint_peak_hu,
                    cement_min_hu,
                    bone_share if _in_bone(location, bone_share) else None,
                ),
                peak_hu=peak_hu,
                bone_around_share=bone_share,
            )
        )
    return result


def extravertebral_components(
    body_mask: np.ndarray,
    cement_mask: np.ndarray,
    geometry: VolumeGeometry,
    upper_ras: np.ndarray,
    lower_ras: np.ndarray,
    side: str,
    *,
    min_volume_mm3: float = DEFAULT_MIN_VOLUME_MM3,
) -> list[ExtravertebralComponent]:
    """The listed cement components outside the body, largest first.

    Components below ``min_volume_mm3`` (mm³) are left out of this list; their count and volume
    are in :func:`describe_extravertebral_cement`'s result (``ignored_count``, ``ignored_volume_cm3``).
    """
    return describe_extravertebral_cement(
        body_mask, cement_mask, geometry, upper_ras, lower_ras, side, min_volume_mm3=min_volume_mm3
    ).components
