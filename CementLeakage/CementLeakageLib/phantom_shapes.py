"""Implicit solids in RAS millimetres for the synthetic CT phantom.

Every shape answers three questions about points given as broadcastable coordinate arrays
``x, y, z`` (RAS mm): ``contains`` (exact inside test, boundary included),
``signed_distance_mm`` (negative inside; exact sign, magnitude exact for boxes and cylinders
and accurate near the surface for ellipses, which is all partial-volume rendering needs) and
``bounds_ras`` (an axis-aligned box in RAS mm that holds the solid). ``volume_mm3`` is the
closed-form volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _ellipse_distance(scaled_terms: list[np.ndarray], gradient_terms: list[np.ndarray], largest: float):
    """Approximate signed distance to the level set ``q = 1`` of ``q = sqrt(sum(scaled_terms**2))``.

    Uses the first-order estimate ``(q - 1) / |grad q|``; ``gradient_terms`` are ``x / a**2``
    for each axis and ``largest`` the largest semi-axis, which bounds ``1 / |grad q|``.
    """
    q = np.sqrt(sum(term * term for term in scaled_terms))
    gradient = np.sqrt(sum(term * term for term in gradient_terms)) / np.maximum(q, 1e-12)
    gradient = np.maximum(gradient, 1.0 / largest)
    return (q - 1.0) / gradient


def _combine_slab(radial: np.ndarray, axial: np.ndarray) -> np.ndarray:
    """Signed distance of the intersection of two regions given their own signed distances."""
    outside = np.sqrt(np.maximum(radial, 0.0) ** 2 + np.maximum(axial, 0.0) ** 2)
    return outside + np.minimum(np.maximum(radial, axial), 0.0)


class ImplicitShape:
    """Base of the phantom's solids (RAS mm)."""

    def signed_distance_mm(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Signed distance (mm), negative inside."""
        raise NotImplementedError

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Exact inside test (boundary included) at RAS points (mm)."""
        raise NotImplementedError

    def bounds_ras(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper RAS corners (mm) of a box holding the solid (may be infinite)."""
        raise NotImplementedError

    @property
    def volume_mm3(self) -> float:
        """Closed-form volume (mm³)."""
        raise NotImplementedError

    def contains_points(self, points_ras: np.ndarray) -> np.ndarray:
        """Exact inside test for RAS points ``(N, 3)`` (mm)."""
        points = np.asarray(points_ras, dtype=float).reshape(-1, 3)
        return self.contains(points[:, 0], points[:, 1], points[:, 2])


@dataclass(frozen=True)
class Ellipsoid(ImplicitShape):
    """Ellipsoid with semi-axes along R, A and S (mm) around ``centre_ras`` (mm)."""

    centre_ras: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]

    def _scaled(self, x, y, z):
        return [(c - o) / s for c, o, s in zip((x, y, z), self.centre_ras, self.semi_axes_mm)]

    def signed_distance_mm(self, x, y, z):
        offsets = [c - o for c, o in zip((x, y, z), self.centre_ras)]
        scaled = [d / s for d, s in zip(offsets, self.semi_axes_mm)]
        gradient = [d / (s * s) for d, s in zip(offsets, self.semi_axes_mm)]
        return _ellipse_distance(scaled, gradient, max(self.semi_axes_mm))

    def contains(self, x, y, z):
        return sum(term * term for term in self._scaled(x, y, z)) <= 1.0

    def bounds_ras(self):
        centre, semi = np.asarray(self.centre_ras, float), np.asarray(self.semi_axes_mm, float)
        return centre - semi, centre + semi

    @property
    def volume_mm3(self) -> float:
        a, b, c = self.semi_axes_mm
        return 4.0 / 3.0 * np.pi * a * b * c

    def volume_beyond_plane_mm3(self, axis: int, plane_mm: float, direction: float) -> float:
        """Volume (mm³) of the part on the ``direction`` side (+1 or -1) of the plane ``coord = plane_mm``.

        The plane is normal to RAS axis ``axis`` (0, 1 or 2). With ``t = direction * (plane -
        centre) / semi-axis`` clipped to [-1, 1], the cap volume is
        ``pi * a * b * c * (2/3 - t + t**3 / 3)``.
        """
        semi = self.semi_axes_mm[axis]
        t = float(np.clip(direction * (plane_mm - self.centre_ras[axis]) / semi, -1.0, 1.0))
        a, b, c = self.semi_axes_mm
        return float(np.pi * a * b * c * (2.0 / 3.0 - t + t**3 / 3.0))


@dataclass(frozen=True)
class EllipticCylinder(ImplicitShape):
    """Elliptic cylinder along S: semi-axes along R and A (mm), ``height_mm`` along S (may be inf)."""

    centre_ras: tuple[float, float, float]
    semi_axes_mm: tuple[float, float]
    height_mm: float

    def radial_distance_mm(self, x, y):
        """Approximate signed distance (mm) to the elliptic cylinder's side wall (infinite along S)."""
        (a, b), (cx, cy) = self.semi_axes_mm, self.centre_ras[:2]
        dx, dy = x - cx, y - cy
        return _ellipse_distance([dx / a, dy / b], [dx / (a * a), dy / (b * b)], max(a, b))

    def signed_distance_mm(self, x, y, z):
        radial = self.radial_distance_mm(x, y)
        if not np.isfinite(self.height_mm):
            return radial
        axial = np.abs(z - self.centre_ras[2]) - 0.5 * self.height_mm
        return _combine_slab(radial, axial)

    def contains(self, x, y, z):
        (a, b), (cx, cy, cz) = self.semi_axes_mm, self.centre_ras
        inside = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0
        if np.isfinite(self.height_mm):
            inside = inside & (np.abs(z - cz) <= 0.5 * self.height_mm)
        return inside

    def bounds_ras(self):
        centre = np.asarray(self.centre_ras, float)
        half = np.array([self.semi_axes_mm[0], self.semi_axes_mm[1], 0.5 * self.height_mm])
        return centre - half, centre + half

    @property
    def volume_mm3(self) -> float:
        a, b = self.semi_axes_mm
        return float(np.pi * a * b * self.height_mm)

    @property
    def upper_face_centre_ras(self) -> np.ndarray:
        """Centre of the superior face (mm)."""
        return np.asarray(self.centre_ras, float) + [0.0, 0.0, 0.5 * self.height_mm]

    @property
    def lower_face_centre_ras(self) -> np.ndarray:
        """Centre of the inferior face (mm)."""
        return np.asarray(self.centre_ras, float) - [0.0, 0.0, 0.5 * self.height_mm]


@dataclass(frozen=True)
class Cylinder(ImplicitShape):
    """Circular cylinder with flat ends from ``start_ras`` to ``end_ras`` (mm), radius in mm."""

    start_ras: tuple[float, float, float]
    end_ras: tuple[float, float, float]
    radius_mm: float

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(np.subtract(self.end_ras, self.start_ras)))

    @property
    def axis_ras(self) -> np.ndarray:
        """Unit vector from the start to the end (RAS)."""
        return np.subtract(self.end_ras, self.start_ras) / self.length_mm

    def _local(self, x, y, z):
        u = self.axis_ras
        d = [c - s for c, s in zip((x, y, z), self.start_ras)]
        along = d[0] * u[0] + d[1] * u[1] + d[2] * u[2]
        radial_sq = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] - along * along
        return along, np.sqrt(np.maximum(radial_sq, 0.0))

    def signed_distance_mm(self, x, y, z):
        along, radial = self._local(x, y, z)
        half = 0.5 * self.length_mm
        return _combine_slab(radial - self.radius_mm, np.abs(along - half) - half)

    def contains(self, x, y, z):
        along, radial = self._local(x, y, z)
        return (along >= 0.0) & (along <= self.length_mm) & (radial <= self.radius_mm)

    def bounds_ras(self):
        u = self.axis_ras
        reach = self.radius_mm * np.sqrt(np.clip(1.0 - u * u, 0.0, 1.0))
        ends = np.array([self.start_ras, self.end_ras], dtype=float)
        return ends.min(axis=0) - reach, ends.max(axis=0) + reach

    @property
    def volume_mm3(self) -> float:
        return float(np.pi * self.radius_mm**2 * self.length_mm)

    def surface_points_ras(self, n_around: int = 64, n_along: int = 16) -> np.ndarray:
        """Points (N, 3) in RAS mm on the side wall and both end discs (for clearance checks)."""
        u = self.axis_ras
        helper = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        e1 = np.cross(u, helper)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(u, e1)
        angles = np.linspace(0.0, 2.0 * np.pi, n_around, endpoint=False)
        ring = np.cos(angles)[:, None] * e1 + np.sin(angles)[:, None] * e2
        points = []
        for s in np.linspace(0.0, self.length_mm, n_along):
            points.append(np.asarray(self.start_ras) + s * u + self.radius_mm * ring)
        for end in (self.start_ras, self.end_ras):
            for r in np.linspace(0.0, self.radius_mm, 6)[:-1]:
                points.append(np.asarray(end) + r * ring)
        return np.concatenate(points)


@dataclass(frozen=True)
class OrientedBox(ImplicitShape):
    """Box with rounded edges: centre (RAS mm), half sizes along its own axes (mm), rounding radius.

    ``axes_ras`` is a 3x3 rotation whose columns are the box's axes in RAS. The solid is the
    box with half sizes ``half_sizes_mm - rounding_mm`` grown by ``rounding_mm`` in every direction.
    """

    centre_ras: tuple[float, float, float]
    half_sizes_mm: tuple[float, float, float]
    axes_ras: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    rounding_mm: float = 0.0

    def _excess(self, x, y, z):
        axes = np.asarray(self.axes_ras, float)
        d = [c - o for c, o in zip((x, y, z), self.centre_ras)]
        inner = np.asarray(self.half_sizes_mm, float) - self.rounding_mm
        return [
            np.abs(d[0] * axes[0, n] + d[1] * axes[1, n] + d[2] * axes[2, n]) - inner[n] for n in range(3)
        ]

    def signed_distance_mm(self, x, y, z):
        q = self._excess(x, y, z)
        outside = np.sqrt(sum(np.maximum(v, 0.0) ** 2 for v in q))
        inside = np.minimum(np.maximum(np.maximum(q[0], q[1]), q[2]), 0.0)
        return outside + inside - self.rounding_mm

    def contains(self, x, y, z):
        return self.signed_distance_mm(x, y, z) <= 0.0

    def bounds_ras(self):
        reach = np.abs(np.asarray(self.axes_ras, float)) @ np.asarray(self.half_sizes_mm, float)
        centre = np.asarray(self.centre_ras, float)
        return centre - reach, centre + reach

    @property
    def volume_mm3(self) -> float:
        p, q, s = np.asarray(self.half_sizes_mm, float) - self.rounding_mm
        r = self.rounding_mm
        return float(
            8 * p * q * s
            + 8 * r * (p * q + q * s + p * s)
            + 2 * np.pi * r * r * (p + q + s)
            + 4 / 3 * np.pi * r**3
        )


@dataclass(frozen=True)
class Inset(ImplicitShape):
    """The solid ``shape`` shrunk by ``thickness_mm`` (its signed distance plus the thickness).

    Exact for boxes and cylinders, approximate for ellipses; used only for intensities.
    """

    shape: ImplicitShape
    thickness_mm: float

    def signed_distance_mm(self, x, y, z):
        return self.shape.signed_distance_mm(x, y, z) + self.thickness_mm

    def contains(self, x, y, z):
        return self.signed_distance_mm(x, y, z) <= 0.0

    def bounds_ras(self):
        return self.shape.bounds_ras()


def ellipsoid_cap_fraction(t: float) -> float:
    """Fraction of an ellipsoid's volume beyond a plane at normalised offset ``t`` (unit-sphere cap).

    ``t`` is the plane's distance from the centre divided by the ellipsoid's support width along
    the plane normal; the fraction is ``(1 - t)**2 * (2 + t) / 4``, 0 for ``t >= 1``, 1 for ``t <= -1``.
    """
    t = float(np.clip(t, -1.0, 1.0))
    return (1.0 - t) ** 2 * (2.0 + t) / 4.0


@dataclass(frozen=True)
class DeformedCylinder(ImplicitShape):
    """Elliptic cylinder along S with deformed end faces (a fractured vertebral body), RAS mm.

    Semi-axes ``(a, b)`` along R and A around ``centre_ras``; ``height_mm`` is the distance between
    the (undimpled) end faces on the axis. The upper face is the plane
    ``z = cz + h/2 + upper_slope * (y - cy)`` (``upper_slope`` is dz/dy, negative when it drops
    anteriorly: a wedge); each face is dimpled towards the centre by an elliptic paraboloid of depth
    ``dimple_mm`` on the axis and 0 at the rim (``dimple * (1 - (x/a)**2 - (y/b)**2)``). A ball of
    ``pit_radius_mm`` around ``pit_centre_ras`` (a point on a planar upper face) is cut out (a
    Schmorl node). Closed-form volume: ``pi a b (h - dimple) - 2/3 pi r**3`` (the plane through the
    ellipse centre gives ``pi a b`` times the axis height; each dimple removes ``pi a b d / 2``; the
    pit removes half a ball).
    """

    centre_ras: tuple[float, float, float]
    semi_axes_mm: tuple[float, float]
    height_mm: float
    upper_slope: float = 0.0
    dimple_mm: float = 0.0
    pit_centre_ras: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pit_radius_mm: float = 0.0
    dimple_extent_mm: tuple[float, float] | None = None
    """R and A semi-axes (mm) of the ellipse where the dimple reaches 0 (default: ``semi_axes_mm``;
    the closed-form volume assumes the default)."""

    def _radial_sq(self, x, y, semi_axes=None):
        (a, b), (cx, cy, _) = semi_axes or self.semi_axes_mm, self.centre_ras
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2

    def face_heights_mm(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """S coordinates (mm) of the upper and lower faces above RAS ``(x, y)`` (inside the outline)."""
        cz = self.centre_ras[2]
        dimple = self.dimple_mm * np.maximum(1.0 - self._radial_sq(x, y, self.dimple_extent_mm), 0.0)
        upper = cz + 0.5 * self.height_mm + self.upper_slope * (y - self.centre_ras[1]) - dimple
        lower = cz - 0.5 * self.height_mm + dimple
        return upper, lower

    def _pit_distance(self, x, y, z):
        px, py, pz = self.pit_centre_ras
        return np.sqrt((x - px) ** 2 + (y - py) ** 2 + (z - pz) ** 2) - self.pit_radius_mm

    def signed_distance_mm(self, x, y, z):
        (a, b), (cx, cy, _) = self.semi_axes_mm, self.centre_ras
        dx, dy = x - cx, y - cy
        radial = _ellipse_distance([dx / a, dy / b], [dx / (a * a), dy / (b * b)], max(a, b))
        upper, lower = self.face_heights_mm(x, y)
        ea, eb = self.dimple_extent_mm or (a, b)
        gx = 2.0 * self.dimple_mm * dx / (ea * ea)
        gy = 2.0 * self.dimple_mm * dy / (eb * eb)
        upper_norm = np.sqrt(1.0 + gx * gx + (self.upper_slope + gy) ** 2)
        lower_norm = np.sqrt(1.0 + gx * gx + gy * gy)
        axial = np.maximum((z - upper) / upper_norm, (lower - z) / lower_norm)
        distance = _combine_slab(radial, axial)
        if self.pit_radius_mm > 0.0:
            distance = np.maximum(distance, -self._pit_distance(x, y, z))
        return distance

    def contains(self, x, y, z):
        upper, lower = self.face_heights_mm(x, y)
        inside = (self._radial_sq(x, y) <= 1.0) & (z <= upper) & (z >= lower)
        if self.pit_radius_mm > 0.0:
            inside = inside & (self._pit_distance(x, y, z) > 0.0)
        return inside

    def bounds_ras(self):
        (a, b), centre = self.semi_axes_mm, np.asarray(self.centre_ras, float)
        reach = 0.5 * self.height_mm + abs(self.upper_slope) * b
        return centre - [a, b, reach], centre + [a, b, reach]

    @property
    def volume_mm3(self) -> float:
        a, b = self.semi_axes_mm
        return float(
            np.pi * a * b * (self.height_mm - self.dimple_mm) - 2.0 / 3.0 * np.pi * self.pit_radius_mm**3
        )

    @property
    def upper_face_centre_ras(self) -> np.ndarray:
        """Centre of the (dimpled, tilted) superior face on the axis (mm)."""
        return np.asarray(self.centre_ras, float) + [0.0, 0.0, 0.5 * self.height_mm - self.dimple_mm]

    @property
    def lower_face_centre_ras(self) -> np.ndarray:
        """Centre of the (dimpled) inferior face on the axis (mm)."""
        return np.asarray(self.centre_ras, float) - [0.0, 0.0, 0.5 * self.height_mm - self.dimple_mm]


@dataclass(frozen=True)
class Rotated(ImplicitShape):
    """``shape`` turned by the rotation matrix ``rotation`` (3x3, RAS) about ``pivot_ras`` (mm).

    A point ``p`` is in the solid when ``R^T (p - pivot) + pivot`` is in ``shape``; distances and
    volumes are unchanged by the rotation.
    """

    shape: ImplicitShape
    rotation: tuple[tuple[float, float, float], ...]
    pivot_ras: tuple[float, float, float]

    def to_local(self, x, y, z):
        """Coordinates (RAS mm) in the unrotated shape's frame of world points ``x, y, z``."""
        r, p = np.asarray(self.rotation, float), self.pivot_ras
        d = (x - p[0], y - p[1], z - p[2])
        return tuple(r[0, n] * d[0] + r[1, n] * d[1] + r[2, n] * d[2] + p[n] for n in range(3))

    def to_world_points(self, points_ras: np.ndarray) -> np.ndarray:
        """World RAS points (mm) of points ``(..., 3)`` given in the unrotated shape's frame."""
        pivot = np.asarray(self.pivot_ras, float)
        return (np.asarray(points_ras, float) - pivot) @ np.asarray(self.rotation, float).T + pivot

    def signed_distance_mm(self, x, y, z):
        return self.shape.signed_distance_mm(*self.to_local(x, y, z))

    def contains(self, x, y, z):
        return self.shape.contains(*self.to_local(x, y, z))

    def bounds_ras(self):
        lower, upper = self.shape.bounds_ras()
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
            return np.full(3, -np.inf), np.full(3, np.inf)
        corners = np.array(
            [
                [x, y, z]
                for x in (lower[0], upper[0])
                for y in (lower[1], upper[1])
                for z in (lower[2], upper[2])
            ]
        )
        world = self.to_world_points(corners)
        return world.min(axis=0), world.max(axis=0)

    @property
    def volume_mm3(self) -> float:
        return self.shape.volume_mm3
