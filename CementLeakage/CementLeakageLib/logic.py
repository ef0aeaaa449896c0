"""CementLeakageLogic: the measurement on Slicer's MRML nodes (no Qt).

The same class serves the Slicer module's panel and headless use on ``slicer-core``: it
reads the CT from a scalar volume node and the endplate midpoints from a point list node,
writes the segments into a segmentation node and the results into a table node. Segment
names carry the level (``L1 Vertebral body``) so several levels share one segmentation.
"""

from __future__ import annotations

import slicer

from .errors import CementLeakageError
from .mrml_nodes import (
    SOURCE_TAG,
    ct_from_volume_node,
    endplate_points,
    segment_mask,
    segment_was_edited,
    set_segment_mask,
)
from .parameters import MeasurementParameters
from .pipeline import measure_vertebra
from .results import VertebraMeasurement
from .segments import SEGMENT_COLORS_RGB, SEGMENT_NAMES, level_segment_name

RESULTS_TABLE_NAME = "CementLeakage results"
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
    ("Extravertebral cement (cm3)", "extravertebral_cement_cm3"),
    ("Segmentation", "segmentation_source"),
    ("Warnings", "warnings"),
)
"""Results table columns: header and the VertebraMeasurement field each shows."""


class CementLeakageLogic:
    """Measure vertebrae on MRML nodes of ``scene``; one results table row per level."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self._table = None

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
    ) -> VertebraMeasurement:
        """Segment body and cement automatically, write the level's four segments, measure.

        Refuses (:class:`CementLeakageError`) when one of this level's segments was edited
        since the package wrote it, or drawn by hand, unless ``overwrite`` is set.
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
            ct_from_volume_node(volume_node), upper, lower, side, level=level, parameters=parameters
        )
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
        self._update_table(result.measurement)
        return result.measurement

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
        upper, lower = endplate_points(markups_node, level)
        body = segment_mask(segmentation_node, body_segment, volume_node)
        cement = segment_mask(segmentation_node, cement_segment, volume_node)
        result = measure_vertebra(
            ct_from_volume_node(volume_node),
            upper,
            lower,
            side,
            level=level,
            parameters=parameters,
            body_mask=body,
            cement_mask=cement,
        )
        self._update_table(result.measurement)
        return result.measurement

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
            elif isinstance(value, list):
                text = "; ".join(value)
            else:
                text = str(value)
            table.SetCellText(row, column, text)
        table.Modified()
