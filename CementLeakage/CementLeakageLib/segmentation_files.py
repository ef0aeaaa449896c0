"""Slicer segmentation files (``.seg.nrrd``): writing masks and reading named segments.

Files go through Slicer's own ``vtkMRMLSegmentationStorageNode`` in a private scene, so what
is written is what Slicer reads (names, colours, overlapping segments in separate layers).
Masks are boolean ``[k, j, i]`` arrays on a :class:`VolumeGeometry` (RAS).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import slicer
import vtk

from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .mrml_nodes import (
    ensure_segmentation_converters,
    numpy_matrix,
    segment_mask,
    segment_names,
    segment_provenance,
    segment_tag,
    segment_voxel_count,
    set_segment_mask,
)
from .segments import LISTED_NAMES_MAX, SEGMENT_COLORS_RGB, listed_names
from .storage_files import write_node_atomically

METADATA_TAG_PREFIX = "CementLeakage."
DEFAULT_COLOR = (0.8, 0.8, 0.8)


def write_segmentation_file(
    path: str | os.PathLike,
    masks_by_name: dict[str, np.ndarray],
    geometry: VolumeGeometry,
    metadata: dict | None = None,
) -> Path:
    """Write the named masks as a ``.seg.nrrd`` (atomically: temporary name, then rename).

    ``metadata`` (level, side, input SHA-256, software version...) is kept in every segment's
    tags as ``CementLeakage.<key>``, which the file stores and Slicer shows.
    """
    ensure_segmentation_converters()
    path = Path(path)
    scene = slicer.vtkMRMLScene()
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    tags = {f"{METADATA_TAG_PREFIX}{key}": str(value) for key, value in (metadata or {}).items()}
    for name, mask in masks_by_name.items():
        set_segment_mask(node, name, mask, geometry, SEGMENT_COLORS_RGB.get(name, DEFAULT_COLOR), tags)
    return write_node_atomically(scene, slicer.vtkMRMLSegmentationStorageNode(), node, path, ".seg.nrrd")


def _read_node(path: str | os.PathLike):
    ensure_segmentation_converters()
    path = Path(path)
    if not path.is_file():
        raise CementLeakageError(f"{path} does not exist: check the path of the segmentation")
    scene = slicer.vtkMRMLScene()
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    if path.stat().st_size == 0 or not storage.ReadData(node):
        raise CementLeakageError(
            f"{path.name} could not be read as a Slicer segmentation: give a .seg.nrrd saved by Slicer"
        )
    return scene, node


MANY_SEGMENTS_HINT = ", or give the segmentation (.seg.nrrd) if this file is the CT or a label map of it"
"""Added where a file without the named segments holds more than the message lists."""


def read_segment_names(path: str | os.PathLike) -> list[str]:
    """Names of the segments in a ``.seg.nrrd``."""
    _, node = _read_node(path)
    return segment_names(node)


def read_segment_masks(
    path: str | os.PathLike, names: list[str], geometry: VolumeGeometry
) -> dict[str, np.ndarray]:
    """The named segments of a ``.seg.nrrd`` as boolean masks on the CT grid ``geometry``."""
    _, node = _read_node(path)
    present = segment_names(node)
    missing = [name for name in names if name not in present]
    if missing:
        raise CementLeakageError(
            f"{Path(path).name} has no segment named {', '.join(repr(n) for n in missing)} "
            f"({len(present)} segments: {listed_names(present)}): "
            "name them with --body-segment and --cement-segment"
            + (MANY_SEGMENTS_HINT if len(present) > LISTED_NAMES_MAX else "")
        )
    masks = {name: segment_mask(node, name, geometry) for name in names}
    for name, mask in masks.items():
        held = 0 if mask.any() else segment_voxel_count(node, name)
        if held:
            raise CementLeakageError(
                f"segment {name!r} of {Path(path).name} holds {held} voxels, none of them inside this CT: "
                "the segmentation was drawn on another scan or grid; give the CT it was made on"
            )
    return masks


def read_segment_metadata(path: str | os.PathLike, name: str) -> dict[str, str]:
    """The ``CementLeakage.*`` tags of one segment of a ``.seg.nrrd``."""
    _, node = _read_node(path)
    result = {}
    for key in ("level", "side", "input_sha256", "input_source", "software_version"):
        value = segment_tag(node, name, f"{METADATA_TAG_PREFIX}{key}")
        if value is not None:
            result[key] = value
    return result


def read_segmentation_geometry(path: str | os.PathLike) -> VolumeGeometry:
    """The grid a ``.seg.nrrd`` was drawn on (its reference image geometry, IJK-to-RAS mm).

    Segments written by this package or by Slicer for a CT carry that CT's grid, so masks read
    onto it keep their voxel counts exactly.
    """
    _, node = _read_node(path)
    serialized = node.GetSegmentation().GetConversionParameter("Reference image geometry")
    image = slicer.vtkOrientedImageData()
    if not serialized or not slicer.vtkSegmentationConverter.DeserializeImageGeometry(
        serialized, image, False
    ):
        raise CementLeakageError(
            f"{Path(path).name} records no reference image geometry: measure it against its CT instead"
        )
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    ijk_to_ras = numpy_matrix(matrix)
    extent = image.GetExtent()
    ijk_to_ras[:, 3] = ijk_to_ras @ np.array([extent[0], extent[2], extent[4], 1.0])
    shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    return VolumeGeometry(ijk_to_ras, shape)


def read_segment_provenance(
    path: str | os.PathLike, names: list[str], geometry: VolumeGeometry
) -> dict[str, dict]:
    """Where the named segments of a ``.seg.nrrd`` came from, read in one pass (see
    :func:`mrml_nodes.segment_provenance`), keyed by name."""
    _, node = _read_node(path)
    return {name: segment_provenance(node, name, geometry) for name in names}
