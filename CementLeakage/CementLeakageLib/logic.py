"""CementLeakageLogic: the measurement on Slicer's MRML nodes (no Qt).

The same class serves the Slicer module's panel and headless use on ``slicer-core``: it
reads the CT from a scalar volume node and the endplate midpoints from a point list node,
writes the segments into a segmentation node and the results into a table node. Segment
names carry the level (``L1 Vertebral body``) so several levels share one segmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import slicer

from .errors import CementLeakageError
from .mrml_nodes import (
    SOURCE_TAG,
    InstanceFile,
    ct_from_volume_node,
    endplate_points,
    mask_sha256,
    segment_id_by_name,
    segment_mask,
    segment_names,
    segment_provenance,
    segment_was_edited,
    set_segment_mask,
)
from .multi_level import check_bodies_apart
from .parameters import MeasurementParameters
from .pipeline import VertebraResult, measure_vertebra
from .results import VertebraMeasurement
from .segments import (
    BODY,
    CEMENT,
    PUNCTURE_SIDE_CEMENT,
    SEGMENT_COLORS_RGB,
    SEGMENT_NAMES,
    level_segment_name,
)

RESULTS_TABLE_NAME = "CementLeakage results"
SEGMENT_EDITOR_SINGLETON_TAG = "CementLeakage"
RESULT_COLUMNS = (
    ("Level", "level"),
    ("Side", "side"),
    ("VBV (cm3)", "vbv_cm3"),
    ("BCV (cm3)", "bcv_cm3"),
    ("PSBCV (cm3)", "psbcv_cm3"),
    ("BCV/VBV (%)", "bcv_vbv_pct"),
    ("PSBCV/VBV (%)", "psbcv_vbv_pct"),
    ("Cut-off (%)", "cutoff_pct"),
    ("Above cut-off", "exceeds_cutoff"),
    ("Near cut-off", "near_cutoff"),
    ("Extravertebral cement (cm3)", "extravertebral_cement_cm3"),
    ("Segmentation", "segmentation_source"),
    ("CT blur (mm)", "ct_blur_sigma_mm"),
    ("Points off centre line (mm)", "points_off_centre_mm"),
    ("Warnings", "warnings"),
)
"""Results table columns: header and the VertebraMeasurement field each shows. The points' offsets
from the body's centre line read ``upper / lower``, signed towards the puncture side."""


def _measured_cement_segment(result: VertebraResult):
    """The cement mask as its segment holds it: given as is, automatic clipped to the body."""
    if result.segmentation_source == "given":
        return result.cement_mask
    return result.cement_mask & result.body_mask


@dataclass
class _MeasuredLevel:
    """The latest result of a level and the segments it was measured from."""

    result: VertebraResult
    body_segment: str
    cement_segment: str
    markups_name: str


class CementLeakageLogic:
    """Measure vertebrae on MRML nodes of ``scene``; one results table row per level.

    ``dicom_instance_file`` finds the file of a SOP Instance UID (in Slicer,
    ``slicer.dicomDatabase.fileForInstance``): a CT loaded from DICOM is then measured with the
    SliceThickness its files state, unless its volume node states one itself
    (:func:`~.mrml_nodes.slice_thickness_of_volume_node`)."""

    def __init__(self, scene, dicom_instance_file: InstanceFile | None = None) -> None:
        self.scene = scene
        self.dicom_instance_file = dicom_instance_file
        self._table = None
        self._measured: dict[str, _MeasuredLevel] = {}

    def _ct(self, volume_node):
        """The CT of ``volume_node`` (:func:`~.mrml_nodes.ct_from_volume_node`)."""
        return ct_from_volume_node(volume_node, self.dicom_instance_file)

    def segment_and_measure(
        self,
        volume_node,
        markups_node,
        segmentation_node,
        *,
        level: str,
        side: str,
        parameters: MeasurementParameters | None = None,
        overwrite: bool = False,
        history=None,
    ) -> VertebraMeasurement:
        """Segment body and cement automatically, write the level's four segments, measure.

        Refuses (:class:`CementLeakageError`) when one of this level's segments was edited
        since the package wrote it, or drawn by hand, unless ``overwrite`` is set. Before
        segments are replaced the segmentation's state is saved in ``history`` (a
        ``vtkSegmentationHistory``, as Segment Editor keeps for its Undo button), so the
        overwrite can be undone.
        """
        names = [level_segment_name(level, name) for name in SEGMENT_NAMES]
        edited = [name for name in names if segment_was_edited(segmentation_node, name, volume_node)]
        if edited and not overwrite:
            raise CementLeakageError(
                f"segment(s) {', '.join(repr(n) for n in edited)} were edited by hand: measure them as they "
                "are, or choose to overwrite them with a new automatic segmentation"
            )
        upper, lower = endplate_points(markups_node, level)
        result = measure_vertebra(
            self._ct(volume_node), upper, lower, side, level=level, parameters=parameters
        )
        result.measurement.warnings.extend(
            self._overlap_with_other_levels(segmentation_node, volume_node, level, result)
        )
        existing = [name for name in names if segment_id_by_name(segmentation_node, name) is not None]
        if history is not None and existing:
            if history.GetSegmentation() is not segmentation_node.GetSegmentation():
                history.SetSegmentation(segmentation_node.GetSegmentation())
            history.SaveState()
        if segmentation_node.GetDisplayNode() is None:
            segmentation_node.CreateDefaultDisplayNodes()
        for name, mask in result.masks_by_segment_name().items():
            set_segment_mask(
                segmentation_node,
                level_segment_name(level, name),
                mask,
                volume_node,
                SEGMENT_COLORS_RGB[name],
                {SOURCE_TAG: "automatic"},
            )
        self._record(
            level, result, markups_node, level_segment_name(level, BODY), level_segment_name(level, CEMENT)
        )
        return result.measurement

    @staticmethod
    def _overlap_with_other_levels(
        segmentation_node, volume_node, level: str, result: VertebraResult
    ) -> list[str]:
        """What the new body of ``level`` says about the other levels' bodies in the segmentation:
        refused (:class:`CementLeakageError`) where it is mostly one of them, as when a level's
        points are given again under another name; any smaller overlap is named."""
        suffix = f" {BODY}"
        bodies = {
            name[: -len(suffix)]: segment_mask(segmentation_node, name, volume_node)
            for name in segment_names(segmentation_node)
            if name.endswith(suffix) and name != level_segment_name(level, BODY)
        }
        if not bodies:
            return []
        bodies[level] = result.body_mask
        voxel_cm3 = result.geometry.voxel_volume_mm3 / 1000.0
        return check_bodies_apart(bodies, voxel_cm3, {level}, only=level).get(level, [])

    def measure_segments(
        self,
        volume_node,
        markups_node,
        segmentation_node,
        *,
        level: str,
        side: str,
        parameters: MeasurementParameters | None = None,
        body_segment: str,
        cement_segment: str,
    ) -> VertebraMeasurement:
        """Measure the body and cement segments as they are (e.g. corrected by hand)."""
        result = self._measure_given_segments(
            volume_node,
            markups_node,
            segmentation_node,
            level,
            side,
            parameters,
            body_segment,
            cement_segment,
        )
        self._record(level, result, markups_node, body_segment, cement_segment)
        return result.measurement

    def remeasure_level(
        self,
        volume_node,
        markups_node,
        segmentation_node,
        *,
        level: str,
        side: str,
        parameters: MeasurementParameters | None = None,
    ) -> VertebraMeasurement | None:
        """Measure ``level`` again from its segments as they are now, e.g. after a point moved.

        Uses the level's ``<level> Vertebral body`` and ``<level> Cement`` segments (automatic
        or corrected by hand, never re-segmented) and redraws the derived puncture-side cement
        segment unless the user edited it. Returns None when the level has no such segments
        yet. Cheap enough to follow a dragged endplate point (no segmentation is run).
        """
        body_name = level_segment_name(level, BODY)
        cement_name = level_segment_name(level, CEMENT)
        if segmentation_node is None or any(
            segment_id_by_name(segmentation_node, name) is None for name in (body_name, cement_name)
        ):
            return None
        result = self._measure_given_segments(
            volume_node, markups_node, segmentation_node, level, side, parameters, body_name, cement_name
        )
        puncture_side_name = level_segment_name(level, PUNCTURE_SIDE_CEMENT)
        if segment_was_edited(segmentation_node, puncture_side_name, volume_node):
            result.measurement.warnings.append(
                f"segment {puncture_side_name!r} was edited by hand and is no longer redrawn: "
                "the numbers come from the body and cement segments"
            )
        else:
            set_segment_mask(
                segmentation_node,
                puncture_side_name,
                result.puncture_side_cement_mask,
                volume_node,
                SEGMENT_COLORS_RGB[PUNCTURE_SIDE_CEMENT],
                {SOURCE_TAG: "automatic"},
            )
        self._record(level, result, markups_node, body_name, cement_name)
        return result.measurement

    def plan_level(
        self,
        volume_node,
        markups_node,
        *,
        level: str,
        side: str,
        parameters: MeasurementParameters | None = None,
        rule_names: list[str] | None = None,
    ) -> dict:
        """Cement budget of a level on a preoperative CT (see :func:`cement_plan.plan_vertebra`).

        Returns the VBV (cm³) and, per rule, the largest cement volume (mL) under its threshold.
        """
        from .cement_plan import plan_vertebra

        upper, lower = endplate_points(markups_node, level)
        record = plan_vertebra(
            self._ct(volume_node),
            upper,
            lower,
            side,
            level=level,
            parameters=parameters,
            rule_names=rule_names,
        )
        record.pop("body_mask")
        return record

    def segment_editor_node(self):
        """The Segment Editor parameter node of the panel's embedded editor (one per scene)."""
        node = self.scene.GetSingletonNode(SEGMENT_EDITOR_SINGLETON_TAG, "vtkMRMLSegmentEditorNode")
        if node is None:
            node = slicer.vtkMRMLSegmentEditorNode()
            node.SetSingletonTag(SEGMENT_EDITOR_SINGLETON_TAG)
            node.SetName("CementLeakage segment editor")
            self.scene.AddNode(node)
        return node

    def store_editor_preset(self, preset) -> None:
        """Put an :class:`editor_presets.EffectPreset`'s parameters on the editor node."""
        from .editor_presets import store_preset

        store_preset(self.segment_editor_node(), preset)

    def editing_segment_id(self, segmentation_node, volume_node, level: str, role: str) -> str | None:
        """The segment a manual-correction preset works on: the level's body or cement segment.

        A missing body or cement segment is created empty (the user draws it by hand, so it
        counts as edited and is never overwritten unasked). ``role`` ``any`` gives the body
        segment if there is one, else None (the editor keeps its selection).
        """
        names = {"body": level_segment_name(level, BODY), "cement": level_segment_name(level, CEMENT)}
        if role not in names:
            return segment_id_by_name(segmentation_node, names["body"])
        name = names[role]
        segment_id = segment_id_by_name(segmentation_node, name)
        if segment_id is None:
            if volume_node is not None:
                segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
            segment_id = segmentation_node.GetSegmentation().AddEmptySegment(
                "", name, [float(c) for c in SEGMENT_COLORS_RGB[BODY if role == "body" else CEMENT]]
            )
            segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
            segment.SetNameAutoGenerated(False)
            segment.SetColorAutoGenerated(False)
            segment.SetTag(SOURCE_TAG, "hand")
        return segment_id

    def forget_measurements(self) -> None:
        """Drop the remembered measurements and results table (the scene was closed)."""
        self._measured.clear()
        self._table = None

    def measurements(self) -> list[VertebraMeasurement]:
        """The latest measurement of every level measured with this logic, in measuring order."""
        return [entry.result.measurement for entry in self._measured.values()]

    def export_case(self, out_dir, volume_node, segmentation_node, *, force: bool = False) -> list:
        """Write the audit bundle of every level measured so far (see :mod:`case_export`).

        Each level record says, per measured segment, whether it was edited by hand after the
        automatic segmentation and the SHA-256 of the mask that was measured. Returns the
        paths written.
        """
        from pathlib import Path

        from .case_export import SEGMENTATION_FILE, level_file_stem, write_case_bundle
        from .markups_files import write_endplate_markups_file
        from .measurement_bundle import write_level_figures, write_report
        from .mrml_nodes import volume_node_identity
        from .storage_files import write_node_atomically

        if not self._measured:
            raise CementLeakageError("nothing to export: measure at least one vertebra first")
        records = []
        for entry in self._measured.values():
            record = entry.result.measurement.as_dict()
            record["segments"] = {
                "body": self._segment_provenance(
                    segmentation_node, entry.body_segment, entry.result.body_mask, volume_node
                ),
                "cement": self._segment_provenance(
                    segmentation_node,
                    entry.cement_segment,
                    _measured_cement_segment(entry.result),
                    volume_node,
                ),
            }
            record["endplate_markups_node"] = entry.markups_name
            record["files"] = {
                "segmentation": SEGMENTATION_FILE,
                "markups": f"{level_file_stem(record['level'])}.mrk.json",
            }
            records.append(record)

        def write_files(folder: Path) -> None:
            write_node_atomically(
                self.scene,
                slicer.vtkMRMLSegmentationStorageNode(),
                segmentation_node,
                folder / SEGMENTATION_FILE,
                ".seg.nrrd",
            )
            for record in records:
                write_endplate_markups_file(
                    folder / record["files"]["markups"],
                    record["upper_ras"],
                    record["lower_ras"],
                    record["level"],
                )
            results = [entry.result for entry in self._measured.values()]
            write_level_figures(folder, list(zip(results, records)), self._ct(volume_node))

        identity = volume_node_identity(volume_node, self.dicom_instance_file)
        return write_case_bundle(Path(out_dir), records, identity, write_files, force, write_report)

    def _segment_provenance(self, segmentation_node, name: str, measured_mask, volume_node) -> dict:
        return {
            "name": name,
            **segment_provenance(segmentation_node, name, volume_node),
            "mask_sha256": mask_sha256(measured_mask),
            "voxels": int(measured_mask.sum()),
        }

    def _measure_given_segments(
        self, volume_node, markups_node, segmentation_node, level, side, parameters, body_name, cement_name
    ) -> VertebraResult:
        upper, lower = endplate_points(markups_node, level)
        body = segment_mask(segmentation_node, body_name, volume_node)
        cement = segment_mask(segmentation_node, cement_name, volume_node)
        return measure_vertebra(
            self._ct(volume_node),
            upper,
            lower,
            side,
            level=level,
            parameters=parameters,
            body_mask=body,
            cement_mask=cement,
        )

    def _record(self, level: str, result: VertebraResult, markups_node, body_segment, cement_segment) -> None:
        self._measured[level] = _MeasuredLevel(
            result, body_segment, cement_segment, markups_node.GetName() if markups_node else ""
        )
        self._update_table(result.measurement)

    def results_table_node(self):
        """The results table node (created on first use): one row per level."""
        if self._table is None or self.scene.GetNodeByID(self._table.GetID() or "") is None:
            table = slicer.vtkMRMLTableNode()
            table.SetName(RESULTS_TABLE_NAME)
            self.scene.AddNode(table)
            for header, _ in RESULT_COLUMNS:
                column = table.AddColumn()
                column.SetName(header)
            self._table = table
        return self._table

    def _update_table(self, measurement: VertebraMeasurement) -> None:
        table = self.results_table_node()
        values = measurement.as_dict()
        row = next(
            (r for r in range(table.GetNumberOfRows()) if table.GetCellText(r, 0) == measurement.level),
            None,
        )
        if row is None:
            row = table.AddEmptyRow()
        for column, (_, field) in enumerate(RESULT_COLUMNS):
            value = values[field]
            if isinstance(value, bool):
                text = "yes" if value else "no"
            elif isinstance(value, float):
                text = f"{value:.3f}" if field.endswith("cm3") else f"{value:.2f}"
            elif isinstance(value, list) and all(isinstance(item, float) for item in value):
                text = " / ".join(f"{item:+.2f}" for item in value)
            elif isinstance(value, list):
                text = "; ".join(value)
            elif value is None:
                text = ""  # no blur measured: the standard kernel's was assumed, or masks given
            else:
                text = str(value)
            table.SetCellText(row, column, text)
        table.Modified()
