"""What the module panel does, through the logic, on real slicer-core nodes.

The panel is a thin shell: it places the endplate points, shows the split plane, sets up the
Segment Editor presets, re-measures when a point moves or a segment changes, and exports the
case. Each of those is a logic call tested here against an independent truth (the library's
plane, exact voxel counts, the files read back).
"""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest
import slicer
import vtk

from CementLeakageLib.case_export import RESULTS_CSV, RESULTS_JSON, SEGMENTATION_FILE, write_case_bundle
from CementLeakageLib.cement_segmentation import threshold_cement
from CementLeakageLib.editor_presets import editor_presets, store_preset, stored_parameters
from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.image_io import write_volume
from CementLeakageLib.logic import CementLeakageLogic
from CementLeakageLib.markups_files import read_endplate_markups_file
from CementLeakageLib.measurement import measure_masks, puncture_side_voxels
from CementLeakageLib.mrml_nodes import (
    add_endplate_markups,
    add_volume_node,
    endplate_labels,
    endplate_points,
    endplate_points_node,
    label_endplate_points,
    mask_sha256,
    oriented_image_from_mask,
    segment_mask,
    segment_names,
)
from CementLeakageLib.parameters import MeasurementParameters
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.segmentation_files import read_segment_masks
from CementLeakageLib.segments import BODY, CEMENT, PUNCTURE_SIDE_CEMENT
from CementLeakageLib.split_plane import split_plane_from_endplates
from CementLeakageLib.split_plane_node import (
    find_split_plane_node,
    split_plane_of_node,
    update_split_plane_node,
)


@pytest.fixture
def scene():
    scene = slicer.vtkMRMLScene()
    scene.AddNode(slicer.vtkMRMLSelectionNode())
    return scene


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(PhantomSpec(level="L1", side="left", spacing_mm=(1.0, 1.0, 1.0)))


def edit_by_hand(segmentation, name: str, mask: np.ndarray, geometry) -> None:
    """Replace a segment's labelmap as Segment Editor does: the labelmap changes, the tags do not."""
    segment_id = segmentation.GetSegmentation().GetSegmentIdBySegmentName(name)
    image = oriented_image_from_mask(mask, geometry)
    modes = slicer.vtkSlicerSegmentationsModuleLogic
    assert modes.SetBinaryLabelmapToSegment(
        image, segmentation, segment_id, modes.MODE_REPLACE, image.GetExtent()
    )


@pytest.fixture
def measured_case(scene, phantom):
    """A phantom CT segmented and measured by the logic, as after the panel's Segment button."""
    volume = add_volume_node(scene, phantom.ct, "CT")
    markups = add_endplate_markups(scene, phantom.truth.upper_ras, phantom.truth.lower_ras, "L1")
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    logic = CementLeakageLogic(scene)
    measurement = logic.segment_and_measure(volume, markups, segmentation, level="L1", side="left")
    return logic, volume, markups, segmentation, measurement


# The split plane shown in the views


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize(
    "upper, lower",
    [([0.0, 0.0, 20.0], [0.0, 0.0, -10.0]), ([4.0, -3.0, 22.0], [-2.0, 5.0, -9.0])],
)
def test_split_plane_node_is_the_measured_plane(scene, side, upper, lower):
    """Centre at the endplates' midpoint and normal equal to the library's (1e-9), containing
    the anterior axis, sized to reach past both endplates."""
    node = update_split_plane_node(scene, upper, lower, side, "L2")
    center, normal = split_plane_of_node(node)
    plane = split_plane_from_endplates(upper, lower, side)
    assert np.allclose(center, plane.point_ras, atol=1e-9)
    assert np.allclose(normal, plane.normal_ras, atol=1e-9)
    assert abs(normal @ np.array([0.0, 1.0, 0.0])) < 1e-9
    length = np.linalg.norm(np.subtract(upper, lower))
    assert node.GetSize()[1] == pytest.approx(length + 20.0, abs=1e-9)
    assert node.GetLocked()


def test_split_plane_follows_a_moved_point_and_keeps_one_node_per_level(scene):
    markups = add_endplate_markups(scene, [0.0, 0.0, 20.0], [0.0, 0.0, -10.0], "L1")
    first = update_split_plane_node(scene, *endplate_points(markups, "L1"), "left", "L1")
    markups.SetNthControlPointPositionWorld(0, 6.0, 0.0, 20.0)
    moved = update_split_plane_node(scene, *endplate_points(markups, "L1"), "left", "L1")
    assert moved is first
    center, normal = split_plane_of_node(moved)
    assert np.allclose(center, [3.0, 0.0, 5.0], atol=1e-9)
    expected = split_plane_from_endplates([6.0, 0.0, 20.0], [0.0, 0.0, -10.0], "left").normal_ras
    assert np.allclose(normal, expected, atol=1e-9)
    other = update_split_plane_node(scene, [30.0, 0.0, -20.0], [30.0, 0.0, -50.0], "right", "L2")
    assert other is not first
    assert find_split_plane_node(scene, "L1") is first
    assert find_split_plane_node(scene, "L2") is other
    assert scene.GetNumberOfNodesByClass("vtkMRMLMarkupsPlaneNode") == 2


def test_split_plane_is_hidden_with_the_measurement_message_when_points_cannot_define_it(scene):
    node = update_split_plane_node(scene, [0.0, 0.0, 20.0], [0.0, 0.0, -10.0], "left", "L1")
    with pytest.raises(CementLeakageError) as from_measurement:
        split_plane_from_endplates([0.0, 0.0, 0.0], [0.0, 30.0, 0.0], "left")
    with pytest.raises(CementLeakageError) as from_node:
        update_split_plane_node(scene, [0.0, 0.0, 0.0], [0.0, 30.0, 0.0], "left", "L1")
    assert str(from_node.value) == str(from_measurement.value)
    assert not node.GetDisplayNode().GetVisibility()
    update_split_plane_node(scene, [0.0, 0.0, 20.0], [0.0, 0.0, -10.0], "left", "L1")
    assert node.GetDisplayNode().GetVisibility()


# Placing the endplate points


def test_each_level_has_one_point_list_of_at_most_two_points(scene):
    l1 = endplate_points_node(scene, "L1")
    assert endplate_points_node(scene, "L1") is l1
    assert endplate_points_node(scene, "L2") is not l1
    assert endplate_points_node(scene, "T12", create=False) is None
    assert l1.GetName() == "L1 endplate midpoints"
    assert l1.GetMaximumNumberOfControlPoints() == 2


def test_points_are_named_upper_then_lower_as_placed(scene):
    node = endplate_points_node(scene, "T12")
    node.AddControlPoint(vtk.vtkVector3d(1.0, 2.0, 30.0))
    assert label_endplate_points(node, "T12") == ["T12 upper endplate midpoint"]
    node.AddControlPoint(vtk.vtkVector3d(1.0, 2.0, 5.0))
    assert label_endplate_points(node, "T12") == list(endplate_labels("T12"))
    upper, lower = endplate_points(node, "T12")
    assert np.allclose(upper, [1.0, 2.0, 30.0]) and np.allclose(lower, [1.0, 2.0, 5.0])
    # Deleting the upper point and placing it again gives the new point the free label.
    node.RemoveNthControlPoint(0)
    node.AddControlPoint(vtk.vtkVector3d(0.0, 2.0, 31.0))
    assert label_endplate_points(node, "T12") == [
        "T12 lower endplate midpoint",
        "T12 upper endplate midpoint",
    ]
    upper, lower = endplate_points(node, "T12")
    assert np.allclose(upper, [0.0, 2.0, 31.0]) and np.allclose(lower, [1.0, 2.0, 5.0])


# Segment Editor presets


def test_threshold_presets_are_the_measurement_thresholds():
    defaults = MeasurementParameters()
    presets = editor_presets()
    assert presets["threshold_cement"].parameters == {"MinimumThreshold": "1500", "MaximumThreshold": "3071"}
    assert presets["threshold_bone"].parameters == {"MinimumThreshold": "226", "MaximumThreshold": "3071"}
    assert float(presets["threshold_cement"].parameters["MinimumThreshold"]) == defaults.cement_min_hu
    custom = editor_presets(MeasurementParameters(cement_min_hu=1800.0, bone_min_hu=200.0))
    assert custom["threshold_cement"].parameters["MinimumThreshold"] == "1800"
    assert custom["threshold_bone"].parameters["MinimumThreshold"] == "200"
    assert {preset.effect_name for preset in presets.values()} == {
        "Threshold",
        "Islands",
        "Scissors",
        "Paint",
        "Erase",
        "Logical operators",
    }


def test_a_mask_thresholded_with_the_cement_preset_is_the_library_threshold(phantom):
    """The preset's window applied to the CT selects exactly the voxels the measurement calls cement."""
    preset = editor_presets()["threshold_cement"].parameters
    low, high = float(preset["MinimumThreshold"]), float(preset["MaximumThreshold"])
    hu = phantom.ct.array_hu
    by_preset = (hu >= low) & (hu <= high)
    assert np.array_equal(by_preset, threshold_cement(hu, MeasurementParameters()))
    assert by_preset.sum() > 1000


def test_presets_are_stored_on_the_segment_editor_node_as_slicer_names_them(scene):
    editor_node = slicer.vtkMRMLSegmentEditorNode()
    scene.AddNode(editor_node)
    for preset in editor_presets().values():
        store_preset(editor_node, preset)
        assert stored_parameters(editor_node, preset) == preset.parameters
    assert editor_node.GetAttribute("Islands.Operation") == "KEEP_LARGEST_ISLAND"
    bone = editor_presets()["threshold_bone"]
    store_preset(editor_node, bone)
    assert editor_node.GetAttribute("Threshold.MinimumThreshold") == "226"


# Live re-measurement


def test_moving_a_point_remeasures_from_the_segments(measured_case, phantom):
    """After a drag the numbers equal the mask measurement with the new points, exactly."""
    logic, volume, markups, segmentation, first = measured_case
    upper = np.array(phantom.truth.upper_ras) + [3.0, 0.0, 0.0]
    markups.SetNthControlPointPositionWorld(0, *upper)
    again = logic.remeasure_level(volume, markups, segmentation, level="L1", side="left")
    body = segment_mask(segmentation, f"L1 {BODY}", volume)
    cement = segment_mask(segmentation, f"L1 {CEMENT}", volume)
    expected = measure_masks(body, cement, phantom.ct.geometry, upper, phantom.truth.lower_ras, "left")
    assert again.psbcv_cm3 == pytest.approx(expected.psbcv_cm3, abs=1e-12)
    assert again.vbv_cm3 == pytest.approx(first.vbv_cm3, abs=1e-12)
    assert again.psbcv_cm3 != pytest.approx(first.psbcv_cm3, abs=1e-6)
    plane = split_plane_from_endplates(upper, phantom.truth.lower_ras, "left")
    redrawn = segment_mask(segmentation, f"L1 {PUNCTURE_SIDE_CEMENT}", volume)
    assert np.array_equal(redrawn, puncture_side_voxels(cement & body, phantom.ct.geometry, plane))
    table = logic.results_table_node()
    assert table.GetNumberOfRows() == 1
    assert float(table.GetCellText(0, 4)) == pytest.approx(again.psbcv_cm3, abs=5e-4)


def test_a_hand_edited_body_is_measured_as_edited(measured_case, phantom):
    logic, volume, markups, segmentation, first = measured_case
    body = segment_mask(segmentation, f"L1 {BODY}", volume)
    edited = body.copy()
    k = np.nonzero(body)[0]
    edited[k.min() : k.min() + 3] = False  # erase three slices
    edit_by_hand(segmentation, f"L1 {BODY}", edited, phantom.ct.geometry)
    again = logic.remeasure_level(volume, markups, segmentation, level="L1", side="left")
    voxel_mm3 = float(np.prod(phantom.ct.geometry.spacing_mm))
    assert again.vbv_cm3 == pytest.approx(edited.sum() * voxel_mm3 / 1000.0, rel=1e-12)
    assert again.vbv_cm3 < first.vbv_cm3


def test_a_level_without_segments_is_not_remeasured(scene, phantom):
    volume = add_volume_node(scene, phantom.ct, "CT")
    markups = add_endplate_markups(scene, phantom.truth.upper_ras, phantom.truth.lower_ras, "L1")
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    logic = CementLeakageLogic(scene)
    assert logic.remeasure_level(volume, markups, segmentation, level="L1", side="left") is None
    assert logic.measurements() == []


# Export of the case


def test_export_writes_a_bundle_that_reads_back_to_the_same_numbers_and_masks(
    measured_case, phantom, tmp_path
):
    logic, volume, markups, segmentation, measurement = measured_case
    out = tmp_path / "case"
    logic.export_case(out, volume, segmentation)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["L1.mrk.json", "L1.png", "report.html", RESULTS_CSV, RESULTS_JSON, SEGMENTATION_FILE]
    )
    document = json.loads((out / RESULTS_JSON).read_text(encoding="utf-8"))
    record = document["levels"][0]
    for key in ("vbv_cm3", "bcv_cm3", "psbcv_cm3", "psbcv_vbv_pct", "exceeds_cutoff"):
        assert record[key] == getattr(measurement, key)
    assert document["software_version"] == measurement.software_version
    assert document["exported_utc"].endswith("Z")
    body = segment_mask(segmentation, f"L1 {BODY}", volume)
    assert record["segments"]["body"] == {
        "name": f"L1 {BODY}",
        "source": "automatic",
        "edited_by_hand": False,
        "mask_sha256": mask_sha256(body),
        "voxels": int(body.sum()),
    }
    identity = document["input"]
    assert len(identity["voxels_sha256"]) == 64
    masks = read_segment_masks(out / SEGMENTATION_FILE, [f"L1 {BODY}", f"L1 {CEMENT}"], phantom.ct.geometry)
    assert np.array_equal(masks[f"L1 {BODY}"], body)
    upper, lower = read_endplate_markups_file(out / "L1.mrk.json", "L1")
    assert np.allclose(upper, phantom.truth.upper_ras, atol=1e-6)
    assert np.allclose(lower, phantom.truth.lower_ras, atol=1e-6)
    with open(out / RESULTS_CSV, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert float(rows[0]["psbcv_vbv_pct"]) == pytest.approx(measurement.psbcv_vbv_pct, abs=1e-12)
    assert rows[0]["body_edited_by_hand"] == "False"


def test_export_records_hand_edits_and_never_replaces_a_bundle_unasked(measured_case, phantom, tmp_path):
    logic, volume, markups, segmentation, _ = measured_case
    out = tmp_path / "case"
    logic.export_case(out, volume, segmentation)
    before = (out / RESULTS_JSON).read_bytes()
    body = segment_mask(segmentation, f"L1 {BODY}", volume)
    edited = body.copy()
    edited[np.nonzero(body)[0].max()] = False
    edit_by_hand(segmentation, f"L1 {BODY}", edited, phantom.ct.geometry)
    logic.measure_segments(
        volume,
        markups,
        segmentation,
        level="L1",
        side="left",
        body_segment=f"L1 {BODY}",
        cement_segment=f"L1 {CEMENT}",
    )
    with pytest.raises(CementLeakageError, match="already holds files"):
        logic.export_case(out, volume, segmentation)
    assert (out / RESULTS_JSON).read_bytes() == before
    logic.export_case(out, volume, segmentation, force=True)
    record = json.loads((out / RESULTS_JSON).read_text(encoding="utf-8"))["levels"][0]
    assert record["segments"]["body"]["edited_by_hand"] is True
    assert record["segments"]["body"]["mask_sha256"] == mask_sha256(edited)
    assert record["segmentation_source"] == "given"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_keeps_the_input_file_identity(scene, phantom, tmp_path):
    path = tmp_path / "ct.nrrd"
    write_volume(phantom.ct.array_hu, phantom.ct.geometry, path)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    volume = slicer.vtkMRMLScalarVolumeNode()
    scene.AddNode(volume)
    assert storage.ReadData(volume)
    volume.SetAndObserveStorageNodeID(storage.GetID())
    markups = add_endplate_markups(scene, phantom.truth.upper_ras, phantom.truth.lower_ras, "L1")
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    logic = CementLeakageLogic(scene)
    logic.segment_and_measure(volume, markups, segmentation, level="L1", side="left")
    logic.export_case(tmp_path / "case", volume, segmentation)
    identity = json.loads((tmp_path / "case" / RESULTS_JSON).read_text(encoding="utf-8"))["input"]
    assert identity["file_name"] == "ct.nrrd"
    assert identity["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_level_marked_on_a_body_already_measured_under_another_name_is_refused(
    measured_case, scene, phantom
):
    # The L1's points copied into a point list for "L2": the panel segmented the same body
    # again and listed it as a second vertebra. Nothing of "L2" is written, and L1 is kept.
    logic, volume, _, segmentation, measurement = measured_case
    markups = add_endplate_markups(scene, phantom.truth.upper_ras, phantom.truth.lower_ras, "L2")
    before = segment_names(segmentation)
    with pytest.raises(
        CementLeakageError, match="levels L1 and L2 mark the same vertebral body .*share 100%"
    ):
        logic.segment_and_measure(volume, markups, segmentation, level="L2", side="left")
    assert segment_names(segmentation) == before
    assert [m.level for m in logic.measurements()] == ["L1"]
    # Measured again under its own name, L1 is no other level.
    again = logic.segment_and_measure(volume, measured_case[2], segmentation, level="L1", side="left")
    assert again.vbv_cm3 == pytest.approx(measurement.vbv_cm3, rel=1e-12)
    assert not [w for w in again.warnings if "shares" in w]


def test_a_failed_export_leaves_no_partial_bundle(tmp_path):
    record = {"level": "L1", "upper_ras": [0, 0, 1], "lower_ras": [0, 0, 0], "warnings": []}

    def failing_writer(folder):
        (folder / "segmentation.seg.nrrd").write_text("half")
        raise OSError("disk full")

    with pytest.raises(
        CementLeakageError, match=r"could not be written to .*case: disk full; nothing was written"
    ):
        write_case_bundle(tmp_path / "case", [record], {}, failing_writer)
    assert list(tmp_path.iterdir()) == []


def test_an_export_to_a_folder_that_cannot_be_made_says_so(tmp_path):
    # The folder's parent is a file: no folder can be made there, and the system's reason is
    # given with what to do instead of an internal error.
    record = {"level": "L1", "upper_ras": [0, 0, 1], "lower_ras": [0, 0, 0], "warnings": []}
    (tmp_path / "a file").write_text("not a folder")
    with pytest.raises(
        CementLeakageError, match="could not be written to .*: File exists; .*folder you can write to"
    ):
        write_case_bundle(tmp_path / "a file" / "case", [record], {}, lambda folder: None)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a file"]


def test_export_without_a_measurement_says_what_to_do(scene, tmp_path):
    logic = CementLeakageLogic(scene)
    with pytest.raises(CementLeakageError, match="measure at least one vertebra"):
        logic.export_case(tmp_path / "case", None, None)


def test_the_embedded_editor_has_one_parameter_node_holding_the_presets(scene):
    logic = CementLeakageLogic(scene)
    node = logic.segment_editor_node()
    assert logic.segment_editor_node() is node
    assert CementLeakageLogic(scene).segment_editor_node() is node
    logic.store_editor_preset(editor_presets()["threshold_cement"])
    assert node.GetAttribute("Threshold.MinimumThreshold") == "1500"
    assert node.GetAttribute("Threshold.MaximumThreshold") == "3071"


def test_correcting_a_level_without_segments_creates_them_empty_and_marked_as_drawn_by_hand(scene, phantom):
    volume = add_volume_node(scene, phantom.ct, "CT")
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    logic = CementLeakageLogic(scene)
    assert logic.editing_segment_id(segmentation, volume, "L1", "any") is None
    cement_id = logic.editing_segment_id(segmentation, volume, "L1", "cement")
    assert segmentation.GetSegmentation().GetSegment(cement_id).GetName() == f"L1 {CEMENT}"
    assert logic.editing_segment_id(segmentation, volume, "L1", "cement") == cement_id
    body_id = logic.editing_segment_id(segmentation, volume, "L1", "body")
    assert logic.editing_segment_id(segmentation, volume, "L1", "any") == body_id
    assert segment_mask(segmentation, f"L1 {BODY}", volume).sum() == 0
    # Drawn by hand, so an automatic segmentation must not replace it unasked.
    markups = add_endplate_markups(scene, phantom.truth.upper_ras, phantom.truth.lower_ras, "L1")
    with pytest.raises(CementLeakageError, match="edited by hand"):
        logic.segment_and_measure(volume, markups, segmentation, level="L1", side="left")


def test_bundle_names_carry_only_the_time():
    from datetime import datetime, timezone

    from CementLeakageLib.case_export import default_bundle_name

    name = default_bundle_name(datetime(2026, 11, 25, 9, 30, 5, tzinfo=timezone.utc))
    assert name == "cementleakage-20261125-093005"


def test_the_panel_cement_budget_equals_the_plan_command(scene):
    from CementLeakageLib.cement_plan import plan_vertebra

    preop = make_phantom(
        PhantomSpec(
            spacing_mm=(1.0, 1.0, 1.0), cement_in_body=False, pedicle_tail=False, paravertebral_leak=False
        )
    )
    volume = add_volume_node(scene, preop.ct, "preop CT")
    markups = add_endplate_markups(scene, preop.truth.upper_ras, preop.truth.lower_ras, "L1")
    plan = CementLeakageLogic(scene).plan_level(volume, markups, level="L1", side="left")
    direct = plan_vertebra(preop.ct, preop.truth.upper_ras, preop.truth.lower_ras, "left", level="L1")
    assert plan["vbv_cm3"] == pytest.approx(direct["vbv_cm3"], abs=1e-12)
    assert plan["vbv_cm3"] == pytest.approx(preop.truth.vbv_cm3, rel=0.03)
    gao = next(budget for budget in plan["budgets"] if budget["rule"] == "gao2022-psbcv")
    assert gao["max_cement_ml"] == pytest.approx(0.1368 * plan["vbv_cm3"], abs=1e-12)


def test_an_overwrite_of_edited_segments_can_be_undone(measured_case, phantom):
    """Overwriting a hand-edited body saves the segmentation's state first: restoring it gives the
    edited mask back voxel for voxel (Segment Editor's Undo uses the same history)."""
    logic, volume, markups, segmentation, _ = measured_case
    body = segment_mask(segmentation, f"L1 {BODY}", volume)
    edited = body.copy()
    edited[np.nonzero(body)[0].min()] = False
    edit_by_hand(segmentation, f"L1 {BODY}", edited, phantom.ct.geometry)
    history = slicer.vtkSegmentationHistory()
    history.SetSegmentation(segmentation.GetSegmentation())
    logic.segment_and_measure(
        volume, markups, segmentation, level="L1", side="left", overwrite=True, history=history
    )
    assert np.array_equal(segment_mask(segmentation, f"L1 {BODY}", volume), body)
    assert history.IsRestorePreviousStateAvailable()
    assert history.RestorePreviousState()
    assert np.array_equal(segment_mask(segmentation, f"L1 {BODY}", volume), edited)
