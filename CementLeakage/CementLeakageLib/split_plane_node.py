"""The split plane shown in Slicer's views as a markups plane that follows the endplate points.

The plane node is derived data: the panel recomputes it from the endplate midpoints (RAS mm)
whenever they move, with the same function the measurement uses
(:func:`split_plane.split_plane_from_endplates`), so what the user sees is what is measured.
"""

from __future__ import annotations

import numpy as np
import slicer

from .errors import CementLeakageError
from .mrml_nodes import LEVEL_ATTRIBUTE, ROLE_ATTRIBUTE
from .split_plane import ANTERIOR_RAS, split_plane_from_endplates

SPLIT_PLANE_ROLE = "split plane"

PLANE_ANTERIOR_POSTERIOR_SIZE_MM = 60.0
"""Extent of the drawn plane along the patient's anterior axis (mm): wider than any vertebral body."""
PLANE_MARGIN_MM = 10.0
"""How far the drawn plane reaches beyond each endplate point along the vertebra's axis (mm)."""
PUNCTURE_SIDE_COLOR_RGB = (0.85, 0.25, 0.85)
"""Colour of the plane, the puncture-side cement's colour (magenta)."""


def split_plane_node_name(level: str) -> str:
    """Name of a level's split plane node, e.g. ``L1 split plane``."""
    return f"{level} split plane" if level else "Split plane"


def find_split_plane_node(scene, level: str):
    """The split plane node of ``level`` in ``scene``, or None."""
    nodes = scene.GetNodesByClass("vtkMRMLMarkupsPlaneNode")
    for index in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(index)
        if (
            node.GetAttribute(ROLE_ATTRIBUTE) == SPLIT_PLANE_ROLE
            and (node.GetAttribute(LEVEL_ATTRIBUTE) or "") == level
        ):
            return node
    return None


def _new_split_plane_node(scene, level: str):
    node = slicer.vtkMRMLMarkupsPlaneNode()
    node.SetName(split_plane_node_name(level))
    node.SetAttribute(ROLE_ATTRIBUTE, SPLIT_PLANE_ROLE)
    node.SetAttribute(LEVEL_ATTRIBUTE, level)
    scene.AddNode(node)
    node.CreateDefaultDisplayNodes()
    node.SetLocked(True)  # it follows the endplate points; the user moves those instead
    node.SetPlaneType(slicer.vtkMRMLMarkupsPlaneNode.PlaneTypePointNormal)
    node.SetSizeMode(slicer.vtkMRMLMarkupsPlaneNode.SizeModeAbsolute)
    display = node.GetDisplayNode()
    if display is not None:
        display.SetSelectedColor(*PUNCTURE_SIDE_COLOR_RGB)
        display.SetColor(*PUNCTURE_SIDE_COLOR_RGB)
        display.SetOpacity(0.35)
    return node


def update_split_plane_node(scene, upper_ras, lower_ras, side: str, level: str):
    """Create or move ``level``'s split plane node to the plane of the given endplate midpoints.

    ``upper_ras`` and ``lower_ras`` are RAS (mm, world). The node's centre is their midpoint,
    its normal points to the puncture side, its in-plane axes are the patient's anterior axis
    and the vertebra's axis. Raises :class:`CementLeakageError` (and hides an existing plane)
    when the points cannot define a plane, with the same message the measurement gives.
    """
    node = find_split_plane_node(scene, level)
    try:
        plane = split_plane_from_endplates(upper_ras, lower_ras, side)
    except CementLeakageError:
        if node is not None and node.GetDisplayNode() is not None:
            node.GetDisplayNode().SetVisibility(False)
        raise
    if node is None:
        node = _new_split_plane_node(scene, level)
    normal = np.asarray(plane.normal_ras, dtype=float)
    anterior = ANTERIOR_RAS - normal * float(ANTERIOR_RAS @ normal)
    anterior /= np.linalg.norm(anterior)
    vertebra_axis = np.cross(normal, anterior)
    length_mm = float(np.linalg.norm(np.asarray(upper_ras, float) - np.asarray(lower_ras, float)))
    was_modifying = node.StartModify()
    node.SetCenterWorld(*[float(v) for v in plane.point_ras])
    node.SetAxesWorld(
        [float(v) for v in anterior], [float(v) for v in vertebra_axis], [float(v) for v in normal]
    )
    node.SetSize(PLANE_ANTERIOR_POSTERIOR_SIZE_MM, length_mm + 2 * PLANE_MARGIN_MM)
    node.SetAttribute("CementLeakage.Side", side)
    node.EndModify(was_modifying)
    if node.GetDisplayNode() is not None:
        node.GetDisplayNode().SetVisibility(True)
    return node


def split_plane_of_node(node) -> tuple[np.ndarray, np.ndarray]:
    """Centre (RAS mm) and unit normal (RAS) of a plane node, as Slicer reports them."""
    center = [0.0, 0.0, 0.0]
    normal = [0.0, 0.0, 0.0]
    node.GetCenterWorld(center)
    node.GetNormalWorld(normal)
    return np.array(center), np.array(normal)
