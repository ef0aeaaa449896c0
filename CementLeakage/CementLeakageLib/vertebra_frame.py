"""A coordinate frame attached to one vertebra, defined by its two endplate midpoints.

Axes (unit vectors in RAS): ``axial`` from the lower to the upper endplate midpoint,
``anterior`` the patient anterior axis made orthogonal to it, ``lateral`` = anterior x axial
(patient right for an upright spine). The origin is the lower endplate midpoint (RAS mm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .split_plane import ANTERIOR_RAS, check_endplate_points


@dataclass(frozen=True)
class VertebraFrame:
    """Origin (RAS mm) and orthonormal axes (RAS unit vectors) of one vertebra."""

    origin_ras: np.ndarray
    lateral_ras: np.ndarray
    anterior_ras: np.ndarray
    axial_ras: np.ndarray
    height_mm: float

    @property
    def rotation(self) -> np.ndarray:
        """3x3 matrix whose columns are the lateral, anterior and axial unit vectors (RAS)."""
        return np.column_stack([self.lateral_ras, self.anterior_ras, self.axial_ras])

    @property
    def endplate_points_ras(self) -> tuple[np.ndarray, np.ndarray]:
        """The upper and lower endplate points (RAS mm) that define the frame: the lower one is
        its origin, the upper one ``height_mm`` along its axis."""
        return self.origin_ras + self.height_mm * self.axial_ras, self.origin_ras

    def to_frame(self, points_ras: np.ndarray) -> np.ndarray:
        """RAS mm points ``(N, 3)`` to frame coordinates ``(N, 3)``: lateral, anterior, axial (mm)."""
        points = np.asarray(points_ras, dtype=float).reshape(-1, 3)
        return (points - self.origin_ras) @ self.rotation

    def to_ras(self, frame_points: np.ndarray) -> np.ndarray:
        """Frame coordinates ``(N, 3)`` (mm) to RAS mm ``(N, 3)``."""
        points = np.asarray(frame_points, dtype=float).reshape(-1, 3)
        return points @ self.rotation.T + self.origin_ras


def vertebra_frame(upper_ras: np.ndarray, lower_ras: np.ndarray) -> VertebraFrame:
    """The frame of the vertebra whose endplate midpoints are ``upper_ras`` and ``lower_ras`` (mm)."""
    upper, lower = check_endplate_points(upper_ras, lower_ras)
    axial = upper - lower
    height = float(np.linalg.norm(axial))
    axial = axial / height
    anterior = ANTERIOR_RAS - (ANTERIOR_RAS @ axial) * axial
    anterior = anterior / np.linalg.norm(anterior)
    lateral = np.cross(anterior, axial)
    return VertebraFrame(
        origin_ras=lower, lateral_ras=lateral, anterior_ras=anterior, axial_ras=axial, height_mm=height
    )
