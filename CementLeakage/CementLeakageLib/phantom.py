"""Synthetic postoperative spine CT with analytic truth.

:func:`make_phantom` renders a stack of osteoporotic vertebrae with cement in the middle
(target) body, a cement tail in the puncture-side pedicle tract and a paravertebral leak,
surrounded by discs, soft tissue, fat and air. Anatomy is defined in RAS millimetres (see
:mod:`phantom_anatomy`); the voxel grid is separate and may be axis-aligned, stored like an
LPS CT (``lps``: i to -R, j to -A), fully flipped (``flipped``: i to -R, j to -A, k to -S) or
oblique (rotated 20 degrees about R and 15 degrees about A), with anisotropic spacing.

Rendering: every solid is evaluated at voxel centres with partial volume (occupancy
``clip(0.5 - d / voxel_size, 0, 1)`` from its signed distance ``d``), composited from the
outside in, blurred with a Gaussian (physical sigma), given Gaussian noise and clipped to
-1024..3071 HU (or -1024 and above with ``extended_scale``). Cement is the exception: its
solids (blobs, tract, leaks) are always averaged over each voxel's whole extent (the share of
points 0.1 mm apart inside them where their surface crosses the voxel), so that the cement a CT
holds is the cement the truth counts. Sampled around the centres, a leak thinner than a voxel
held -36% to +74% of its volume (a flat disc leak on 1.25-2 mm slices) and a small blob up to
+6%; averaged at points 0.5 mm apart with a ramp across the surface, the thinnest disc leak
still held up to +14%.

The truth comes from the shapes, never from the voxels: VBV is ``pi * a * b * h`` of the
body's elliptic cylinder (cortex included, between the endplate surfaces); BCV is the sum of
the blob ellipsoids (disjoint, inside the trabecular region with 1.5 mm clearance); PSBCV
is the sum of the blobs' parts on the puncture side of the sagittal plane through the
endplate midpoints (closed-form ellipsoid caps); extravertebral cement is the tail cylinder
plus the leak ellipsoid. The truth masks are voxel-centre-in-shape tests.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .ct_volume import CtVolume
from .errors import CementLeakageError
from .evidence import GAO_2022_PSBCV
from .geometry import VolumeGeometry
from .phantom_anatomy import CEMENT_PRESETS, COMPRESSIONS, PhantomAnatomy, build_anatomy, side_sign
from .phantom_leaks import PlantedLeak, check_leak_locations
from .phantom_shapes import Cylinder, ImplicitShape, Inset, Rotated, ellipsoid_cap_fraction
from .sitk_bridge import to_sitk
from .split_plane import check_side, split_plane_from_endplates

MM3_PER_CM3 = 1000.0
CT_SCALE_HU = (-1024.0, 3071.0)
"""The usual 12-bit CT scale (HU)."""

AIR_HU = -1000.0
FAT_HU = -100.0
SOFT_TISSUE_HU = 40.0
DISC_HU = 80.0
CLEFT_FLUID_HU = -50.0
CLEFT_GAS_HU = -900.0
"""Gas in a vacuum cleft (an intravertebral vacuum cleft, Kümmell's disease): near air, raised
by the partial volume of the bone around it."""
CORTEX_HU = 750.0
OSTEOPHYTE_HU = 700.0
POSTERIOR_MARROW_HU = 260.0
POSTERIOR_CORTEX_MM = 1.2
TRABECULAR_MEAN_HU = 110.0
TRABECULAR_SD_HU = 55.0
"""SD of the trabecular texture before the final blur (about 40 HU after it, noise excluded)."""
CEMENT_MEAN_HU = 2700.0
CEMENT_SD_HU = 120.0
EXTENDED_CEMENT_MEAN_HU = 3450.0
EXTENDED_CEMENT_SD_HU = 100.0
TEXTURE_SIGMA_MM = 1.0
"""Smoothing (mm) of the white noise that textures bone and cement."""

FOV_MARGIN_MM = 3.0
"""Field of view beyond the patient outline (mm), in the plane."""

SUBVOXEL_OFFSET = (0.37, 0.29, 0.41)
"""Grid shift (voxels, i j k) so that no symmetry plane of the anatomy falls on voxel centres."""


def _rotation(about_r_deg: float, about_a_deg: float) -> np.ndarray:
    ax, ay = np.radians(about_r_deg), np.radians(about_a_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    return ry @ rx


ORIENTATIONS: dict[str, np.ndarray] = {
    "axial": np.eye(3),
    "lps": np.diag([-1.0, -1.0, 1.0]),
    "flipped": np.diag([-1.0, -1.0, -1.0]),
    "oblique": _rotation(20.0, 15.0),
}
"""Grid axis directions (columns: RAS direction of i, j, k) by orientation name."""


@dataclass
class PhantomSpec:
    """What to build. Lengths in mm, intensities in HU; every default gives a clean lumbar case.

    ``spacing_mm`` is the voxel size along i, j and k; ``orientation`` is one of
    :data:`ORIENTATIONS` (``axial``, ``lps``, ``flipped``, ``oblique``). ``body_centre_ras`` is
    the centre of the target body (RAS mm). ``cement_preset`` is ``high`` (PSBCV/VBV 18.8% for
    the default body, less for small bodies or thick cortices) or ``low`` (6.3%).
    ``cement_in_body=False`` makes a phantom without any cement
    (no blobs, no pedicle tail, no leak).

    Switches (all off by default):

    - ``leaks``: extra cement leaks, any of ``anterior``, ``spinal canal``, ``disc superior``,
      ``disc inferior`` (see :mod:`phantom_leaks`; the paravertebral leak and the pedicle tract
      keep their own switches).
    - ``compression``: ``none``, ``wedge`` (anterior height = ``compression_ratio`` x posterior
      height, the posterior height staying ``body_height_mm``) or ``biconcave`` (central height =
      ratio x peripheral height); ``compression_ratio`` 0.6 to 1. ``schmorl_node``: a hemispherical
      pit (radius 3 mm) in the upper endplate, filled with disc tissue (not with ``biconcave``).
    - ``basivertebral_foramen``: a 6 x 4 mm (R x S) soft-tissue opening through the posterior
      cortex at mid-height (inside the body's outline); ``cortex_hu``: HU of the body's cortex
      and endplates (e.g. 300 for a faint cortex); ``fracture_cleft``: a 2 mm fluid slab
      (-50 HU) at mid-height inside the trabecular region, which the cement fills where it reaches it;
      with ``cleft_gas`` it holds gas (``CLEFT_GAS_HU``) instead, a vacuum cleft.
    - ``tilt_deg`` (coronal tilt about A) and ``rotation_deg`` (axial rotation about S), up to
      20 degrees each, turn the stack and its cement about the target body centre.
    - ``osteophytes``: anterior bony ridges at both endplate rims of the target, outside the body.
    - ``grid_offset_voxels``: where the voxel grid lies against the anatomy, as a shift of its
      centred origin (voxels, i j k, each -2 to 2; by default ``SUBVOXEL_OFFSET``): on thick slices, where the
      slices fall against the endplates (a slice phase).
    - ``slice_averaged``: each voxel averages the solids over its whole extent, thick slices
      included (CT's box-shaped slice sensitivity), instead of sampling them around its centre
      with a ramp as wide as a cube of the same volume (the default). An endplate parallel to a
      2 mm slice is then averaged over the slice, as a scanner does. Cement is averaged so in
      either mode.

    :meth:`for_level` gives typical body sizes for T5 to L5.
    """

    level: str = "L1"
    side: str = "left"
    spacing_mm: tuple[float, float, float] = (0.8, 0.8, 1.0)
    orientation: str = "axial"
    n_vertebrae: int = 3
    body_semi_axes_mm: tuple[float, float] = (20.0, 15.0)
    body_height_mm: float = 25.0
    disc_height_mm: float = 9.0
    cortex_mm: float = 1.0
    cement_preset: str = "high"
    cement_in_body: bool = True
    pedicle_tail: bool = True
    paravertebral_leak: bool = True
    with_ribs: bool = False
    extended_scale: bool = False
    noise_sd_hu: float = 20.0
    blur_sigma_mm: float = 0.6
    seed: int = 0
    body_centre_ras: tuple[float, float, float] = (4.0, -8.0, 25.0)
    leaks: tuple[str, ...] = ()
    compression: str = "none"
    compression_ratio: float = 1.0
    schmorl_node: bool = False
    basivertebral_foramen: bool = False
    cortex_hu: float = CORTEX_HU
    fracture_cleft: bool = False
    cleft_gas: bool = False
    tilt_deg: float = 0.0
    rotation_deg: float = 0.0
    osteophytes: bool = False
    slice_averaged: bool = False
    grid_offset_voxels: tuple[float, float, float] = SUBVOXEL_OFFSET

    @classmethod
    def for_level(cls, level: str, **changes) -> PhantomSpec:
        """A spec with the typical body and disc of ``level`` (T5 to L5; see :data:`LEVEL_SIZES_MM`).

        Thoracic levels get rib heads. ``changes`` override any field (e.g. ``side="right"``).
        """
        name = str(level).upper()
        if name not in LEVEL_SIZES_MM:
            raise CementLeakageError(
                f"no typical phantom size for level {level!r}: use one of {', '.join(LEVEL_SIZES_MM)}"
            )
        lateral, ap, height, disc = LEVEL_SIZES_MM[name]
        values = {
            "level": name,
            "body_semi_axes_mm": (lateral, ap),
            "body_height_mm": height,
            "disc_height_mm": disc,
            "with_ribs": name.startswith("T"),
        }
        values.update(changes)
        return cls(**values)


LEVEL_SIZES_MM: dict[str, tuple[float, float, float, float]] = {
    "T5": (14.0, 12.0, 17.0, 4.5),
    "T6": (14.5, 12.5, 17.5, 4.5),
    "T7": (15.0, 13.0, 18.0, 5.0),
    "T8": (15.5, 13.5, 19.0, 5.0),
    "T9": (16.5, 14.0, 19.5, 5.5),
    "T10": (17.5, 14.5, 20.5, 6.0),
    "T11": (18.5, 15.0, 22.0, 7.0),
    "T12": (19.5, 15.5, 23.0, 8.0),
    "L1": (20.0, 15.0, 25.0, 9.0),
    "L2": (21.0, 15.5, 26.0, 10.0),
    "L3": (22.0, 16.0, 26.5, 10.5),
    "L4": (23.0, 16.5, 27.0, 11.0),
    "L5": (24.0, 17.0, 27.0, 11.0),
}
"""Typical body lateral and AP semi-axes, body height and disc height (mm), by level.

Rounded from adult vertebral morphometry: thoracic bodies small (T5 about 28 x 24 mm across,
17 mm high), lumbar large (L5 about 48 x 34 mm, 27 mm high); L1 equals the default spec.
"""


@dataclass
class PhantomTruth:
    """Analytic truth of a phantom: volumes in cm³, ratios in %, endplate midpoints in RAS mm."""

    level: str
    side: str
    upper_ras: np.ndarray
    lower_ras: np.ndarray
    vbv_cm3: float
    bcv_cm3: float
    psbcv_cm3: float
    bcv_vbv_pct: float
    psbcv_vbv_pct: float
    exceeds_cutoff: bool
    extravertebral_cement_cm3: float
    body_centre_ras: np.ndarray = field(default_factory=lambda: np.zeros(3))
    cutoff_pct: float = GAO_2022_PSBCV.cutoff_pct
    leaks: list[PlantedLeak] = field(default_factory=list)
    """Every piece of cement outside the body (pedicle tract, paravertebral, planted), in the
    order of ``Phantom.leak_labels``; ``extravertebral_cement_cm3`` is the sum of their volumes."""


@dataclass
class Phantom:
    """A rendered phantom: the CT, its truth, voxel-centre truth masks (bool ``[k, j, i]``) and shapes.

    ``leak_labels`` (uint8 ``[k, j, i]``) labels each voxel centre inside extravertebral cement
    with ``n + 1`` for ``truth.leaks[n]`` (0 elsewhere); ``extravertebral_cement_mask`` is
    ``leak_labels > 0``.
    """

    ct: CtVolume
    truth: PhantomTruth
    body_mask: np.ndarray
    cement_in_body_mask: np.ndarray
    extravertebral_cement_mask: np.ndarray
    anatomy: PhantomAnatomy | None = None
    leak_labels: np.ndarray | None = None


def _check_range(name: str, value: object, low: float, high: float) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (np.isfinite(number) and low <= number <= high):
        raise CementLeakageError(f"phantom {name} must be between {low:g} and {high:g}, got {value!r}")


def check_spec(spec: PhantomSpec) -> PhantomSpec:
    """Validate a spec (raises CementLeakageError); returns a copy with the side name normalised."""
    side = check_side(spec.side)
    if spec.orientation not in ORIENTATIONS:
        raise CementLeakageError(
            f"unknown phantom orientation {spec.orientation!r}: use one of {', '.join(ORIENTATIONS)}"
        )
    if spec.cement_preset not in CEMENT_PRESETS:
        raise CementLeakageError(
            f"unknown cement preset {spec.cement_preset!r}: use one of {', '.join(sorted(CEMENT_PRESETS))}"
        )
    if len(tuple(spec.spacing_mm)) != 3:
        raise CementLeakageError("phantom spacing needs three values (i, j, k) in mm")
    for value in spec.spacing_mm:
        _check_range("voxel spacing (mm)", value, 0.3, 2.0)
    if len(tuple(spec.grid_offset_voxels)) != 3:
        raise CementLeakageError("phantom grid offset needs three values (i, j, k) in voxels")
    for value in spec.grid_offset_voxels:
        _check_range("grid offset (voxels)", value, -2.0, 2.0)
    _check_range("number of vertebrae", spec.n_vertebrae, 1, 7)
    if int(spec.n_vertebrae) != spec.n_vertebrae:
        raise CementLeakageError(
            f"phantom number of vertebrae must be a whole number, got {spec.n_vertebrae!r}"
        )
    if len(tuple(spec.body_semi_axes_mm)) != 2:
        raise CementLeakageError("phantom body semi-axes need two values (lateral, AP) in mm")
    _check_range("body lateral semi-axis (mm)", spec.body_semi_axes_mm[0], 14.0, 35.0)
    _check_range("body AP semi-axis (mm)", spec.body_semi_axes_mm[1], 10.0, 30.0)
    _check_range("body height (mm)", spec.body_height_mm, 15.0, 45.0)
    _check_range("disc height (mm)", spec.disc_height_mm, 3.0, 20.0)
    _check_range("cortex thickness (mm)", spec.cortex_mm, 0.4, 3.0)
    _check_range("noise SD (HU)", spec.noise_sd_hu, 0.0, 200.0)
    _check_range("blur sigma (mm)", spec.blur_sigma_mm, 0.0, 3.0)
    if len(tuple(spec.body_centre_ras)) != 3:
        raise CementLeakageError("the phantom body centre needs three RAS coordinates (mm)")
    for value in spec.body_centre_ras:
        _check_range("body centre coordinate (RAS mm)", value, -1000.0, 1000.0)
    leaks = check_leak_locations(spec.leaks)
    if spec.compression not in COMPRESSIONS:
        raise CementLeakageError(
            f"unknown phantom compression {spec.compression!r}: use one of {', '.join(COMPRESSIONS)}"
        )
    _check_range("compression ratio", spec.compression_ratio, 0.6, 1.0)
    if spec.schmorl_node and spec.compression == "biconcave":
        raise CementLeakageError(
            "a phantom Schmorl node needs a flat upper endplate: "
            "do not combine it with a biconcave compression"
        )
    if spec.cleft_gas and not spec.fracture_cleft:
        raise CementLeakageError(
            "a phantom vacuum cleft (cleft_gas) needs a fracture cleft: set fracture_cleft too"
        )
    _check_range("cortex intensity (HU)", spec.cortex_hu, 200.0, 2000.0)
    _check_range("tilt (degrees)", spec.tilt_deg, -20.0, 20.0)
    _check_range("axial rotation (degrees)", spec.rotation_deg, -20.0, 20.0)
    return replace(spec, side=side, n_vertebrae=int(spec.n_vertebrae), level=str(spec.level), leaks=leaks)


def shape_centre_ras(shape: ImplicitShape) -> np.ndarray:
    """Centre (RAS mm) of an ellipsoid or a cylinder's axis, turned along when the shape is Rotated."""
    if isinstance(shape, Rotated):
        return shape.to_world_points(shape_centre_ras(shape.shape))
    if isinstance(shape, Cylinder):
        return 0.5 * (np.asarray(shape.start_ras, float) + np.asarray(shape.end_ras, float))
    return np.asarray(shape.centre_ras, float)


def _endplate_centres(body: ImplicitShape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper and lower endplate centres and the body centre (RAS mm), turned if the body is."""
    if isinstance(body, Rotated):
        return tuple(body.to_world_points(point) for point in _endplate_centres(body.shape))
    return body.upper_face_centre_ras, body.lower_face_centre_ras, np.asarray(body.centre_ras, float)


def volume_beyond_plane_mm3(blob: ImplicitShape, point_ras: np.ndarray, normal_ras: np.ndarray) -> float:
    """Volume (mm³) of an ellipsoid (possibly Rotated) on the side of ``normal`` of a plane.

    In the ellipsoid's own frame (semi-axes a, b, c along its axes) the plane's offset from the
    centre ``d = n . (point - centre)`` is scaled by the support width
    ``sqrt(n_l^T diag(a², b², c²) n_l)`` (``n_l`` the normal in that frame) to ``t``; the part
    beyond is the unit-sphere cap ``V (1 - t)² (2 + t) / 4``.
    """
    normal = np.asarray(normal_ras, float)
    if isinstance(blob, Rotated):
        local_normal = np.asarray(blob.rotation, float).T @ normal
        ellipsoid = blob.shape
    else:
        local_normal, ellipsoid = normal, blob
    width = float(np.sqrt(np.sum((local_normal * np.asarray(ellipsoid.semi_axes_mm)) ** 2)))
    offset = float(normal @ (np.asarray(point_ras, float) - shape_centre_ras(blob)))
    return ellipsoid.volume_mm3 * ellipsoid_cap_fraction(offset / width)


def phantom_truth(anatomy: PhantomAnatomy, level: str) -> PhantomTruth:
    """Closed-form truth of an anatomy layout (volumes cm³, ratios %, points RAS mm).

    PSBCV is taken beyond the split plane through the endplate centres (see
    :func:`split_plane.split_plane_from_endplates`); when the stack is turned, the plane cuts the
    blobs obliquely and the general ellipsoid-cap formula is used.
    """
    body = anatomy.target.body
    upper, lower, centre = _endplate_centres(body)
    vbv = body.volume_mm3
    bcv = float(sum(blob.volume_mm3 for blob in anatomy.cement_blobs))
    if anatomy.rotation is None:
        plane_r = 0.5 * (upper[0] + lower[0])
        psbcv = float(
            sum(
                blob.volume_beyond_plane_mm3(0, plane_r, side_sign(anatomy.side))
                for blob in anatomy.cement_blobs
            )
        )
    else:
        plane = split_plane_from_endplates(upper, lower, anatomy.side)
        psbcv = float(
            sum(
                volume_beyond_plane_mm3(blob, plane.point_ras, plane.normal_ras)
                for blob in anatomy.cement_blobs
            )
        )
    leaks = [
        PlantedLeak(location, side, solid.volume_mm3 / MM3_PER_CM3, shape_centre_ras(solid))
        for location, side, solid in anatomy.leak_solids
    ]
    extravertebral = float(sum(shape.volume_mm3 for shape in anatomy.extravertebral_cement))
    psbcv_pct = 100.0 * psbcv / vbv
    return PhantomTruth(
        level=level,
        side=anatomy.side,
        upper_ras=upper,
        lower_ras=lower,
        vbv_cm3=vbv / MM3_PER_CM3,
        bcv_cm3=bcv / MM3_PER_CM3,
        psbcv_cm3=psbcv / MM3_PER_CM3,
        bcv_vbv_pct=100.0 * bcv / vbv,
        psbcv_vbv_pct=psbcv_pct,
        exceeds_cutoff=bool(psbcv_pct > GAO_2022_PSBCV.cutoff_pct),
        extravertebral_cement_cm3=extravertebral / MM3_PER_CM3,
        body_centre_ras=centre,
        leaks=leaks,
    )


def phantom_geometry(spec: PhantomSpec, anatomy: PhantomAnatomy) -> VolumeGeometry:
    """The voxel grid: the patient outline (plus a margin) over the vertebral stack's S range.

    The grid's box, in its own (possibly rotated) axes, is the smallest that holds the
    outline's elliptic cylinder between the S limits.
    """
    directions = ORIENTATIONS[spec.orientation]
    spacing = np.asarray(spec.spacing_mm, float)
    (a, b), centre = anatomy.outline.semi_axes_mm, np.asarray(anatomy.outline.centre_ras, float)
    angles = np.linspace(0.0, 2.0 * np.pi, 720, endpoint=False)
    rim = np.stack([(a + FOV_MARGIN_MM) * np.cos(angles), (b + FOV_MARGIN_MM) * np.sin(angles)], axis=1)
    points = np.concatenate([np.column_stack([rim, np.full(len(rim), s)]) for s in anatomy.s_range_mm])
    points[:, :2] += centre[:2]
    reference = np.array([centre[0], centre[1], np.mean(anatomy.s_range_mm)])
    along = (points - reference) @ directions
    low, high = along.min(axis=0), along.max(axis=0)
    shape_ijk = np.ceil((high - low) / spacing).astype(int) + 1
    offset = np.asarray(spec.grid_offset_voxels, float) * spacing
    origin_frame = 0.5 * (low + high) - 0.5 * (shape_ijk - 1) * spacing + offset
    origin = reference + directions @ origin_frame
    return VolumeGeometry.from_origin_spacing_directions(
        origin, spacing, directions, (int(shape_ijk[2]), int(shape_ijk[1]), int(shape_ijk[0]))
    )


def index_box(geometry: VolumeGeometry, shape: ImplicitShape, margin_mm: float):
    """``[k, j, i]`` slices of the grid covering the shape's RAS bounds plus a margin; None if outside."""
    lower, upper = shape.bounds_ras()
    size = np.array(geometry.shape[::-1])
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        return tuple(slice(0, n) for n in geometry.shape)
    lower, upper = lower - margin_mm, upper + margin_mm
    corners = np.array(
        [[x, y, z] for x in (lower[0], upper[0]) for y in (lower[1], upper[1]) for z in (lower[2], upper[2])]
    )
    ijk = geometry.ras_to_ijk_points(corners)
    start = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, size)
    stop = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, 0, size)
    if np.any(stop <= start):
        return None
    return (slice(start[2], stop[2]), slice(start[1], stop[1]), slice(start[0], stop[0]))


def _coordinates(
    geometry: VolumeGeometry, box, offsets_kji: tuple[float, float, float] = (0.0, 0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAS x, y, z (mm, float64) of the voxel centres in ``box``, broadcastable to the box's shape;
    ``offsets_kji`` moves every point by that fraction of a voxel along k, j and i.

    A coordinate that does not change along a grid axis keeps a length-1 dimension there
    (e.g. x and y on an axial grid are ``(1, nj, ni)``), which makes S-invariant solids cheap.
    """
    indices = [
        np.arange(box[2].start, box[2].stop, dtype=float)[None, None, :] + offsets_kji[2],
        np.arange(box[1].start, box[1].stop, dtype=float)[None, :, None] + offsets_kji[1],
        np.arange(box[0].start, box[0].stop, dtype=float)[:, None, None] + offsets_kji[0],
    ]
    m = geometry.ijk_to_ras
    coordinates = []
    for row in range(3):
        value = np.full((1, 1, 1), m[row, 3])
        for column in range(3):
            if m[row, column] != 0.0:
                value = value + m[row, column] * indices[column]
        coordinates.append(value)
    return tuple(coordinates)


def slabs(box, max_voxels: int = 1_000_000):
    """Split a ``[k, j, i]`` box along k into slabs of at most about ``max_voxels`` (bounds memory)."""
    if box is None:
        return
    per_slice = max(1, (box[1].stop - box[1].start) * (box[2].stop - box[2].start))
    step = max(1, max_voxels // per_slice)
    for start in range(box[0].start, box[0].stop, step):
        yield (slice(start, min(start + step, box[0].stop)), box[1], box[2])


def shape_mask(geometry: VolumeGeometry, shapes) -> np.ndarray:
    """Boolean ``[k, j, i]``: voxels whose centre lies in any of ``shapes`` (exact inside test)."""
    mask = np.zeros(geometry.shape, dtype=bool)
    for shape in shapes:
        for slab in slabs(index_box(geometry, shape, 0.0)):
            mask[slab] |= shape.contains(*_coordinates(geometry, slab))
    return mask


def _extent_across_surface_mm(distance_mm: np.ndarray, substeps_kji: tuple[int, int, int]) -> np.ndarray:
    """Width (mm) of the partial-volume ramp of each sub-voxel (a voxel divided into
    ``substeps_kji`` parts along k, j, i) across the surface of a signed distance.

    The distance's central difference from one voxel to the next along a grid axis is the
    sub-voxel's extent along the surface normal contributed by that axis; the ramp takes their
    root sum of squares (the spread of a box across the surface: the spacing itself for a cube
    in any direction, the slice thickness across a face parallel to a thick slice). Axes of
    length one (a distance broadcast along an axis it does not change on) contribute nothing.
    """
    squares = np.zeros((1, 1, 1))
    for axis, size in enumerate(distance_mm.shape):
        if size > 1:
            squares = squares + (np.gradient(distance_mm, axis=axis) / substeps_kji[axis]) ** 2
    return np.sqrt(squares)


SUB_VOXEL_MM = 0.5
"""With ``slice_averaged``, voxels are sampled at points about this far apart (mm) or closer."""


CEMENT_SUB_VOXEL_MM = 0.1
"""Cement's voxels that its surface crosses hold the share of points this far apart (mm) along
each axis that lie in the solid (its exact inside test). Averaged at ``SUB_VOXEL_MM`` with a
linear ramp across the surface, the thinnest disc leak (1 mm thick, 6 x 5 mm semi-axes) held up
to 14% more cement than its solid, its rim (0.04 mm radius of curvature) spread over each
point's half millimetre, and blobs, tract and other leaks up to 1.4% more. Here that leak holds
-1.0% to +0.3% of its volume wherever it lies in 0.5-2 mm voxels, and each cement solid of the
phantom sweeps lies within 0.5% of its volume."""
SURFACE_SEARCH_MM = 0.3
"""Each voxel is first tested for the solid at points about this far apart (mm): a voxel whose
points all agree, and which lies beside no voxel whose points disagree or agree the other way, is
wholly in or out. Any layer over 0.52 mm thick (this spacing across a cube's diagonal), the
thinnest leak's 1 mm among them, holds some of the points. The solids' signed distances cannot
tell which voxels the surface crosses: inside a flat lens they give the distance to its rim, not
to its faces (-2.0 mm at 0.3 mm under a face)."""
_BAND_CHUNK_SAMPLES = 2_000_000
"""Points evaluated at once when averaging the surface's voxels (bounds memory)."""


def _substeps(spacing_kji: np.ndarray, step_mm: float) -> tuple[int, int, int]:
    """Parts along k, j, i into which a voxel of ``spacing_kji`` (mm) divides so that each part is
    at most ``step_mm`` long."""
    return tuple(max(1, int(np.ceil(s / step_mm - 1e-6))) for s in spacing_kji)


def _lattice_offsets(substeps_kji: tuple[int, int, int]) -> np.ndarray:
    """Offsets (voxel fractions along k, j, i, ``(n, 3)``, k slowest) of the centres of a voxel's
    equal sub-voxels, ``substeps_kji`` of them along each axis."""
    fractions = [(np.arange(m) + 0.5) / m - 0.5 for m in substeps_kji]
    return np.stack(np.meshgrid(*fractions, indexing="ij"), axis=-1).reshape(-1, 3)


def box_averaged_occupancy(geometry: VolumeGeometry, shape: ImplicitShape, slab) -> np.ndarray:
    """Share (0 to 1, float32 ``[k, j, i]``) of each voxel of ``slab`` inside ``shape``, averaged
    over the voxel's whole extent: 1 or 0 where ``SURFACE_SEARCH_MM`` finds the voxel wholly in
    or out, elsewhere the share of its points ``CEMENT_SUB_VOXEL_MM`` apart inside the solid."""
    shape_kji = tuple(s.stop - s.start for s in slab)
    spacing_kji = np.asarray(geometry.spacing_mm, float)[::-1]
    search = _lattice_offsets(_substeps(spacing_kji, SURFACE_SEARCH_MM))
    inside_count = np.zeros(shape_kji, dtype=np.int32)
    for offsets in search:
        inside = shape.contains(*_coordinates(geometry, slab, tuple(offsets)))
        inside_count += np.broadcast_to(inside, shape_kji)
    all_in, all_out = inside_count == len(search), inside_count == 0
    occupancy = all_in.astype(np.float32)
    # The surface's voxels: those whose points disagree and their neighbours, and those wholly
    # in or out beside one wholly the other way (the surface passes between their points).
    around = np.ones((3, 3, 3), dtype=bool)
    band = ndimage.binary_dilation(~(all_in | all_out), around)
    band |= all_in & ndimage.binary_dilation(all_out, around)
    band |= all_out & ndimage.binary_dilation(all_in, around)
    band[[0, -1]] |= ~all_out[[0, -1]]  # the neighbours beyond a slab's ends are not known here
    if not band.any():
        return occupancy
    fine = _lattice_offsets(_substeps(spacing_kji, CEMENT_SUB_VOXEL_MM))
    offsets_ras = fine[:, ::-1] @ geometry.ijk_to_ras[:3, :3].T
    band_kji = np.argwhere(band)
    origin = np.array([s.start for s in slab])
    centres_ras = geometry.ijk_to_ras_points((band_kji + origin)[:, ::-1].astype(float))
    shares = np.empty(len(band_kji), dtype=np.float32)
    chunk = max(1, _BAND_CHUNK_SAMPLES // len(offsets_ras))
    for start in range(0, len(band_kji), chunk):
        points = centres_ras[start : start + chunk, None, :] + offsets_ras[None, :, :]
        inside = shape.contains(points[..., 0], points[..., 1], points[..., 2])
        shares[start : start + chunk] = np.asarray(inside, float).mean(axis=1)
    occupancy[band] = shares
    return occupancy


class _Canvas:
    """A float32 HU image on a grid, painted shape by shape with partial volume.

    By default a voxel's share of a shape falls linearly from 1 to 0 while the surface crosses
    a cube of the voxel's volume around its centre. With ``slice_averaged``, a voxel is
    sampled at points about ``SUB_VOXEL_MM`` apart (or the smallest spacing, if finer) along
    each axis, a thick slice at several, and averages them, each point's share
    ramping over its sub-voxel's spread across the surface: CT's box-shaped slice sensitivity.
    """

    def __init__(self, geometry: VolumeGeometry, background_hu: float, slice_averaged: bool = False) -> None:
        self.geometry = geometry
        self.image = np.full(geometry.shape, background_hu, dtype=np.float32)
        self.slice_averaged = slice_averaged
        spacing_kji = np.asarray(geometry.spacing_mm, float)[::-1]
        self.voxel_mm = geometry.voxel_volume_mm3 ** (1.0 / 3.0)
        self.margin_mm = float(spacing_kji.max()) if slice_averaged else self.voxel_mm
        sub_mm = min(float(spacing_kji.min()), SUB_VOXEL_MM)
        self.substeps_kji = _substeps(spacing_kji, sub_mm)
        self.smallest_extent_mm = 0.5 * sub_mm

    def occupancy(self, shape: ImplicitShape, slab, box_averaged: bool = False) -> np.ndarray:
        """Share (0 to 1, float32) of each voxel of ``slab`` inside ``shape``; ``box_averaged``
        averages the voxel's whole extent whatever the canvas's mode (:func:`box_averaged_occupancy`)."""
        if box_averaged:
            return box_averaged_occupancy(self.geometry, shape, slab)
        if not self.slice_averaged:
            distance = shape.signed_distance_mm(*_coordinates(self.geometry, slab))
            return np.clip(0.5 - distance / self.voxel_mm, 0.0, 1.0).astype(np.float32)
        total = np.zeros((1, 1, 1))
        for offsets in _lattice_offsets(self.substeps_kji):
            distance = shape.signed_distance_mm(*_coordinates(self.geometry, slab, tuple(offsets)))
            extent = _extent_across_surface_mm(distance, self.substeps_kji)
            extent = np.maximum(extent, self.smallest_extent_mm)
            total = total + np.clip(0.5 - distance / extent, 0.0, 1.0)
        return (total / math.prod(self.substeps_kji)).astype(np.float32)

    def paint(self, shape: ImplicitShape, value, box_averaged: bool = False) -> None:
        """Composite ``value`` (HU, scalar or full-grid array) over the image where ``shape`` is
        (``box_averaged``: see :meth:`occupancy`)."""
        # A voxel's whole extent reaches its largest spacing from its centre's neighbours.
        margin_mm = float(np.max(self.geometry.spacing_mm)) if box_averaged else self.margin_mm
        for slab in slabs(index_box(self.geometry, shape, 2.0 * margin_mm)):
            occupancy = self.occupancy(shape, slab, box_averaged)
            region = self.image[slab]
            target = value[slab] if isinstance(value, np.ndarray) else np.float32(value)
            region += occupancy * (target - region)

    def paint_bone(self, shape: ImplicitShape, cortex_mm: float, marrow) -> None:
        """Cortical shell of ``cortex_mm`` around a marrow interior (HU scalar or array)."""
        self.paint(shape, CORTEX_HU)
        self.paint(Inset(shape, cortex_mm), marrow)


def _texture(geometry: VolumeGeometry, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field (float32 ``[k, j, i]``, mean 0, SD 1): white noise smoothed by TEXTURE_SIGMA_MM."""
    noise = rng.standard_normal(geometry.shape, dtype=np.float32)
    smooth = sitk.GetArrayFromImage(gaussian_blurred(to_sitk(noise, geometry), TEXTURE_SIGMA_MM))
    smooth -= smooth.mean()
    smooth /= max(float(smooth.std()), 1e-6)
    return smooth


def gaussian_blurred(image: sitk.Image, sigma_mm: float) -> sitk.Image:
    """``image`` blurred by a Gaussian of SD ``sigma_mm`` (mm, in the image's spacing)."""
    return sitk.DiscreteGaussian(image, [sigma_mm**2] * 3, 32, 0.01, True)


INSERT_HU = {"disc": DISC_HU, "soft tissue": SOFT_TISSUE_HU, "fluid": CLEFT_FLUID_HU, "gas": CLEFT_GAS_HU}
"""HU of the materials painted over the target body (Schmorl pit, foramen, cleft)."""


def leak_label_map(geometry: VolumeGeometry, anatomy: PhantomAnatomy) -> np.ndarray:
    """uint8 ``[k, j, i]``: ``n + 1`` where a voxel centre lies in the n-th of ``anatomy.leak_solids``."""
    labels = np.zeros(geometry.shape, dtype=np.uint8)
    for label, (_, _, solid) in enumerate(anatomy.leak_solids, start=1):
        for slab in slabs(index_box(geometry, solid, 0.0)):
            inside = solid.contains(*_coordinates(geometry, slab))
            labels[slab] = np.where(inside, np.uint8(label), labels[slab])
    return labels


def _render(spec: PhantomSpec, anatomy: PhantomAnatomy, geometry: VolumeGeometry) -> np.ndarray:
    rng_texture = np.random.default_rng([spec.seed, 1])
    rng_noise = np.random.default_rng([spec.seed, 2])
    texture = _texture(geometry, rng_texture)
    canvas = _Canvas(geometry, AIR_HU, spec.slice_averaged)
    canvas.paint(anatomy.outline, FAT_HU)
    canvas.paint(anatomy.muscle_outline, SOFT_TISSUE_HU)
    for pocket in anatomy.fat_pockets:
        canvas.paint(pocket, FAT_HU)
    for disc in anatomy.discs:
        canvas.paint(disc, DISC_HU)
    if anatomy.vacated is not None:
        canvas.paint(anatomy.vacated, DISC_HU)
    marrow = POSTERIOR_MARROW_HU + 30.0 * texture
    trabecular = TRABECULAR_MEAN_HU + TRABECULAR_SD_HU * texture
    for vertebra in anatomy.vertebrae:
        for element in vertebra.ribs + tuple(vertebra.posterior_elements.values()):
            canvas.paint_bone(element, POSTERIOR_CORTEX_MM, marrow)
        canvas.paint(vertebra.body, spec.cortex_hu)
        canvas.paint(vertebra.trabecular, trabecular)
    del marrow, trabecular
    for material, solid in anatomy.inserts:
        canvas.paint(solid, INSERT_HU[material])
    for ridge in anatomy.osteophytes:
        canvas.paint(ridge, OSTEOPHYTE_HU)
    cement_shapes = anatomy.cement_blobs + anatomy.extravertebral_cement
    if cement_shapes:
        mean, sd = (
            (EXTENDED_CEMENT_MEAN_HU, EXTENDED_CEMENT_SD_HU)
            if spec.extended_scale
            else (CEMENT_MEAN_HU, CEMENT_SD_HU)
        )
        cement = mean + sd * np.roll(texture, (7, 11, 13), axis=(0, 1, 2))
        for shape in cement_shapes:
            canvas.paint(shape, cement, box_averaged=True)
        del cement
    del texture
    image = canvas.image
    if spec.blur_sigma_mm > 0:
        image = sitk.GetArrayFromImage(gaussian_blurred(to_sitk(image, geometry), spec.blur_sigma_mm))
    if spec.noise_sd_hu > 0:
        image += np.float32(spec.noise_sd_hu) * rng_noise.standard_normal(geometry.shape, dtype=np.float32)
    top = np.iinfo(np.int16).max if spec.extended_scale else CT_SCALE_HU[1]
    np.clip(image, CT_SCALE_HU[0], top, out=image)
    return np.rint(image).astype(np.int16)


def phantom_slice_thickness_mm(spec: PhantomSpec, geometry: VolumeGeometry) -> float:
    """Width (mm) of the phantom CT's slice sensitivity across a face parallel to its slices: the
    slice spacing when each voxel averages its whole extent (``slice_averaged``), otherwise the
    side of the cube of a voxel's volume over which its share of a solid ramps (bone; cement is
    averaged over the voxel in either mode)."""
    if spec.slice_averaged:
        return float(geometry.spacing_mm[2])
    return float(geometry.voxel_volume_mm3 ** (1.0 / 3.0))


def make_phantom(spec: PhantomSpec | None = None) -> Phantom:
    """Render the phantom described by ``spec`` (defaults: clean lumbar L1, left puncture, high PSBCV).

    Deterministic for a given spec (seed included). The CT is int16 HU ``[k, j, i]`` on a grid
    whose IJK-to-RAS matrix follows ``spec.orientation``; masks are bool ``[k, j, i]`` on it.
    """
    spec = check_spec(spec or PhantomSpec())
    anatomy = build_anatomy(spec)
    geometry = phantom_geometry(spec, anatomy)
    truth = phantom_truth(anatomy, spec.level)
    array = _render(spec, anatomy, geometry)
    cement = spec.cement_preset if spec.cement_in_body else "no"
    source = f"phantom {spec.level} {spec.side} puncture, {cement} cement, "
    source += f"{spec.orientation} grid, seed {spec.seed}"
    labels = leak_label_map(geometry, anatomy)
    return Phantom(
        ct=CtVolume(
            array,
            geometry,
            source=source,
            sha256="",
            metadata={"phantom_spec": asdict(spec)},
            slice_thickness_mm=phantom_slice_thickness_mm(spec, geometry),
        ),
        truth=truth,
        body_mask=shape_mask(geometry, [anatomy.target.body]),
        cement_in_body_mask=shape_mask(geometry, anatomy.cement_blobs),
        extravertebral_cement_mask=labels > 0,
        anatomy=anatomy,
        leak_labels=labels,
    )
