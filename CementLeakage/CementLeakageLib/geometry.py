"""Voxel grids and the IJK-to-RAS transform.

Arrays are indexed ``[k, j, i]``; IJK points are ``(i, j, k)`` in voxel units; RAS points
are millimetres in the patient coordinate system (x to patient Right, y Anterior, z
Superior). Files (NRRD, NIfTI, DICOM) store LPS: :data:`LPS_TO_RAS` converts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CementLeakageError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""4x4 matrix that maps LPS millimetres to RAS millimetres (and back: it is its own inverse)."""


@dataclass(frozen=True)
class VolumeGeometry:
    """A voxel grid: array shape ``(nk, nj, ni)`` and the 4x4 IJK-to-RAS matrix (mm)."""

    ijk_to_ras: np.ndarray
    shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        matrix = np.asarray(self.ijk_to_ras, dtype=float)
        if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
            raise CementLeakageError("the IJK-to-RAS matrix must be a finite 4x4 matrix")
        object.__setattr__(self, "ijk_to_ras", matrix)
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise CementLeakageError(f"a volume needs three non-empty axes, got shape {self.shape}")
        spacing = self.spacing_mm
        if not np.all(np.isfinite(spacing)) or np.any(spacing <= 1e-6):
            raise CementLeakageError(
                f"the volume has missing or zero voxel spacing ({format_vector(spacing)} mm); "
                "fix the spacing in the image header before measuring"
            )
        if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
            raise CementLeakageError("the volume's direction matrix is singular; fix the image header")

    @classmethod
    def from_origin_spacing_directions(
        cls,
        origin_ras: np.ndarray,
        spacing_mm: np.ndarray,
        directions_ras: np.ndarray,
        shape: tuple[int, int, int],
    ) -> VolumeGeometry:
        """Build a grid from an RAS origin (mm), spacing (mm, i j k) and unit axis directions.

        ``directions_ras`` is 3x3 with the RAS direction of the i, j and k axes as columns.
        """
        matrix = np.eye(4)
        matrix[:3, :3] = np.asarray(directions_ras, float) @ np.diag(np.asarray(spacing_mm, float))
        matrix[:3, 3] = np.asarray(origin_ras, float)
        return cls(matrix, shape)

    @property
    def spacing_mm(self) -> np.ndarray:
        """Voxel size along i, j and k in mm (lengths of the matrix columns)."""
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def directions_ras(self) -> np.ndarray:
        """3x3 matrix whose columns are the unit RAS directions of the i, j and k axes."""
        return self.ijk_to_ras[:3, :3] / self.spacing_mm

    @property
    def origin_ras(self) -> np.ndarray:
        """RAS position (mm) of the centre of voxel (0, 0, 0)."""
        return self.ijk_to_ras[:3, 3].copy()

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm³ (absolute determinant of the linear part)."""
        return float(abs(np.linalg.det(self.ijk_to_ras[:3, :3])))

    @property
    def ras_to_ijk(self) -> np.ndarray:
        """The inverse 4x4 matrix, RAS mm to continuous IJK voxel coordinates."""
        return np.linalg.inv(self.ijk_to_ras)

    def cropped(self, box: tuple[slice, slice, slice]) -> VolumeGeometry:
        """The grid of ``array[box]`` (``box``: ``[k, j, i]`` slices with explicit starts and stops):
        same spacing and directions, origin moved to the box's first voxel (RAS mm)."""
        matrix = self.ijk_to_ras.copy()
        matrix[:3, 3] = self.ijk_to_ras_points(np.array([[box[2].start, box[1].start, box[0].start]]))[0]
        return VolumeGeometry(matrix, tuple(b.stop - b.start for b in box))

    def ijk_to_ras_points(self, ijk: np.ndarray) -> np.ndarray:
        """Map IJK points ``(N, 3)`` (i, j, k order) to RAS mm ``(N, 3)``."""
        ijk = np.asarray(ijk, dtype=float).reshape(-1, 3)
        return ijk @ self.ijk_to_ras[:3, :3].T + self.ijk_to_ras[:3, 3]

    def ras_to_ijk_points(self, ras: np.ndarray) -> np.ndarray:
        """Map RAS mm points ``(N, 3)`` to continuous IJK ``(N, 3)`` (i, j, k order)."""
        ras = np.asarray(ras, dtype=float).reshape(-1, 3)
        inverse = self.ras_to_ijk
        return ras @ inverse[:3, :3].T + inverse[:3, 3]

    def direction_kji(self, direction_ras: np.ndarray) -> np.ndarray:
        """An RAS direction as a unit vector along the array's k, j and i axes, each scaled to
        mm (the frame in which ``np.indices`` times the spacing ``[k, j, i]`` gives positions)."""
        along_ijk = np.linalg.solve(self.directions_ras, np.asarray(direction_ras, dtype=float).ravel())
        along_kji = along_ijk[::-1]
        return along_kji / np.linalg.norm(along_kji)

    def contains_ras(self, point_ras: np.ndarray, margin_voxels: float = 0.5) -> bool:
        """Whether an RAS point (mm) lies inside the grid's extent (voxel centres ± margin)."""
        ijk = self.ras_to_ijk_points(point_ras)[0]
        upper = np.array(self.shape[::-1], dtype=float) - 1.0
        return bool(np.all(ijk >= -margin_voxels) and np.all(ijk <= upper + margin_voxels))

    def voxel_centers_ras(self, kji_indices: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """RAS mm ``(N, 3)`` of voxel centres given as index arrays ``(k, j, i)`` (as ``np.nonzero``)."""
        k, j, i = kji_indices
        return self.ijk_to_ras_points(np.stack([i, j, k], axis=1))

    def same_grid_as(self, other: VolumeGeometry, tolerance_mm: float = 1e-4) -> bool:
        """Whether two grids have the same shape and IJK-to-RAS matrix (within tolerance, mm)."""
        return self.shape == other.shape and np.allclose(self.ijk_to_ras, other.ijk_to_ras, atol=tolerance_mm)


def format_vector(vector: np.ndarray, digits: int = 3) -> str:
    """Format a short vector as ``a, b, c`` for messages."""
    return ", ".join(f"{float(value):.{digits}g}" for value in np.ravel(vector))
