"""Settings of the vertebral body segmentation, and the grid aligned with the vertebra it works
on (see :mod:`vertebra_frame`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import VolumeGeometry
from .vertebra_frame import VertebraFrame


@dataclass(frozen=True)
class BodySegmentationSettings:
    """Geometric settings of the body segmentation, all in millimetres."""

    working_spacing_mm: float = 0.5
    half_width_mm: float = 40.0
    closing_radii_mm: tuple[float, ...] = (1.0, 2.0, 3.0)
    shell_levels_hu: tuple[float, ...] = (190.0, 160.0, 130.0)
    endplate_extension: float = 0.45
    rim_coverage: tuple[float, float] = (0.05, 0.6)
    seed_radius_mm: float = 6.0
    neck_radius_mm: float = 4.5
    canal_gap_mm: float = 2.0
    posterior_wall_quantile: float = 0.2
    slab_margin_mm: float = 2.0
    closing_3d_radius_mm: float = 0.0
    reference_margin_mm: float = 0.0
    refine_outer_edge: bool = True
    edge_band_mm: float = 1.5


def frame_grid(frame: VertebraFrame, settings: BodySegmentationSettings) -> VolumeGeometry:
    """A grid aligned with the vertebra covering the slab between the endplates (RAS mm)."""
    spacing = settings.working_spacing_mm
    half = settings.half_width_mm
    # Along the axis the spacing divides the height exactly and slices are centred half a slice
    # from the points, so both endplate points lie on slice faces.
    axial_spacing = frame.height_mm / max(1, int(round(frame.height_mm / spacing)))
    raw_margin = settings.slab_margin_mm + settings.endplate_extension * frame.height_mm
    margin = (np.ceil(raw_margin / axial_spacing) + 0.5) * axial_spacing
    n_xy = int(round(2 * half / spacing)) + 1
    n_z = int(round((frame.height_mm + 2 * margin) / axial_spacing))
    matrix = np.eye(4)
    matrix[:3, :3] = frame.rotation * np.array([spacing, spacing, axial_spacing])
    matrix[:3, 3] = frame.to_ras([[-half, -half, -margin]])[0]
    return VolumeGeometry(matrix, (n_z, n_xy, n_xy))
