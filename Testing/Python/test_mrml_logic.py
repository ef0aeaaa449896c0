"""The MRML side on real slicer-core: volume and markups nodes, segments, files and the logic.

Nothing here is mocked: the nodes, the segmentation storage and the markups storage are
Slicer's own classes from the ``slicer-core`` wheel.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pydicom
import pytest
import slicer
from test_unseen_endplates import FAINT_SHALLOW_DISHES

from CementLeakageLib.dicom_series import write_ct_series
from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.image_io import slice_thickness_of_dicom_file
from CementLeakageLib.logic import RESULT_COLUMNS, CementLeakageLogic
from CementLeakageLib.markups_files import read_endplate_markups_file, write_endplate_markups_file
from CementLeakageLib.measurement import measure_masks
from CementLeakageLib.mrml_nodes import (
    DICOM_INSTANCE_UIDS_ATTRIBUTE,
    SLICE_THICKNESS_ATTRIBUTE,
    add_endplate_markups,
    add_volume_node,
    ct_from_volume_node,
    endplate_points,
    oriented_image_from_mask,
    segment_mask,
    segment_names,
    segment_was_edited,
    set_segment_mask,
    volume_node_identity,
)
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.pipeline import measure_vertebra
from CementLeakageLib.segmentation_files import (
    read_segment_masks,
    read_segment_metadata,
    read_segment_names,
    write_segmentation_file,
)
from CementLeakageLib.segments import BODY, CEMENT, SEGMENT_COLORS_RGB


@pytest.fixture
def scene():
    scene = slicer.vtkMRMLScene()
    scene.AddNode(slicer.vtkMRMLSelectionNode())
    return scene


@pytest.fixture(scope="module", params=["axial", "oblique", "flipped"])
def phantom(request):
    return make_phantom(PhantomSpec(orientation=request.param, spacing_mm=(1.0, 1.0, 1.0)))


def test_volume_node_keeps_array_and_ijk_to_ras(scene, phantom):
    node = add_volume_node(scene, phantom.ct, "CT")
    back = ct_from_volume_node(node)
    assert np.array_equal(back.array_hu, phantom.ct.array_hu)
    assert np.allclose(back.geometry.ijk_to_ras, phantom.ct.geometry.ijk_to_ras, atol=1e-9)


def test_volume_node_keeps_the_slice_thickness(scene):
    thick = make_phantom(PhantomSpec(spacing_mm=(0.7, 0.7, 2.0), n_vertebrae=1)).ct
    node = add_volume_node(scene, thick, "CT")
    assert ct_from_volume_node(node).slice_thickness_mm == thick.slice_thickness_mm
    node.SetAttribute(SLICE_THICKNESS_ATTRIBUTE, "")
    assert ct_from_volume_node(node).slice_thickness_mm is None
    node.SetAttribute(SLICE_THICKNESS_ATTRIBUTE, "0")
    with pytest.raises(CementLeakageError, match="slice thickness of '0'"):
        ct_from_volume_node(node)


def _as_loaded_from_dicom(scene, ct, folder):
    """``ct`` written as a DICOM series into ``folder``, and a volume node holding its voxels as
    Slicer's DICOM import leaves one: no slice thickness of its own, the files' SOP Instance
    UIDs in ``DICOM.instanceUIDs``. Also returns the files by SOP Instance UID."""
    paths = write_ct_series(folder, ct)
    files = {str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID): str(path) for path in paths}
    node = add_volume_node(scene, replace(ct, slice_thickness_mm=None), "CT from DICOM")
    node.SetAttribute(DICOM_INSTANCE_UIDS_ATTRIBUTE, " ".join(files))
    return node, files


def test_a_volume_loaded_from_dicom_takes_the_slice_thickness_its_files_state(scene, tmp_path):
    thick = make_phantom(PhantomSpec(spacing_mm=(0.7, 0.7, 2.0), n_vertebrae=1)).ct
    ct = replace(thick, slice_thickness_mm=1.0)
    node, files = _as_loaded_from_dicom(scene, ct, tmp_path / "series")

    def instance_file(uid: str) -> str:
        return files.get(uid, "")

    assert ct_from_volume_node(node).slice_thickness_mm is None  # no database: the spacing
    assert ct_from_volume_node(node, instance_file).slice_thickness_mm == 1.0
    assert volume_node_identity(node, instance_file)["slice_thickness_mm"] == 1.0  # the export's record
    # Slicer lists "Unknown" for a file without a UID; the first file found gives the thickness.
    node.SetAttribute(DICOM_INSTANCE_UIDS_ATTRIBUTE, "Unknown 1.2.3.4 " + " ".join(files))
    assert ct_from_volume_node(node, instance_file).slice_thickness_mm == 1.0
    # The volume's own attribute comes first.
    node.SetAttribute(SLICE_THICKNESS_ATTRIBUTE, "1.5")
    assert ct_from_volume_node(node, instance_file).slice_thickness_mm == 1.5
    node.SetAttribute(SLICE_THICKNESS_ATTRIBUTE, "")
    # Instances the database does not hold, or whose file is gone: the spacing.
    node.SetAttribute(DICOM_INSTANCE_UIDS_ATTRIBUTE, "1.2.3.4")
    assert ct_from_volume_node(node, instance_file).slice_thickness_mm is None
    assert ct_from_volume_node(node, lambda uid: str(tmp_path / "gone.dcm")).slice_thickness_mm is None


def test_the_logic_measures_a_ct_loaded_from_dicom_with_its_files_slice_thickness(scene, tmp_path):
    # The faint biconcave T6 on 2 mm slices whose CT states a profile about 1 mm thick
    # (test_slice_phase): measured as the library measures it with the SliceThickness written into
    # its DICOM files (rel 1e-12), VBV within 4% of the truth; without them, taken as 2 mm, -5.5%.
    phantom = make_phantom(PhantomSpec.for_level(**FAINT_SHALLOW_DISHES))
    truth = phantom.truth
    node, files = _as_loaded_from_dicom(scene, phantom.ct, tmp_path / "series")
    markups = add_endplate_markups(scene, truth.upper_ras, truth.lower_ras, truth.level)
    stated_mm = slice_thickness_of_dicom_file(next(iter(files.values())))
    assert stated_mm == pytest.approx(phantom.ct.slice_thickness_mm, rel=1e-6)
    stated = replace(phantom.ct, slice_thickness_mm=stated_mm)
    library = measure_vertebra(stated, truth.upper_ras, truth.lower_ras, truth.side, level=truth.level)
    vbv_pct = {}
    for name, instance_file in (("database", lambda uid: files.get(uid, "")), ("none", None)):
        segmentation = slicer.vtkMRMLSegmentationNode()
        scene.AddNode(segmentation)
        logic = CementLeakageLogic(scene, dicom_instance_file=instance_file)
        measured = logic.segment_and_measure(node, markups, segmentation, level=truth.level, side=truth.side)
        vbv_pct[name] = 100.0 * (measured.vbv_cm3 / truth.vbv_cm3 - 1.0)
        if instance_file is not None:
            assert measured.vbv_cm3 == pytest.approx(library.measurement.vbv_cm3, rel=1e-12)
            assert measured.psbcv_vbv_pct == pytest.approx(library.measurement.psbcv_vbv_pct, rel=1e-12)
    assert abs(vbv_pct["database"]) <= 4.0
    assert vbv_pct["none"] < -4.0


def test_segments_round_trip_voxel_for_voxel_and_overlap(scene, phantom):
    """Overlapping segments (cement inside the body) both keep every voxel."""
    volume = add_volume_node(scene, phantom.ct, "CT")
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    set_segment_mask(segmentation, BODY, phantom.body_mask, volume, SEGMENT_COLORS_RGB[BODY])
    set_segment_mask(segmentation, CEMENT, phantom.cement_in_body_mask, volume, SEGMENT_COLORS_RGB[CEMENT])
    assert segment_names(segmentation) == [BODY, CEMENT]
    assert np.array_equal(segment_mask(segmentation, BODY, volume), phantom.body_mask)
    assert np.array_equal(segment_mask(segmentation, CEMENT, volume), phantom.cement_in_body_mask)
    assert not segment_was_edited(segmentation, BODY, volume)


def test_segment_on_a_cropped_labelmap_is_placed_by_its_extent(scene):
    phantom = make_phantom(PhantomSpec(spacing_mm=(1.0, 1.0, 1.0)))
    geometry = phantom.ct.geometry
    k, j, i = np.nonzero(phantom.body_mask)
    box = (slice(k.min(), k.max() + 1), slice(j.min(), j.max() + 1), slice(i.min(), i.max() + 1))

    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    set_segment_mask(segmentation, BODY, phantom.body_mask[box], geometry.cropped(box), (1, 1, 0))
    assert np.array_equal(segment_mask(segmentation, BODY, geometry), phantom.body_mask)


def test_missing_segment_is_named_with_the_ones_present(scene, phantom):
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    set_segment_mask(segmentation, "Bone", phantom.body_mask, phantom.ct.geometry, (1, 1, 1))
    with pytest.raises(CementLeakageError, match="'Vertebral body'.*'Bone'"):
        segment_mask(segmentation, BODY, phantom.ct.geometry)


def test_seg_nrrd_round_trip_keeps_masks_names_colours_and_identity(tmp_path, phantom):
    masks = {
        BODY: phantom.body_mask,
        CEMENT: phantom.cement_in_body_mask | phantom.extravertebral_cement_mask,
    }
    path = tmp_path / "L1.seg.nrrd"
    write_segmentation_file(path, masks, phantom.ct.geometry, {"level": "L1", "input_sha256": "ab" * 32})
    assert read_segment_names(path) == [BODY, CEMENT]
    back = read_segment_masks(path, [BODY, CEMENT], phantom.ct.geometry)
    for name in masks:
        assert np.array_equal(back[name], masks[name]), name
    assert read_segment_metadata(path, BODY) == {"level": "L1", "input_sha256": "ab" * 32}
    scene = slicer.vtkMRMLScene()
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    segment = node.GetSegmentation().GetNthSegment(0)
    assert segment.GetColor() == pytest.approx(SEGMENT_COLORS_RGB[BODY], abs=1e-6)
    assert not list(tmp_path.glob(".tmp-*"))


def test_unreadable_segmentation_file_is_refused(tmp_path, phantom):
    path = tmp_path / "broken.seg.nrrd"
    path.write_text("not a segmentation\n")
    with pytest.raises(CementLeakageError, match="broken.seg.nrrd"):
        read_segment_masks(path, [BODY], phantom.ct.geometry)


def test_markups_file_round_trip_is_exact(tmp_path):
    upper, lower = np.array([12.25, -30.5, 61.125]), np.array([11.75, -33.0, 35.5])
    path = tmp_path / "L2.mrk.json"
    write_endplate_markups_file(path, upper, lower, "L2")
    read_upper, read_lower = read_endplate_markups_file(path, "L2")
    assert read_upper == pytest.approx(upper, abs=1e-6)
    assert read_lower == pytest.approx(lower, abs=1e-6)
    assert '"LPS"' in path.read_text(encoding="utf-8")  # Slicer's own file convention, read back as RAS


def test_endplate_points_by_label_or_height(scene):
    node = add_endplate_markups(scene, [1.0, 2.0, 40.0], [1.0, 3.0, 10.0], "T12")
    upper, lower = endplate_points(node, "T12")
    assert upper == pytest.approx([1.0, 2.0, 40.0]) and lower == pytest.approx([1.0, 3.0, 10.0])
    unlabelled = slicer.vtkMRMLMarkupsFiducialNode()
    scene.AddNode(unlabelled)
    unlabelled.AddControlPointWorld(_vector(0, 0, 5))
    unlabelled.AddControlPointWorld(_vector(0, 0, 35))
    upper, lower = endplate_points(unlabelled)
    assert upper[2] == 35.0 and lower[2] == 5.0


def _vector(r, a, s):
    import vtk

    return vtk.vtkVector3d(float(r), float(a), float(s))


@pytest.fixture(scope="module")
def axial_phantom():
    return make_phantom(PhantomSpec(level="L1", spacing_mm=(1.0, 1.0, 1.0)))


def test_logic_measures_given_segments_exactly_as_the_library(scene, axial_phantom):
    """Logic, pipeline API and measure_masks agree to 1e-9 cm³ on the same masks."""
    phantom = axial_phantom
    truth = phantom.truth
    volume = add_volume_node(scene, phantom.ct, "CT")
    markups = add_endplate_markups(scene, truth.upper_ras, truth.lower_ras, "L1")
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    cement = phantom.cement_in_body_mask | phantom.extravertebral_cement_mask
    set_segment_mask(segmentation, "My body", phantom.body_mask, volume, (1, 1, 0))
    set_segment_mask(segmentation, "My cement", cement, volume, (0, 0, 1))
    logic = CementLeakageLogic(scene)
    measured = logic.measure_segments(
        volume,
        markups,
        segmentation,
        level="L1",
        side="left",
        body_segment="My body",
        cement_segment="My cement",
    )
    api = measure_vertebra(
        phantom.ct, truth.upper_ras, truth.lower_ras, "left", body_mask=phantom.body_mask, cement_mask=cement
    ).measurement
    direct = measure_masks(
        phantom.body_mask, cement, phantom.ct.geometry, truth.upper_ras, truth.lower_ras, "left"
    )
    voxel_cm3 = phantom.ct.geometry.voxel_volume_mm3 / 1000
    assert measured.vbv_cm3 == pytest.approx(np.count_nonzero(phantom.body_mask) * voxel_cm3, abs=1e-9)
    for key in ("vbv_cm3", "bcv_cm3", "psbcv_cm3", "psbcv_vbv_pct", "extravertebral_cement_cm3"):
        assert getattr(measured, key) == pytest.approx(getattr(api, key), abs=1e-9)
        assert getattr(measured, key) == pytest.approx(getattr(direct, key), abs=1e-9)
    table = logic.results_table_node()
    assert table.GetNumberOfRows() == 1
    headers = [header for header, _ in RESULT_COLUMNS]
    assert table.GetCellText(0, headers.index("PSBCV (cm3)")) == f"{measured.psbcv_cm3:.3f}"
    assert table.GetCellText(0, headers.index("Above cut-off")) == (
        "yes" if measured.exceeds_cutoff else "no"
    )
    assert table.GetCellText(0, headers.index("Near cut-off")) == ("yes" if measured.near_cutoff else "no")
    # Measured from the segments as they are: no blur was measured to size the cement.
    assert measured.ct_blur_sigma_mm is None
    assert table.GetCellText(0, headers.index("CT blur (mm)")) == ""
    # The points' distances from the body's centre line, upper / lower (mm, towards the puncture
    # side): the phantom's points lie on it.
    upper_off, lower_off = measured.points_off_centre_mm
    assert abs(upper_off) < 0.1 and abs(lower_off) < 0.1
    assert table.GetCellText(0, headers.index("Points off centre line (mm)")) == (
        f"{upper_off:+.2f} / {lower_off:+.2f}"
    )


def test_logic_segments_protects_edits_and_overwrites_on_request(scene, axial_phantom):
    phantom = axial_phantom
    truth = phantom.truth
    volume = add_volume_node(scene, phantom.ct, "CT")
    markups = add_endplate_markups(scene, truth.upper_ras, truth.lower_ras, "L1")
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    logic = CementLeakageLogic(scene)
    measured = logic.segment_and_measure(volume, markups, segmentation, level="L1", side="left")
    assert segment_names(segmentation) == [
        "L1 Vertebral body",
        "L1 Cement",
        "L1 Puncture-side cement",
        "L1 Extravertebral cement",
    ]
    result = measure_vertebra(phantom.ct, truth.upper_ras, truth.lower_ras, "left", level="L1")
    for name, mask in result.masks_by_segment_name().items():
        assert np.array_equal(segment_mask(segmentation, f"L1 {name}", volume), mask), name
    assert measured.vbv_cm3 == pytest.approx(result.measurement.vbv_cm3, abs=1e-12)
    assert measured.vbv_cm3 == pytest.approx(truth.vbv_cm3, rel=0.03)

    # The user erases part of the body, as Segment Editor does: the labelmap changes, the tags do not.
    edited = segment_mask(segmentation, "L1 Vertebral body", volume)
    edited[: edited.shape[0] // 2] = False
    body_id = segmentation.GetSegmentation().GetSegmentIdBySegmentName("L1 Vertebral body")
    image = oriented_image_from_mask(edited, phantom.ct.geometry)
    modes = slicer.vtkSlicerSegmentationsModuleLogic
    assert modes.SetBinaryLabelmapToSegment(
        image, segmentation, body_id, modes.MODE_REPLACE, image.GetExtent()
    )
    assert segment_was_edited(segmentation, "L1 Vertebral body", volume)
    with pytest.raises(CementLeakageError, match="L1 Vertebral body.*edited"):
        logic.segment_and_measure(volume, markups, segmentation, level="L1", side="left")
    assert np.array_equal(segment_mask(segmentation, "L1 Vertebral body", volume), edited)
    again = logic.segment_and_measure(volume, markups, segmentation, level="L1", side="left", overwrite=True)
    assert again.vbv_cm3 == pytest.approx(measured.vbv_cm3, abs=1e-12)
    assert logic.results_table_node().GetNumberOfRows() == 1
