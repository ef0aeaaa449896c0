"""Thin adapters between the library's arrays and Slicer's MRML nodes.

Everything here takes the scene or node explicitly, so it runs the same in desktop Slicer
and on ``slicer-core``. Masks are boolean ``[k, j, i]`` arrays on a :class:`VolumeGeometry`
(IJK-to-RAS, mm); markups positions are RAS mm (world coordinates).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from .ct_volume import CtVolume, positive_mm
from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .image_io import sha256_of_files, slice_thickness_of_dicom_file
from .segments import listed_names
from .sitk_bridge import resample_onto, to_sitk

MASK_SHA256_TAG = "CementLeakage.MaskSHA256"
"""Segment tag: SHA-256 of the mask as the package wrote it (a different mask was edited)."""
SOURCE_TAG = "CementLeakage.Source"
BINARY_LABELMAP = "Binary labelmap"


def ensure_segmentation_converters() -> None:
    """Register Slicer's segmentation representation converters if nothing has yet.

    Desktop Slicer registers them when its Segmentations module starts; a bare
    ``slicer-core`` process has none, and segments could not hold a labelmap without them.
    """
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    if factory.GetConverterRules():
        return
    for rule in (
        slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule,
        slicer.vtkClosedSurfaceToBinaryLabelmapConversionRule,
        slicer.vtkClosedSurfaceToFractionalLabelmapConversionRule,
        slicer.vtkFractionalLabelmapToClosedSurfaceConversionRule,
    ):
        factory.RegisterConverterRule(rule())


def vtk_matrix(matrix: np.ndarray) -> vtk.vtkMatrix4x4:
    """A vtkMatrix4x4 holding a 4x4 numpy matrix."""
    result = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            result.SetElement(row, column, float(matrix[row, column]))
    return result


def numpy_matrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    """A 4x4 numpy matrix from a vtkMatrix4x4."""
    return np.array([[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def mask_sha256(mask: np.ndarray) -> str:
    """SHA-256 (hex) of a boolean mask's voxels and shape, independent of its dtype."""
    packed = np.packbits(np.asarray(mask, dtype=bool).ravel())
    return hashlib.sha256(str(np.shape(mask)).encode() + packed.tobytes()).hexdigest()


def _image_data(array: np.ndarray, image: vtk.vtkImageData) -> vtk.vtkImageData:
    nk, nj, ni = array.shape
    image.SetDimensions(ni, nj, nk)
    flat = np.ascontiguousarray(array).reshape(-1)
    scalars = numpy_support.numpy_to_vtk(flat, deep=True)
    scalars.SetName("ImageScalars")
    image.GetPointData().SetScalars(scalars)
    return image


def _array_of(image: vtk.vtkImageData) -> np.ndarray:
    extent = image.GetExtent()
    shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    if min(shape) <= 0 or image.GetPointData().GetScalars() is None:
        return np.zeros((0, 0, 0))
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(shape).copy()


def add_volume_node(scene, ct: CtVolume, name: str):
    """Add ``ct`` to ``scene`` as a vtkMRMLScalarVolumeNode (IJK-to-RAS from its geometry)."""
    node = slicer.vtkMRMLScalarVolumeNode()
    node.SetName(name)
    scene.AddNode(node)
    node.SetAndObserveImageData(_image_data(np.asarray(ct.array_hu), vtk.vtkImageData()))
    node.SetIJKToRASMatrix(vtk_matrix(ct.geometry.ijk_to_ras))
    node.CreateDefaultDisplayNodes()
    if ct.sha256:
        node.SetAttribute("CementLeakage.InputSHA256", ct.sha256)
    if ct.slice_thickness_mm is not None:
        node.SetAttribute(SLICE_THICKNESS_ATTRIBUTE, repr(float(ct.slice_thickness_mm)))
    return node


SLICE_THICKNESS_ATTRIBUTE = "CementLeakage.SliceThicknessMm"
"""Volume node attribute with the CT's slice thickness (mm) when it differs from the spacing
(:attr:`~.ct_volume.CtVolume.slice_thickness_mm`); absent: taken as the spacing."""


DICOM_INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"
"""Volume node attribute in which Slicer's DICOM import lists the SOP Instance UIDs of the files
it loaded, space-separated (``Unknown`` for a file without one)."""

InstanceFile = Callable[[str], str]
"""The path of the file of a SOP Instance UID, '' when unknown: in Slicer,
``slicer.dicomDatabase.fileForInstance``."""


def slice_thickness_of_volume_node(volume_node, instance_file: InstanceFile | None = None) -> float | None:
    """The slice thickness (mm) of a volume node: the one it states in
    ``SLICE_THICKNESS_ATTRIBUTE``; without it, the SliceThickness of the DICOM files it was loaded
    from, found by ``instance_file`` (:func:`dicom_slice_thickness_mm`); None when neither says.

    Raises :class:`CementLeakageError` when the attribute is not a positive number."""
    text = volume_node.GetAttribute(SLICE_THICKNESS_ATTRIBUTE)
    if not text:
        return None if instance_file is None else dicom_slice_thickness_mm(volume_node, instance_file)
    value = positive_mm(text)
    if value is None:
        raise CementLeakageError(
            f"volume {volume_node.GetName()} states a slice thickness of {text!r} "
            f"({SLICE_THICKNESS_ATTRIBUTE}): set it to the thickness in mm or remove it"
        )
    return value


def dicom_slice_thickness_mm(volume_node, instance_file: InstanceFile) -> float | None:
    """SliceThickness (mm) of the first DICOM file a volume node was loaded from
    (``DICOM_INSTANCE_UIDS_ATTRIBUTE``) that ``instance_file`` finds; None when the node lists no
    instance, none of their files is found, or that file states none."""
    for uid in (volume_node.GetAttribute(DICOM_INSTANCE_UIDS_ATTRIBUTE) or "").split():
        path = instance_file(uid) if uid != "Unknown" else ""
        if path:
            return slice_thickness_of_dicom_file(path)
    return None


def geometry_of_volume_node(volume_node) -> VolumeGeometry:
    """The RAS geometry of a scalar volume node."""
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    image = volume_node.GetImageData()
    if image is None:
        raise CementLeakageError(f"volume {volume_node.GetName()} holds no image: load the CT first")
    ni, nj, nk = image.GetDimensions()
    return VolumeGeometry(numpy_matrix(matrix), (nk, nj, ni))


def ct_from_volume_node(volume_node, instance_file: InstanceFile | None = None) -> CtVolume:
    """The CT held by a scalar volume node: HU ``[k, j, i]`` (a copy) on its RAS geometry, with
    its slice thickness (:func:`slice_thickness_of_volume_node`, ``instance_file`` finding the
    files of a series loaded from DICOM)."""
    geometry = geometry_of_volume_node(volume_node)
    array = _array_of(volume_node.GetImageData())
    storage = volume_node.GetStorageNode()
    source = storage.GetFileName() if storage is not None and storage.GetFileName() else volume_node.GetName()
    sha256 = (
        volume_node.GetAttribute("CementLeakage.InputSHA256")
        or hashlib.sha256(geometry.ijk_to_ras.tobytes() + np.ascontiguousarray(array).tobytes()).hexdigest()
    )
    return CtVolume(
        array_hu=array,
        geometry=geometry,
        source=source,
        sha256=sha256,
        slice_thickness_mm=slice_thickness_of_volume_node(volume_node, instance_file),
    )


def _reference_geometry(reference) -> VolumeGeometry:
    return reference if isinstance(reference, VolumeGeometry) else geometry_of_volume_node(reference)


def oriented_image_from_mask(mask: np.ndarray, geometry: VolumeGeometry):
    """A vtkOrientedImageData (unsigned char, 0/1) holding ``mask`` on ``geometry``."""
    image = slicer.vtkOrientedImageData()
    _image_data(np.asarray(mask, dtype=np.uint8), image)
    image.SetImageToWorldMatrix(vtk_matrix(geometry.ijk_to_ras))
    return image


def mask_from_oriented_image(image, geometry: VolumeGeometry, label: int | None = None) -> np.ndarray:
    """Boolean ``[k, j, i]`` mask on ``geometry`` from an oriented image (non-zero, or ``label``).

    A labelmap on the same axes and spacing is placed voxel for voxel by its extent; any other
    grid is resampled (nearest neighbour) through both IJK-to-RAS matrices.
    """
    values = _array_of(image)
    result = np.zeros(geometry.shape, dtype=bool)
    if values.size == 0:
        return result
    inside = values == label if label is not None else values != 0
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    image_to_ras = numpy_matrix(matrix)
    extent = image.GetExtent()
    start_ijk = np.array([extent[0], extent[2], extent[4], 1.0])
    corner_ras = image_to_ras @ start_ijk
    if np.allclose(image_to_ras[:3, :3], geometry.ijk_to_ras[:3, :3], atol=1e-6):
        offset = geometry.ras_to_ijk @ corner_ras
        if np.allclose(offset[:3], np.round(offset[:3]), atol=1e-3):
            i0, j0, k0 = (int(v) for v in np.round(offset[:3]))
            nk, nj, ni = inside.shape
            target = [(k0, k0 + nk), (j0, j0 + nj), (i0, i0 + ni)]
            source_slices, target_slices = [], []
            for (low, high), size in zip(target, geometry.shape):
                clipped_low, clipped_high = max(low, 0), min(high, size)
                if clipped_high <= clipped_low:
                    return result
                source_slices.append(slice(clipped_low - low, clipped_high - low))
                target_slices.append(slice(clipped_low, clipped_high))
            result[tuple(target_slices)] = inside[tuple(source_slices)]
            return result
    source_matrix = image_to_ras.copy()
    source_matrix[:, 3] = corner_ras
    source = VolumeGeometry(source_matrix, inside.shape)
    resampled = resample_onto(
        to_sitk(inside.astype(np.uint8), source), geometry, linear=False, default_value=0
    )
    return resampled > 0


def segment_names(segmentation_node) -> list[str]:
    """Names of the segments in a segmentation node, in order."""
    segmentation = segmentation_node.GetSegmentation()
    return [
        segmentation.GetNthSegment(index).GetName() for index in range(segmentation.GetNumberOfSegments())
    ]


def segment_id_by_name(segmentation_node, name: str) -> str | None:
    """The ID of the segment called ``name`` (None if absent)."""
    segmentation = segmentation_node.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        if segmentation.GetNthSegment(index).GetName() == name:
            return segmentation.GetNthSegmentID(index)
    return None


def segment_voxel_count(segmentation_node, segment_name: str) -> int:
    """How many voxels the segment ``segment_name`` holds on its own labelmap, whatever grid that
    is (0 for a segment that is empty or absent)."""
    ensure_segmentation_converters()
    segment_id = segment_id_by_name(segmentation_node, segment_name)
    if segment_id is None:
        return 0
    image = slicer.vtkOrientedImageData()
    segmentation_node.GetBinaryLabelmapRepresentation(segment_id, image)
    return int(np.count_nonzero(_array_of(image)))


def segment_mask(segmentation_node, segment_name: str, reference) -> np.ndarray:
    """The segment ``segment_name`` as a boolean ``[k, j, i]`` mask on the reference grid.

    ``reference`` is a :class:`VolumeGeometry` or a scalar volume node (the CT).
    """
    ensure_segmentation_converters()
    geometry = _reference_geometry(reference)
    segment_id = segment_id_by_name(segmentation_node, segment_name)
    if segment_id is None:
        present = segment_names(segmentation_node)
        raise CementLeakageError(
            f"the segmentation has no segment named {segment_name!r} "
            f"({len(present)} segments: {listed_names(present)}): "
            "choose the segment that holds it"
        )
    image = slicer.vtkOrientedImageData()
    segmentation_node.GetBinaryLabelmapRepresentation(segment_id, image)
    return mask_from_oriented_image(image, geometry)


def segment_tag(segmentation_node, segment_name: str, tag: str) -> str | None:
    """A segment's tag value (None when the segment or the tag is absent)."""
    segment_id = segment_id_by_name(segmentation_node, segment_name)
    if segment_id is None:
        return None
    value = vtk.reference("")
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    return str(value) if segment.GetTag(tag, value) else None


def set_segment_mask(
    segmentation_node,
    segment_name: str,
    mask: np.ndarray,
    reference,
    color: tuple[float, float, float],
    tags: dict[str, str] | None = None,
) -> str:
    """Create or replace the segment ``segment_name`` with ``mask`` (boolean ``[k, j, i]``).

    The segmentation's reference geometry is set from ``reference`` (CT geometry or volume
    node) so volumes are counted on the CT grid; the segment keeps its own labelmap, so
    overlapping segments (cement inside the body) keep all their voxels. The segment is
    tagged with the mask's SHA-256 (see :func:`segment_was_edited`) and ``tags``.
    """
    ensure_segmentation_converters()
    geometry = _reference_geometry(reference)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != geometry.shape:
        raise CementLeakageError(f"mask shape {mask.shape} does not match the CT grid {geometry.shape}")
    if isinstance(reference, VolumeGeometry):
        set_reference_geometry(segmentation_node, geometry)
    else:
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    segmentation = segmentation_node.GetSegmentation()
    segment_id = segment_id_by_name(segmentation_node, segment_name)
    if segment_id is None:
        segment_id = segmentation.AddEmptySegment("", segment_name, [float(c) for c in color])
    segment = segmentation.GetSegment(segment_id)
    segment.SetColor(*[float(c) for c in color])
    segment.SetNameAutoGenerated(False)
    segment.SetColorAutoGenerated(False)
    image = oriented_image_from_mask(mask, geometry)
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    if not logic.SetBinaryLabelmapToSegment(
        image, segmentation_node, segment_id, logic.MODE_REPLACE, image.GetExtent(), False
    ):
        raise CementLeakageError(f"segment {segment_name!r} could not be written into the segmentation")
    segment.SetTag(MASK_SHA256_TAG, mask_sha256(mask))
    for key, value in (tags or {}).items():
        segment.SetTag(key, str(value))
    return segment_id


def set_reference_geometry(segmentation_node, geometry: VolumeGeometry) -> None:
    """Record ``geometry`` (the CT grid) as the segmentation's reference image geometry.

    Slicer keeps it in the ``.seg.nrrd``; segments are then counted on the CT's grid.
    """
    image = slicer.vtkOrientedImageData()
    nk, nj, ni = geometry.shape
    image.SetExtent(0, ni - 1, 0, nj - 1, 0, nk - 1)
    image.SetImageToWorldMatrix(vtk_matrix(geometry.ijk_to_ras))
    converter = slicer.vtkSegmentationConverter
    segmentation_node.GetSegmentation().SetConversionParameter(
        converter.GetReferenceImageGeometryParameterName(), converter.SerializeImageGeometry(image)
    )


def segment_was_edited(segmentation_node, segment_name: str, reference) -> bool:
    """Whether a segment exists and differs from what the package wrote (or was drawn by hand)."""
    if segment_id_by_name(segmentation_node, segment_name) is None:
        return False
    written = segment_tag(segmentation_node, segment_name, MASK_SHA256_TAG)
    if written is None:
        return True
    return mask_sha256(segment_mask(segmentation_node, segment_name, reference)) != written


def segment_provenance(segmentation_node, segment_name: str, reference) -> dict:
    """Where a segment came from: ``source`` (its ``CementLeakage.Source`` tag, ``hand`` when it
    has none or is missing) and ``edited_by_hand`` (see :func:`segment_was_edited`)."""
    present = (
        segmentation_node is not None and segment_id_by_name(segmentation_node, segment_name) is not None
    )
    return {
        "source": (segment_tag(segmentation_node, segment_name, SOURCE_TAG) if present else None) or "hand",
        "edited_by_hand": bool(present and segment_was_edited(segmentation_node, segment_name, reference)),
    }


def endplate_labels(level: str) -> tuple[str, str]:
    """Control point labels of a level's endplate midpoints."""
    prefix = f"{level} " if level else ""
    return f"{prefix}upper endplate midpoint", f"{prefix}lower endplate midpoint"


def add_endplate_markups(scene, upper_ras, lower_ras, level: str):
    """A point list node holding a level's two endplate midpoints (RAS mm), labelled for the level."""
    node = slicer.vtkMRMLMarkupsFiducialNode()
    node.SetName(f"{level} endplate midpoints" if level else "Endplate midpoints")
    scene.AddNode(node)
    node.CreateDefaultDisplayNodes()
    for label, point in zip(endplate_labels(level), (upper_ras, lower_ras)):
        index = node.AddControlPoint(vtk.vtkVector3d(*[float(v) for v in point]), label)
        node.SetNthControlPointLabel(index, label)
    return node


def endplate_points(markups_node, level: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The upper and lower endplate midpoints (RAS mm, world) from a point list node.

    Points are found by their labels (``<level> upper/lower endplate midpoint``); a list of
    exactly two unlabelled points gives the higher one (larger S) as the upper.
    """
    if markups_node is None:
        raise CementLeakageError("no endplate points: place the upper and lower endplate midpoints")
    count = markups_node.GetNumberOfControlPoints()
    positions = {}
    for index in range(count):
        point = [0.0, 0.0, 0.0]
        markups_node.GetNthControlPointPositionWorld(index, point)
        positions.setdefault(markups_node.GetNthControlPointLabel(index), []).append(np.array(point))
    wanted = endplate_labels(level or "")
    found = [positions.get(label, []) for label in wanted]
    if all(len(points) == 1 for points in found):
        return found[0][0], found[1][0]
    if any(len(points) > 1 for points in found):
        raise CementLeakageError(
            f"several control points are labelled {wanted[0]!r} or {wanted[1]!r}: keep one of each"
        )
    if count == 2:
        first, second = (np.array(p) for p in (points[0] for points in positions.values()))
        if len(positions) == 1:
            first, second = positions[next(iter(positions))]
        return (first, second) if first[2] >= second[2] else (second, first)
    raise CementLeakageError(
        f"expected the two endplate midpoints ({wanted[0]!r}, {wanted[1]!r}) in {markups_node.GetName()}, "
        f"found {count} point(s): place both points"
    )


ENDPLATE_POINTS_ROLE = "endplate midpoints"
ROLE_ATTRIBUTE = "CementLeakage.Role"
LEVEL_ATTRIBUTE = "CementLeakage.Level"


def endplate_points_node(scene, level: str, create: bool = True):
    """The point list holding ``level``'s two endplate midpoints, created empty if asked.

    The node is found by its attributes (role and level), so the user may rename it. A new
    node is named ``<level> endplate midpoints`` and accepts at most two points.
    """
    nodes = scene.GetNodesByClass("vtkMRMLMarkupsFiducialNode")
    for index in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(index)
        if (
            node.GetAttribute(ROLE_ATTRIBUTE) == ENDPLATE_POINTS_ROLE
            and node.GetAttribute(LEVEL_ATTRIBUTE) == level
        ):
            return node
    if not create:
        return None
    node = slicer.vtkMRMLMarkupsFiducialNode()
    node.SetName(f"{level} endplate midpoints" if level else "Endplate midpoints")
    node.SetAttribute(ROLE_ATTRIBUTE, ENDPLATE_POINTS_ROLE)
    node.SetAttribute(LEVEL_ATTRIBUTE, level)
    node.SetMaximumNumberOfControlPoints(2)
    scene.AddNode(node)
    node.CreateDefaultDisplayNodes()
    return node


def label_endplate_points(markups_node, level: str) -> list[str]:
    """Name a level's endplate points as they are placed: first the upper, then the lower.

    A point already labelled as one of the level's endplates keeps its label; the others get
    the label still free, in placing order. Returns the labels of all points, in order.
    """
    wanted = list(endplate_labels(level))
    count = markups_node.GetNumberOfControlPoints()
    labels = [markups_node.GetNthControlPointLabel(index) for index in range(count)]
    free = [label for label in wanted if label not in labels]
    for index, label in enumerate(labels):
        if label not in wanted and free:
            labels[index] = free.pop(0)
            markups_node.SetNthControlPointLabel(index, labels[index])
    return labels


def volume_node_identity(volume_node, instance_file: InstanceFile | None = None) -> dict:
    """What identifies the measured CT: its file and SHA-256 when it has one, DICOM UIDs if
    Slicer loaded it from DICOM, always the SHA-256 of its voxel values (HU) and geometry, and the
    slice thickness it is measured with (mm, :func:`slice_thickness_of_volume_node`; None: taken
    as the spacing)."""
    identity: dict = {"volume_name": volume_node.GetName()}
    storage = volume_node.GetStorageNode()
    file_name = storage.GetFileName() if storage is not None else None
    if file_name:
        path = Path(file_name)
        identity["file_name"] = path.name
        if path.is_file():
            identity["file_sha256"] = sha256_of_files([path])
    instance_uids = volume_node.GetAttribute(DICOM_INSTANCE_UIDS_ATTRIBUTE)
    if instance_uids:
        identity["dicom_instance_uids"] = instance_uids.split()
    ct = ct_from_volume_node(volume_node, instance_file)
    digest = hashlib.sha256(np.ascontiguousarray(ct.array_hu).tobytes())
    digest.update(np.asarray(ct.geometry.ijk_to_ras, dtype=float).tobytes())
    identity["voxels_sha256"] = digest.hexdigest()
    identity["slice_thickness_mm"] = ct.slice_thickness_mm
    return identity
