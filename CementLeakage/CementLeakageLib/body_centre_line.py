"""How far the endplate points lie to either side of the vertebral body's centre line.

The split plane goes through the two endplate points (:mod:`split_plane`), so a point marked off
the middle of its endplate moves the plane sideways with it. On the phantoms both points marked
2 mm to one side moved PSBCV/VBV% by 2.1-3.2 points (the L1 of the demo +3.16, a wedged L4
tilted 15 degrees +2.10, a T8 on 2 mm slices +3.11), with VBV unchanged and no other sign of it.

The centre line is fitted to the body mask itself: a straight line, in the vertebra's frame
(:mod:`vertebra_frame`), through the side-to-side position of the body's voxels along the axis,
weighted by a window over the middle of the height. Its ends reach the endplates' planes at the
points, where the offsets are read. The window leaves out the endplates' dishes and rims, and
its ramps keep a CT slice that a tilted frame cuts across from pulling the line to one side (a
hard cut at 20% and 80% of the height put the true mask's line of an L5 tilted 0.4 degrees to
its 2 mm slices 2.1 mm off its points). Where the body was segmented along its own axis
(:mod:`body_axis_lean`), the line is fitted in that axis's frame instead. With the points on
their endplates' midpoints, the 450 phantoms of the nine sweeps (seeds 2026 to 2034) read at
most 0.76 mm on their measured masks (a T6 on 2 mm slices tilted 3 degrees, 0.73 mm on its true
mask; median 0.02 mm); the real L2 of the tests, its points on one column through the body's
centroid, 1.34 mm.

Only the side-to-side offset is read: the split plane contains the anterior axis, so a point
marked in front of or behind the middle leaves it where it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .split_plane import SplitPlane, split_plane_from_endplates
from .vertebra_frame import vertebra_frame

WINDOW_RAMP = (0.1, 0.3)
"""The centre line's window over the body's height (shares of the distance between the points):
voxels weigh nothing up to the first share from either point, rise linearly to full weight at
the second and keep it over the middle."""

OFF_CENTRE_WARNING_MM = 2.5
"""A point further than this (mm) to either side of the body's centre line is named: the L1 of
the demo read PSBCV/VBV% 3.8 points high with both points 2.5 mm off."""

MIN_WINDOW_SPREAD_MM = 2.0
"""The body's voxels within the window must spread this far (mm, standard deviation along the
axis) for the line's slope to be read; a mask that barely reaches into the window gives none."""


@dataclass(frozen=True)
class PointsOffCentre:
    """Side-to-side distance (mm) from the body's centre line to each endplate point, positive
    towards the puncture side (the split plane's normal), and the points moved onto the line
    (RAS mm)."""

    upper_mm: float
    lower_mm: float
    centred_upper_ras: np.ndarray
    centred_lower_ras: np.ndarray

    @property
    def named(self) -> bool:
        """Whether either point lies further than ``OFF_CENTRE_WARNING_MM`` from the line."""
        return max(abs(self.upper_mm), abs(self.lower_mm)) > OFF_CENTRE_WARNING_MM

    def centred_plane(self, side: str) -> SplitPlane:
        """The split plane through the centre line's ends, containing the anterior axis."""
        return split_plane_from_endplates(self.centred_upper_ras, self.centred_lower_ras, side)


def points_off_centre(
    body_centres_ras: np.ndarray,
    upper_ras: np.ndarray,
    lower_ras: np.ndarray,
    plane: SplitPlane,
    axis_ras: tuple[np.ndarray, np.ndarray] | None = None,
) -> PointsOffCentre | None:
    """How far the endplate points (RAS mm) lie from the centre line of the body whose voxel
    centres are ``body_centres_ras`` (RAS mm, ``[n, 3]``), measured along ``plane``'s normal;
    None when too little of the body lies within the window. The line is fitted in the frame of
    the points, or with ``axis_ras`` (upper, lower; RAS mm), of two points on the body's own axis
    that the body was segmented along (:mod:`body_axis_lean`): square to a line that leans far
    against the body, the window's ends cut its tilted endplates and pull the fit towards the
    line (the demo's L1, its points 6 mm to either side of their middles, read 0.2 mm off)."""
    upper = np.asarray(upper_ras, float)
    lower = np.asarray(lower_ras, float)
    frame = vertebra_frame(*(axis_ras if axis_ras is not None else (upper, lower)))
    local = frame.to_frame(body_centres_ras)
    height = frame.height_mm
    share = local[:, 2] / height
    start, full = WINDOW_RAMP
    weight = np.clip((np.minimum(share, 1.0 - share) - start) / (full - start), 0.0, 1.0)
    inside = weight > 0.0
    if not inside.any():
        return None
    weight, lateral, axial = weight[inside], local[inside, 0], local[inside, 2] - 0.5 * height
    total = float(weight.sum())
    mean_axial = float(weight @ axial) / total
    spread = float(weight @ (axial - mean_axial) ** 2) / total
    if spread < MIN_WINDOW_SPREAD_MM**2:
        return None
    # Weighted least squares of the lateral position against the axial one.
    mean_lateral = float(weight @ lateral) / total
    slope = float(weight @ ((axial - mean_axial) * (lateral - mean_lateral))) / total / spread
    # Each point's side-to-side distance from the line at its own height (mm, frame lateral).
    points = frame.to_frame(np.array([upper, lower]))
    off = points[:, 0] - (mean_lateral + slope * (points[:, 2] - 0.5 * height - mean_axial))
    towards_puncture = 1.0 if float(frame.lateral_ras @ plane.normal_ras) > 0.0 else -1.0
    return PointsOffCentre(
        upper_mm=towards_puncture * float(off[0]),
        lower_mm=towards_puncture * float(off[1]),
        centred_upper_ras=upper - off[0] * frame.lateral_ras,
        centred_lower_ras=lower - off[1] * frame.lateral_ras,
    )


def off_centre_warning(
    off_centre: PointsOffCentre, side: str, psbcv_vbv_pct: float, centred_psbcv_vbv_pct: float
) -> str:
    """The warning for endplate points off the body's centre line (:attr:`PointsOffCentre.named`),
    with PSBCV/VBV% (%) as measured and through the centre line."""
    other = "right" if side == "left" else "left"

    def where(distance_mm: float) -> str:
        return f"{abs(distance_mm):.1f} mm to the {side if distance_mm > 0 else other}"

    return (
        f"the endplate points lie off the vertebral body's centre line (through its cross-sections' "
        f"centroids): the upper {where(off_centre.upper_mm)}, the lower {where(off_centre.lower_mm)}, "
        f"and the split plane follows them. PSBCV/VBV% reads {psbcv_vbv_pct:.2f}% as marked and "
        f"{centred_psbcv_vbv_pct:.2f}% through the centre line: mark each point midway between the "
        "body's side walls in a coronal view"
    )
