"""The plane that splits the vertebral body into puncture side and contralateral side.

The plane passes through the midpoints of the upper and lower endplates (RAS mm, as marked
in a coronal view) and contains the patient anterior axis (RAS ``0, 1, 0``), following
Gao et al., BMC Musculoskelet Disord 2022;23:184.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CementLeakageError
from .geometry import format_vector

ANTERIOR_RAS = np.array([0.0, 1.0, 0.0])
"""Patient anterior direction in RAS."""

MINIMUM_ENDPLATE_DISTANCE_MM = 5.0
"""Endplate points closer than this (mm) cannot define a vertebra."""

SIDES = ("left", "right")
"""Puncture sides: ``left`` is patient left (-R), ``right`` is patient right (+R)."""


@dataclass(frozen=True)
class SplitPlane:
    """A plane through ``point_ras`` (mm) with unit ``normal_ras`` pointing to the puncture side."""

    point_ras: np.ndarray
    normal_ras: np.ndarray

    def signed_distance_mm(self, points_ras: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of RAS points ``(N, 3)``: positive on the puncture side."""
        points = np.asarray(points_ras, dtype=float).reshape(-1, 3)
        return (points - self.point_ras) @ self.normal_ras


def check_side(side: str) -> str:
    """Normalise a puncture side name; raise for anything but left or right."""
    normalised = str(side).strip().lower()
    if normalised not in SIDES:
        raise CementLeakageError(f"puncture side must be 'left' or 'right', got {side!r}")
    return normalised


def check_endplate_points(upper_ras: np.ndarray, lower_ras: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate the two endplate midpoints (RAS mm) and return them as float arrays."""
    upper = np.asarray(upper_ras, dtype=float).reshape(-1)
    lower = np.asarray(lower_ras, dtype=float).reshape(-1)
    if (
        upper.shape != (3,)
        or lower.shape != (3,)
        or not (np.all(np.isfinite(upper)) and np.all(np.isfinite(lower)))
    ):
        raise CementLeakageError("each endplate point needs three finite RAS coordinates (R,A,S in mm)")
    distance = float(np.linalg.norm(upper - lower))
    if distance < MINIMUM_ENDPLATE_DISTANCE_MM:
        raise CementLeakageError(
            f"the upper and lower endplate points are {distance:.1f} mm apart (at least "
            f"{MINIMUM_ENDPLATE_DISTANCE_MM:.0f} mm needed): mark the midpoints of the upper and lower "
            "endplates of the same vertebra"
        )
    if upper[2] < lower[2]:
        raise CementLeakageError(
            f"the upper endplate point (S {upper[2]:.1f} mm) lies below the lower one (S {lower[2]:.1f} mm): "
            "swap them (upper = superior endplate)"
        )
    return upper, lower


def split_plane_from_endplates(upper_ras: np.ndarray, lower_ras: np.ndarray, side: str) -> SplitPlane:
    """The split plane through both endplate midpoints (RAS mm) containing the anterior axis.

    The normal is ``(upper - lower) x anterior``, normalised and oriented towards the puncture
    side (patient left is -R, patient right is +R).
    """
    side = check_side(side)
    upper, lower = check_endplate_points(upper_ras, lower_ras)
    axis = upper - lower
    normal = np.cross(axis, ANTERIOR_RAS)
    length = float(np.linalg.norm(normal))
    if length < 1e-6 * float(np.linalg.norm(axis)) or length < 1e-9:
        raise CementLeakageError(
            f"the endplate points ({format_vector(upper)} and {format_vector(lower)}) lie on an "
            "anterior-posterior line, so they cannot define a sagittal split plane: mark them in a "
            "coronal view at the upper and lower endplate"
        )
    normal = normal / length
    wanted_r_sign = -1.0 if side == "left" else 1.0
    if normal[0] * wanted_r_sign < 0:
        normal = -normal
    if abs(normal[0]) < 0.5:
        # The plane is closer to axial or coronal than sagittal: the points are far from vertical.
        raise CementLeakageError(
            "the line between the endplate points is tilted more than 60 degrees from the "
            "superior-inferior axis; check that the upper and lower endplate points belong to one vertebra"
        )
    midpoint = (upper + lower) / 2.0
    return SplitPlane(point_ras=midpoint, normal_ras=normal)
