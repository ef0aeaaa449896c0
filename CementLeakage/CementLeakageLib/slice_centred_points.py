"""Endplate points that lie on the centre of a thick CT slice, as points marked in a slice view
aligned with the CT's slices do.

Slicer snaps a slice view aligned with a volume's slices to their centres (the slice logic's
``SnapSliceOffsetToIJK``), and a point clicked in it takes that slice's position. On slices up
to ``endplate_surfaces.THIN_SLICE_MAX_MM`` the endplates' surfaces are read from the CT and the
points moved onto them (:mod:`endplate_surfaces`); on thicker slices the points are used as
marked, and a slice's centre can lie up to half a slice from the endplate's surface. On the
point placement benchmark's thick-slice phantoms (1.25-2 mm) a point 0.5 mm off along the axis
moved VBV by 1.9-4.7%. In a view across the slices (sagittal or coronal on an axial CT) a point
can be placed on the surface between two slices' centres.
"""

from __future__ import annotations

import numpy as np

from .endplate_surfaces import reads_surfaces
from .geometry import VolumeGeometry

CENTRE_TOLERANCE_MM = 0.02
"""A point within this distance (mm) of a slice's centre plane lies on it (a point saved with
two decimals is within 0.005 mm; one placed freely on 2 mm slices lands this close by chance
one time in fifty)."""

ALONG_AXIS_COS_MIN = float(np.cos(np.radians(45.0)))
"""The CT's slices are across the vertebral axis (their normal within 45 degrees of it): only
then does a slice's position decide where a point lies along the axis."""


def slice_centre_offsets_mm(geometry: VolumeGeometry, points_ras: np.ndarray) -> np.ndarray:
    """Distance (mm, along the slices' normal) from each point (RAS mm, ``[n, 3]``) to the centre
    plane of the nearest CT slice (k)."""
    k = geometry.ras_to_ijk_points(np.asarray(points_ras, float).reshape(-1, 3))[:, 2]
    return np.abs(k - np.round(k)) * float(geometry.spacing_mm[2])


def nearest_slice_centre_ras(geometry: VolumeGeometry, point_ras: np.ndarray) -> np.ndarray:
    """``point_ras`` (RAS mm) moved along the slices' normal onto the centre plane of the nearest
    CT slice (k), where a slice view aligned with the slices shows it."""
    ijk = geometry.ras_to_ijk_points(np.asarray(point_ras, float).reshape(1, 3))[0]
    ijk[2] = np.round(ijk[2])
    return geometry.ijk_to_ras_points(ijk[None])[0]


def slice_centre_warnings(
    geometry: VolumeGeometry, upper_ras: np.ndarray, lower_ras: np.ndarray
) -> list[str]:
    """A warning for each endplate point (RAS mm) that lies on the centre of a CT slice thicker
    than the endplate surfaces are read on, with the slices across the vertebral axis; none on
    thin slices or for points between the slices' centres."""
    spacing = np.asarray(geometry.spacing_mm, float)
    if reads_surfaces(spacing):
        return []
    upper, lower = np.asarray(upper_ras, float), np.asarray(lower_ras, float)
    axis = (upper - lower) / np.linalg.norm(upper - lower)
    normal = geometry.directions_ras[:, 2]
    if abs(float(axis @ normal)) < ALONG_AXIS_COS_MIN:
        return []
    slice_mm = float(spacing[2])
    offsets = slice_centre_offsets_mm(geometry, np.stack([upper, lower]))
    warnings = []
    for name, offset in zip(("upper", "lower"), offsets):
        if offset <= CENTRE_TOLERANCE_MM:
            warnings.append(
                f"the {name} endplate point sits on the centre of a {slice_mm:g} mm CT slice, as a point "
                "marked in a slice view aligned with the CT's slices does: on slices this thick the point is "
                f"used as marked, and the endplate's surface can lie up to {0.5 * slice_mm:g} mm from it "
                "(0.5 mm moves VBV by 2-5%); mark the point in a sagittal view, on the endplate's surface "
                "against the disc"
            )
    return warnings
