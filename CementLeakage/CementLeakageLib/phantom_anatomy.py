"""Where the phantom's anatomy and cement lie, in RAS millimetres.

A stack of vertebrae along S (the target in the middle), discs between them, posterior
elements behind each body, optional rib heads, the patient outline with subcutaneous and
retroperitoneal fat, and the cement: ellipsoid blobs inside the target body, a tail in the
puncture-side pedicle tract and a paravertebral leak. Shapes only; intensities are given in
:mod:`phantom`.

The layout is drawn for the default body (semi-axes 20 x 15 mm, height 25 mm) in mm relative
to the body centre and scaled per axis for other body sizes; cement positions are given with
their first axis pointing to the puncture side. The pedicles converge anteriorly (about 7
degrees), so the pedicle-tract tail is oblique to the grid's axes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .errors import CementLeakageError
from .leak_classes import PARAVERTEBRAL, PEDICLE_TRACT
from .phantom_leaks import planted_leaks
from .phantom_shapes import (
    Cylinder,
    DeformedCylinder,
    Ellipsoid,
    EllipticCylinder,
    ImplicitShape,
    OrientedBox,
    Rotated,
)

if TYPE_CHECKING:
    from .phantom import PhantomSpec

DEFAULT_BODY_MM = (20.0, 15.0, 25.0)
"""Lateral and AP semi-axes and height (mm) the layout below is drawn for."""

CEMENT_CLEARANCE_MM = 1.5
"""Smallest distance (mm) from a cement blob to the inner surface of the cortex."""

DEFAULT_INNER_MM = (19.0, 14.0, 11.5)
"""Trabecular region of the default body: lateral and AP semi-axes and half height (mm)."""

CEMENT_PRESETS: dict[str, tuple[tuple[float, ...], ...]] = {
    # Blobs as (u, v, w, semi-u, semi-v, semi-w) in mm for the default body's trabecular region:
    # u towards the puncture side, v anterior, w superior, from the body centre.
    "high": ((2.0, 0.0, 0.0, 15.0, 12.0, 9.8),),
    "low": ((5.5, 1.0, -1.0, 7.0, 7.5, 7.0), (-8.5, -1.0, 1.5, 6.0, 7.0, 6.5)),
}
"""Cement layouts: ``high`` gives PSBCV/VBV 18.8%, ``low`` 6.3% (default body, either side)."""

PEDICLE_TAIL_RADIUS_MM = 2.0
PEDICLE_TAIL_LENGTH_MM = 12.0
PEDICLE_TAIL_GAP_MM = 1.0
LEAK_SEMI_AXES_MM = (3.5, 3.0, 7.0)
LEAK_GAP_MM = 2.0

COMPRESSIONS = ("none", "wedge", "biconcave")
"""Shapes of a compressed target body (see :class:`phantom_shapes.DeformedCylinder`)."""
SCHMORL_RADIUS_MM = 3.0
"""Radius (mm) of the Schmorl node's hemispherical pit in the upper endplate."""
SCHMORL_OFFSET_AP = -0.35
"""A offset of the Schmorl node from the body axis, as a fraction of the AP semi-axis (posterior)."""
FORAMEN_HALF_WIDTH_MM = 3.0
FORAMEN_HALF_HEIGHT_MM = 2.0
"""The basivertebral foramen: 6 mm wide (R) by 4 mm high (S) through the posterior cortex."""
FORAMEN_DEPTH_MM = 0.3
"""How far (mm) the foramen reaches past the cortex into the trabecular region."""
CLEFT_THICKNESS_MM = 2.0
CLEFT_INSET_MM = 1.0
"""The fracture cleft: a 2 mm slab at mid-height, 1 mm inside the trabecular region's side wall."""
OSTEOPHYTE_SEMI_AXES_MM = (7.0, 2.0, 1.5)
OSTEOPHYTE_GAP_MM = 0.2
"""Anterior rim osteophytes: R, A, S semi-axes (mm) and gap (mm) to the body's side wall."""


@dataclass(frozen=True)
class VertebraShapes:
    """One vertebra: body (cortex included), its trabecular region, posterior elements and ribs."""

    body: ImplicitShape
    """The body's solid: an EllipticCylinder, a DeformedCylinder when fractured, Rotated when turned."""
    trabecular: ImplicitShape
    posterior_elements: dict
    """Name (``left pedicle``, ``right transverse process``, ``lamina``, ``spinous process``...) to solid."""
    ribs: tuple[ImplicitShape, ...]
    pedicle_axes_ras: dict
    """Per side (``left``/``right``): (anterior end, posterior end) of the pedicle axis, RAS mm."""


@dataclass(frozen=True)
class PhantomAnatomy:
    """All solids of a phantom (RAS mm) and the field of view's S range.

    ``planted_leaks`` are ``(location, side, solid)`` for the leaks of ``PhantomSpec.leaks``;
    ``inserts`` are ``(material, solid)`` painted over the target body (``disc``, ``soft tissue``
    or ``fluid``, or ``gas`` in a vacuum cleft: Schmorl pit, basivertebral foramen, fracture cleft);
    ``vacated`` is the space a
    compressed body left (painted as disc); ``cement_room`` a flat elliptic cylinder inside the
    trabecular region that the blobs keep 1.5 mm clear of; ``rotation`` (3x3) and ``pivot_ras``
    describe how the stack was turned (None when it was not).
    """

    vertebrae: tuple[VertebraShapes, ...]
    target_index: int
    discs: tuple[EllipticCylinder, ...]
    outline: EllipticCylinder
    muscle_outline: EllipticCylinder
    fat_pockets: tuple[EllipticCylinder, ...]
    cement_blobs: tuple[Ellipsoid, ...]
    pedicle_tail: Cylinder | None
    leak: Ellipsoid | None
    side: str
    s_range_mm: tuple[float, float]
    planted_leaks: tuple = ()
    inserts: tuple = ()
    vacated: ImplicitShape | None = None
    osteophytes: tuple = ()
    cement_room: ImplicitShape | None = None
    rotation: np.ndarray | None = None
    pivot_ras: np.ndarray | None = None

    @property
    def target(self) -> VertebraShapes:
        """The treated vertebra."""
        return self.vertebrae[self.target_index]

    @property
    def extravertebral_cement(self) -> tuple[ImplicitShape, ...]:
        """Cement outside the target body: pedicle tail, paravertebral and planted leaks (those present)."""
        return tuple(solid for _, _, solid in self.leak_solids)

    @property
    def leak_solids(self) -> tuple[tuple[str, str, ImplicitShape], ...]:
        """``(location, side, solid)`` of all cement outside the body: tail, paravertebral, planted."""
        found = []
        if self.pedicle_tail is not None:
            found.append((PEDICLE_TRACT, self.side, self.pedicle_tail))
        if self.leak is not None:
            found.append((PARAVERTEBRAL, self.side, self.leak))
        return tuple(found) + tuple(self.planted_leaks)


def side_sign(side: str) -> float:
    """+1 for the patient's right (+R), -1 for the left (-R)."""
    return -1.0 if side == "left" else 1.0


def distance_to_ellipse_mm(points_xy: np.ndarray, a: float, b: float) -> np.ndarray:
    """Euclidean distance (mm) from points ``(N, 2)`` (relative to the centre) to the ellipse curve (a, b).

    The closest point's parameter is taken from a 256-gon and refined by Newton's method on
    the orthogonality condition (accurate to well under a micrometre).
    """
    points = np.asarray(points_xy, float).reshape(-1, 2)
    x, y = points[:, 0:1], points[:, 1:2]
    angles = np.linspace(0.0, 2.0 * np.pi, 256, endpoint=False)[None, :]
    coarse = (x - a * np.cos(angles)) ** 2 + (y - b * np.sin(angles)) ** 2
    theta = angles[0, np.argmin(coarse, axis=1)]
    x, y = x[:, 0], y[:, 0]
    for _ in range(8):
        sin, cos = np.sin(theta), np.cos(theta)
        slope = (a * a - b * b) * sin * cos - x * a * sin + y * b * cos
        curvature = (a * a - b * b) * (cos * cos - sin * sin) - x * a * cos - y * b * sin
        step = np.where(np.abs(curvature) > 1e-12, slope / np.where(curvature == 0, 1.0, curvature), 0.0)
        theta = theta - np.clip(step, -0.05, 0.05)
    return np.hypot(x - a * np.cos(theta), y - b * np.sin(theta))


def _equator_xy(blob: Ellipsoid, n: int = 256) -> np.ndarray:
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    a, b, _ = blob.semi_axes_mm
    return np.stack(
        [blob.centre_ras[0] + a * np.cos(angles), blob.centre_ras[1] + b * np.sin(angles)], axis=1
    )


def blob_clearance_mm(blob: Ellipsoid, trabecular: EllipticCylinder) -> float:
    """Smallest distance (mm) from an axis-aligned ellipsoid to the surface of the trabecular region.

    Negative when the blob pokes out. The side wall is vertical, so the distance to it is the
    2D distance of the blob's outline in RAS x-y (its equator) to the ellipse.
    """
    cx, cy, cz = trabecular.centre_ras
    a, b = trabecular.semi_axes_mm
    outline = _equator_xy(blob) - [cx, cy]
    if np.any((outline[:, 0] / a) ** 2 + (outline[:, 1] / b) ** 2 > 1.0):
        return -1.0
    wall = float(distance_to_ellipse_mm(outline, a, b).min())
    ends = 0.5 * trabecular.height_mm - (abs(blob.centre_ras[2] - cz) + blob.semi_axes_mm[2])
    return min(wall, ends)


def _boxes_overlap(first: ImplicitShape, second: ImplicitShape) -> bool:
    (lo1, hi1), (lo2, hi2) = first.bounds_ras(), second.bounds_ras()
    return bool(np.all(lo1 <= hi2) and np.all(lo2 <= hi1))


def _vertebra(spec: PhantomSpec, centre: np.ndarray, scale: np.ndarray) -> VertebraShapes:
    a, b = spec.body_semi_axes_mm
    h = spec.body_height_mm
    t = spec.cortex_mm
    body = EllipticCylinder(tuple(centre), (a, b), h)
    trabecular = EllipticCylinder(tuple(centre), (a - t, b - t), h - 2.0 * t)
    sx, sy, sz = scale

    def at(x: float, y: float, z: float) -> tuple[float, float, float]:
        return (centre[0] + x * sx, centre[1] + y * sy, centre[2] + z * sz)

    elements: dict[str, ImplicitShape] = {}
    pedicle_axes = {}
    for side in ("left", "right"):
        sign = side_sign(side)
        anterior = np.array(at(sign * 11.0, -9.0, 4.0))
        posterior = np.array(at(sign * 14.0, -32.0, 4.0))
        axis = (anterior - posterior) / np.linalg.norm(anterior - posterior)
        across = np.cross(axis, [0.0, 0.0, 1.0])
        half_length = 0.5 * float(np.linalg.norm(anterior - posterior))
        elements[f"{side} pedicle"] = OrientedBox(
            tuple((anterior + posterior) / 2.0),
            (4.0 * sx, half_length, 7.0 * sz),
            tuple(map(tuple, np.column_stack([across, axis, [0.0, 0.0, 1.0]]))),
            rounding_mm=1.5,
        )
        elements[f"{side} transverse process"] = OrientedBox(
            at(sign * 25.0, -31.0, 4.0), (11.0 * sx, 3.0 * sy, 5.0 * sz), rounding_mm=1.5
        )
        pedicle_axes[side] = (anterior, posterior)
    elements["lamina"] = OrientedBox(at(0.0, -34.0, 3.0), (18.0 * sx, 3.0 * sy, 8.0 * sz), rounding_mm=1.5)
    elements["spinous process"] = OrientedBox(
        at(0.0, -47.0, 1.0), (3.0 * sx, 12.0 * sy, 7.0 * sz), rounding_mm=1.5
    )

    ribs: list[ImplicitShape] = []
    if spec.with_ribs:
        radius = 4.5 * min(sx, sy)
        for side in ("left", "right"):
            sign = side_sign(side)
            direction = np.array([sign * np.cos(np.radians(25.0)), -np.sin(np.radians(25.0)), 0.0])
            wall = np.array([centre[0] + sign * a * np.cos(np.radians(30.0)), centre[1] - b * 0.5, 0.0])
            wall[2] = centre[2] + 0.25 * h
            start = wall - 2.0 * direction
            ribs.append(Cylinder(tuple(start), tuple(start + (26.0 * sx + 2.0) * direction), radius))
    return VertebraShapes(body, trabecular, elements, tuple(ribs), pedicle_axes)


def _cement_blobs(spec: PhantomSpec, room: EllipticCylinder) -> tuple[Ellipsoid, ...]:
    """The preset's blobs fitted to ``room`` (the trabecular region, or a flat part of it).

    Positions and semi-axes scale per axis with the region a blob may fill (the room less the
    clearance), about the room's centre; a blob that still comes closer than the clearance to
    the room's surface is shrunk about its centre in 1% steps until it clears it.
    """
    if spec.cement_preset not in CEMENT_PRESETS:
        raise CementLeakageError(
            f"unknown cement preset {spec.cement_preset!r}: use one of {', '.join(sorted(CEMENT_PRESETS))}"
        )
    a, b = room.semi_axes_mm
    allowed = np.array([a, b, 0.5 * room.height_mm]) - CEMENT_CLEARANCE_MM
    if np.any(allowed <= 0.5):
        raise CementLeakageError(
            "the cement does not fit in the compressed body: use a larger compression ratio or a taller body"
        )
    scale = allowed / (np.asarray(DEFAULT_INNER_MM) - CEMENT_CLEARANCE_MM)
    sign = np.array([side_sign(spec.side), 1.0, 1.0])
    centre = np.asarray(room.centre_ras, float)
    blobs: list[Ellipsoid] = []
    for u, v, w, su, sv, sw in CEMENT_PRESETS[spec.cement_preset]:
        blob_centre = tuple(centre + sign * scale * [u, v, w])
        semi_axes = scale * [su, sv, sw]
        blob = Ellipsoid(blob_centre, tuple(semi_axes))
        shrink = 1.0
        while blob_clearance_mm(blob, room) < CEMENT_CLEARANCE_MM:
            shrink -= 0.01
            if shrink < 0.5:
                raise CementLeakageError(
                    f"the cement of preset {spec.cement_preset!r} does not fit in the body with "
                    f"{CEMENT_CLEARANCE_MM} mm clearance: use a larger body or a thinner cortex"
                )
            blob = Ellipsoid(blob_centre, tuple(shrink * semi_axes))
        if any(_boxes_overlap(blob, other) for other in blobs):
            raise CementLeakageError("the cement blobs overlap in this body: use a larger body")
        blobs.append(blob)
    return tuple(blobs)


def _fractured(spec: PhantomSpec, vertebra: VertebraShapes) -> VertebraShapes:
    """The target vertebra with its body compressed (wedge or biconcave) and/or a Schmorl pit.

    The lower endplate stays where it was. Wedge: the upper endplate is a plane through the
    posterior rim at full height whose anterior rim is at ``ratio`` times the height. Biconcave:
    both endplates dimpled by ``(1 - ratio) * height / 2`` on the axis. The trabecular region
    follows the faces ``cortex_mm`` inside (along S).
    """
    a, b = spec.body_semi_axes_mm
    h, t, ratio = spec.body_height_mm, spec.cortex_mm, spec.compression_ratio
    cx, cy, cz = vertebra.body.centre_ras
    slope, dimple, axis_height = 0.0, 0.0, h
    if spec.compression == "wedge":
        slope = -(1.0 - ratio) * h / (2.0 * b)
        axis_height = 0.5 * (1.0 + ratio) * h
    elif spec.compression == "biconcave":
        dimple = 0.5 * (1.0 - ratio) * h
    centre = (cx, cy, cz - 0.5 * h + 0.5 * axis_height)
    pit_centre, pit_radius = (0.0, 0.0, 0.0), 0.0
    if spec.schmorl_node:
        if dimple > 0.0:
            raise CementLeakageError(
                "a Schmorl node needs a flat upper endplate: do not combine it with a biconcave compression"
            )
        y = cy + SCHMORL_OFFSET_AP * b
        pit_centre = (cx, y, centre[2] + 0.5 * axis_height + slope * (y - cy))
        pit_radius = SCHMORL_RADIUS_MM
    body = DeformedCylinder(centre, (a, b), axis_height, slope, dimple, pit_centre, pit_radius)
    trabecular = DeformedCylinder(
        centre, (a - t, b - t), axis_height - 2.0 * t, slope, dimple, dimple_extent_mm=(a, b)
    )
    return replace(vertebra, body=body, trabecular=trabecular)


def _cement_room(target: VertebraShapes) -> EllipticCylinder:
    """The flat elliptic cylinder (RAS mm) the blobs must keep 1.5 mm clear of.

    The trabecular region itself when it is an undeformed cylinder; otherwise its cross-section
    between the lowest point of its upper face and the highest point of its lower face (sampled
    on a polar grid, less 0.01 mm), below the Schmorl pit. A fracture cleft does not bound it:
    cement injected into a body with a cleft fills the cleft where it reaches it (the cleft
    filling pattern), so the blobs are painted over the cleft's fluid.
    """
    trabecular = target.trabecular
    if isinstance(trabecular, EllipticCylinder):
        return trabecular
    (a, b), (cx, cy, cz) = trabecular.semi_axes_mm, trabecular.centre_ras
    if isinstance(trabecular, DeformedCylinder):
        radius, angle = np.meshgrid(np.linspace(0.0, 1.0, 61), np.linspace(0.0, 2.0 * np.pi, 181))
        upper, lower = trabecular.face_heights_mm(
            cx + a * radius * np.cos(angle), cy + b * radius * np.sin(angle)
        )
        top, bottom = float(upper.min()) - 0.01, float(lower.max()) + 0.01
    else:
        top, bottom = cz + 0.5 * trabecular.height_mm, cz - 0.5 * trabecular.height_mm
    body = target.body
    if isinstance(body, DeformedCylinder) and body.pit_radius_mm > 0.0:
        top = min(top, body.pit_centre_ras[2] - body.pit_radius_mm)
    if top - bottom < 2.0 * CEMENT_CLEARANCE_MM + 1.0:
        raise CementLeakageError(
            "there is no room for cement in this fractured body: use a larger compression ratio"
        )
    return EllipticCylinder((cx, cy, 0.5 * (top + bottom)), (a, b), top - bottom)


def _body_mid_height_ras(body: ImplicitShape) -> np.ndarray:
    """Point (RAS mm) on the body axis halfway between the endplate centres."""
    return 0.5 * (np.asarray(body.upper_face_centre_ras) + np.asarray(body.lower_face_centre_ras))


def _inserts(spec: PhantomSpec, target: VertebraShapes) -> tuple[tuple[str, ImplicitShape], ...]:
    """Soft-tissue solids painted over the target body: Schmorl pit, basivertebral foramen, cleft."""
    inserts: list[tuple[str, ImplicitShape]] = []
    body = target.body
    a, b = spec.body_semi_axes_mm
    t = spec.cortex_mm
    cx, cy, mid = _body_mid_height_ras(body)
    if isinstance(body, DeformedCylinder) and body.pit_radius_mm > 0.0:
        inserts.append(("disc", Ellipsoid(body.pit_centre_ras, (body.pit_radius_mm,) * 3)))
    if spec.basivertebral_foramen:
        front, back = cy - b + t + FORAMEN_DEPTH_MM, cy - b - 1.0
        inserts.append(
            (
                "soft tissue",
                OrientedBox(
                    (cx, 0.5 * (front + back), mid),
                    (FORAMEN_HALF_WIDTH_MM, 0.5 * (front - back), FORAMEN_HALF_HEIGHT_MM),
                ),
            )
        )
    if spec.fracture_cleft:
        inserts.append(("gas" if spec.cleft_gas else "fluid", _cleft(spec, target)))
    return tuple(inserts)


def _cleft(spec: PhantomSpec, target: VertebraShapes) -> EllipticCylinder:
    """The fracture cleft: a 2 mm slab at mid-height inside the trabecular region (RAS mm)."""
    a, b = target.trabecular.semi_axes_mm
    cx, cy, mid = _body_mid_height_ras(target.body)
    return EllipticCylinder((cx, cy, mid), (a - CLEFT_INSET_MM, b - CLEFT_INSET_MM), CLEFT_THICKNESS_MM)


def _osteophytes(spec: PhantomSpec, target: VertebraShapes) -> tuple[Ellipsoid, ...]:
    """Anterior rim osteophytes at both endplates, just outside the body's side wall (RAS mm).

    Each ridge is an ellipsoid whose R semi-axis is small enough for its outline to curve more
    than the body's anterior wall, so that its gap to the wall is smallest on the midline.
    """
    a, b = spec.body_semi_axes_mm
    body = target.body
    cx, cy = body.centre_ras[:2]
    rx, ry, rz = OSTEOPHYTE_SEMI_AXES_MM
    rx = min(rx, 0.9 * np.sqrt(ry * a * a / b))
    y = cy + b + OSTEOPHYTE_GAP_MM + ry
    if isinstance(body, DeformedCylinder):
        upper, lower = body.face_heights_mm(cx, cy + b)
    else:
        upper, lower = body.centre_ras[2] + 0.5 * body.height_mm, body.centre_ras[2] - 0.5 * body.height_mm
    return tuple(Ellipsoid((cx, y, float(z)), (rx, ry, rz)) for z in (upper, lower))


def _outside_body_by(points_ras: np.ndarray, body: EllipticCylinder) -> float:
    """Smallest distance (mm) in RAS x-y from points to the body's side wall; negative if inside."""
    relative = np.asarray(points_ras, float)[:, :2] - body.centre_ras[:2]
    a, b = body.semi_axes_mm
    if np.any((relative[:, 0] / a) ** 2 + (relative[:, 1] / b) ** 2 <= 1.0):
        return -1.0
    return float(distance_to_ellipse_mm(relative, a, b).min())


def _pedicle_tail(spec: PhantomSpec, target: VertebraShapes) -> Cylinder:
    """Cement cylinder along the puncture-side pedicle axis, starting just behind the body wall."""
    anterior, posterior = target.pedicle_axes_ras[spec.side]
    direction = (posterior - anterior) / np.linalg.norm(posterior - anterior)
    body = target.body
    step = 0.05
    distance = 0.0
    while body.contains_points((anterior + distance * direction)[None])[0]:
        distance += step
    start = anterior + (distance + PEDICLE_TAIL_GAP_MM) * direction
    tail = Cylinder(tuple(start), tuple(start + PEDICLE_TAIL_LENGTH_MM * direction), PEDICLE_TAIL_RADIUS_MM)
    while _outside_body_by(tail.surface_points_ras(), body) < 0.5:
        start = start + step * direction
        tail = Cylinder(
            tuple(start), tuple(start + PEDICLE_TAIL_LENGTH_MM * direction), PEDICLE_TAIL_RADIUS_MM
        )
    return tail


def _leak(spec: PhantomSpec, target: VertebraShapes) -> Ellipsoid:
    """Paravertebral leak: a small ellipsoid anterolateral to the body on the puncture side."""
    a, b = target.body.semi_axes_mm
    cx, cy, cz = target.body.centre_ras
    v = 0.3 * b
    u = a * np.sqrt(1.0 - (v / b) ** 2) + LEAK_GAP_MM + LEAK_SEMI_AXES_MM[0]
    leak = Ellipsoid(
        (cx + side_sign(spec.side) * u, cy + v, cz + 0.1 * target.body.height_mm), LEAK_SEMI_AXES_MM
    )
    if _outside_body_by(_equator_xy(leak), target.body) < 0.5 * LEAK_GAP_MM:
        raise CementLeakageError("the paravertebral leak touches the body: check the body size")
    return leak


def build_anatomy(spec: PhantomSpec) -> PhantomAnatomy:
    """Lay out the phantom described by ``spec`` (already validated) in RAS mm."""
    a, b = spec.body_semi_axes_mm
    h, disc = spec.body_height_mm, spec.disc_height_mm
    scale = np.array([a, b, h]) / DEFAULT_BODY_MM
    target_centre = np.asarray(spec.body_centre_ras, float)
    target_index = spec.n_vertebrae // 2
    pitch = h + disc
    vertebrae = tuple(
        _vertebra(spec, target_centre + [0.0, 0.0, (n - target_index) * pitch], scale)
        for n in range(spec.n_vertebrae)
    )
    lowest = vertebrae[0].body.centre_ras[2]
    discs = tuple(
        EllipticCylinder((target_centre[0], target_centre[1], lowest + (m - 0.5) * pitch), (a, b), disc)
        for m in range(spec.n_vertebrae + 1)
    )
    s_range = (lowest - 0.5 * h - 0.5 * disc, vertebrae[-1].body.centre_ras[2] + 0.5 * h + 0.5 * disc)

    sx, sy = scale[:2]
    middle = (target_centre[0], target_centre[1] - 10.0 * sy, target_centre[2])
    outline = EllipticCylinder(middle, (60.0 * sx, 56.0 * sy), np.inf)
    muscle = EllipticCylinder(middle, (60.0 * sx - 6.0, 56.0 * sy - 6.0), np.inf)
    fat_pockets = tuple(
        EllipticCylinder(
            (target_centre[0] + sign * 30.0 * sx, target_centre[1] + 24.0 * sy, 0.0),
            (8.0 * sx, 6.0 * sy),
            np.inf,
        )
        for sign in (-1.0, 1.0)
    )

    target = vertebrae[target_index]
    vacated = None
    if spec.compression != "none" or spec.schmorl_node:
        vacated = target.body
        target = _fractured(spec, target)
        vertebrae = vertebrae[:target_index] + (target,) + vertebrae[target_index + 1 :]
    room = _cement_room(target)
    blobs: tuple[Ellipsoid, ...] = ()
    tail = leak = None
    planted: tuple = ()
    if spec.cement_in_body:
        blobs = _cement_blobs(spec, room)
        tail = _pedicle_tail(spec, target) if spec.pedicle_tail else None
        leak = _leak(spec, target) if spec.paravertebral_leak else None
        planted = planted_leaks(spec, target_centre, tuple(target.posterior_elements.values()))
    anatomy = PhantomAnatomy(
        vertebrae=vertebrae,
        target_index=target_index,
        discs=discs,
        outline=outline,
        muscle_outline=muscle,
        fat_pockets=fat_pockets,
        cement_blobs=blobs,
        pedicle_tail=tail,
        leak=leak,
        side=spec.side,
        s_range_mm=s_range,
        planted_leaks=planted,
        inserts=_inserts(spec, target),
        vacated=vacated,
        osteophytes=_osteophytes(spec, target) if spec.osteophytes else (),
        cement_room=room,
    )
    if spec.tilt_deg != 0.0 or spec.rotation_deg != 0.0:
        anatomy = _turned(anatomy, stack_rotation(spec.tilt_deg, spec.rotation_deg), target_centre)
    if anatomy.planted_leaks:
        anatomy = _covering_leaks(anatomy)
    return anatomy


def _covering_leaks(anatomy: PhantomAnatomy, margin_mm: float = 1.0) -> PhantomAnatomy:
    """The anatomy with its S range grown to hold every planted leak plus ``margin_mm`` (mm)."""
    low, high = anatomy.s_range_mm
    for _, _, solid in anatomy.planted_leaks:
        lower, upper = solid.bounds_ras()
        low, high = min(low, float(lower[2]) - margin_mm), max(high, float(upper[2]) + margin_mm)
    return replace(anatomy, s_range_mm=(low, high))


def stack_rotation(tilt_deg: float, rotation_deg: float) -> np.ndarray:
    """Rotation (3x3, RAS) of the stack: coronal tilt about A, then axial rotation about S (degrees).

    A positive tilt turns S towards +R (above the target the stack leans to the patient's
    right); a positive rotation turns R towards A (counter-clockwise seen from +S).
    """
    tilt, turn = np.radians(tilt_deg), np.radians(rotation_deg)
    about_a = np.array(
        [[np.cos(tilt), 0.0, np.sin(tilt)], [0.0, 1.0, 0.0], [-np.sin(tilt), 0.0, np.cos(tilt)]]
    )
    about_s = np.array(
        [[np.cos(turn), -np.sin(turn), 0.0], [np.sin(turn), np.cos(turn), 0.0], [0.0, 0.0, 1.0]]
    )
    return about_s @ about_a


def _turned(anatomy: PhantomAnatomy, rotation: np.ndarray, pivot: np.ndarray) -> PhantomAnatomy:
    """The anatomy with the vertebral stack, discs and cement turned about ``pivot`` (RAS mm).

    The patient outline, muscle and fat stay. The S range grows to hold the turned discs.
    """
    matrix = tuple(map(tuple, rotation))
    centre = tuple(float(value) for value in pivot)

    def turn(shape):
        return None if shape is None else Rotated(shape, matrix, centre)

    def turn_point(point):
        return (np.asarray(point, float) - pivot) @ rotation.T + pivot

    vertebrae = tuple(
        replace(
            vertebra,
            body=turn(vertebra.body),
            trabecular=turn(vertebra.trabecular),
            posterior_elements={name: turn(part) for name, part in vertebra.posterior_elements.items()},
            ribs=tuple(turn(rib) for rib in vertebra.ribs),
            pedicle_axes_ras={
                side: tuple(turn_point(point) for point in ends)
                for side, ends in vertebra.pedicle_axes_ras.items()
            },
        )
        for vertebra in anatomy.vertebrae
    )
    discs = tuple(turn(disc) for disc in anatomy.discs)
    lows, highs = zip(*(disc.bounds_ras() for disc in discs))
    s_range = (
        min(anatomy.s_range_mm[0], float(np.min(lows, axis=0)[2])),
        max(anatomy.s_range_mm[1], float(np.max(highs, axis=0)[2])),
    )
    return replace(
        anatomy,
        vertebrae=vertebrae,
        discs=discs,
        cement_blobs=tuple(turn(blob) for blob in anatomy.cement_blobs),
        pedicle_tail=turn(anatomy.pedicle_tail),
        leak=turn(anatomy.leak),
        s_range_mm=s_range,
        planted_leaks=tuple((location, side, turn(solid)) for location, side, solid in anatomy.planted_leaks),
        inserts=tuple((material, turn(solid)) for material, solid in anatomy.inserts),
        vacated=turn(anatomy.vacated),
        osteophytes=tuple(turn(solid) for solid in anatomy.osteophytes),
        cement_room=turn(anatomy.cement_room),
        rotation=rotation,
        pivot_ras=np.asarray(pivot, float),
    )
