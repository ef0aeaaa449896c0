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
