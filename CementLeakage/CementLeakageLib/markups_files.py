"""Slicer markups files (``.mrk.json``) holding a level's two endplate midpoints (RAS mm)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import slicer

from .errors import CementLeakageError
from .mrml_nodes import add_endplate_markups, endplate_points
from .storage_files import write_node_atomically


def _private_scene():
    """A scene for one file; its selection node gives markups their length unit (mm)."""
    scene = slicer.vtkMRMLScene()
    scene.AddNode(slicer.vtkMRMLSelectionNode())
    return scene


def write_endplate_markups_file(path: str | os.PathLike, upper_ras, lower_ras, level: str) -> Path:
    """Write the two endplate midpoints as a Slicer point list file, atomically.

    Slicer's JSON storage writes the coordinates with their coordinate system (LPS by
    default) and reads them back as RAS.
    """
    path = Path(path)
    scene = _private_scene()
    node = add_endplate_markups(scene, upper_ras, lower_ras, level)
    return write_node_atomically(scene, slicer.vtkMRMLMarkupsJsonStorageNode(), node, path, ".mrk.json")


def read_endplate_markups_file(
    path: str | os.PathLike, level: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The upper and lower endplate midpoints (RAS mm) of a Slicer point list file."""
    path = Path(path)
    if not path.is_file():
        raise CementLeakageError(f"{path} does not exist: check the path of the markups file")
    scene = _private_scene()
    node = slicer.vtkMRMLMarkupsFiducialNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLMarkupsJsonStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        raise CementLeakageError(f"{path.name} could not be read as a Slicer markups file")
    return endplate_points(node, level)
