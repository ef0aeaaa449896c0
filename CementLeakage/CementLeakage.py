"""3D Slicer module: puncture-side bone cement volume ratio (PSBCV/VBV%) after vertebroplasty.

The measurement itself lives in the ``CementLeakageLib`` package next to this file (Slicer puts
this folder on ``sys.path``). This file connects it to Slicer: the module description, the
parameter node, the panel and the self-test. It is loaded by Slicer 5.8 and newer, whose oldest
supported Python is 3.9.
"""

import html
import logging
import os
import tempfile
from typing import Annotated, Optional

import qt
import slicer
import vtk
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import (
    Choice,
    Default,
    FloatRange,
    RangeBounds,
    WithinRange,
    parameterNodeWrapper,
)
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.evidence import GAO_2022_PSBCV
from CementLeakageLib.parameters import MeasurementParameters
from CementLeakageLib.split_plane import SIDES

VERTEBRA_LEVELS = tuple([f"T{n}" for n in range(1, 13)] + [f"L{n}" for n in range(1, 6)])
"""Levels a vertebroplasty is done at, thoracic T1 to lumbar L5."""

HOUNSFIELD_BOUNDS = (-1024.0, 4095.0)
"""Range (HU) offered by the threshold sliders. Cement stored above 3071 HU on extended CT scales
is detected by the library, which then raises the upper bounds itself."""

DEFAULT_PARAMETERS = MeasurementParameters()
"""The library's thresholds (HU) and cut-off (%), the panel's starting values."""

LIVE_UPDATE_DELAY_MS = 300
"""After the last point drag or segment edit, wait this long (ms) before measuring again, so
dragging stays smooth: a burst of edits gives one measurement."""

PRESET_BUTTONS = {
    "thresholdCementButton": "threshold_cement",
    "thresholdBoneButton": "threshold_bone",
    "islandsButton": "islands",
    "scissorsButton": "scissors",
    "paintButton": "paint",
    "eraseButton": "erase",
    "logicalOperatorsButton": "logical",
}
"""Panel buttons and the Segment Editor preset each opens (see CementLeakageLib.editor_presets)."""


#
# CementLeakage
#


class CementLeakage(ScriptedLoadableModule):
    """Module description shown in Slicer's module panel and help."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Cement Leakage")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = []
        self.parent.contributors = ["CementLeakage contributors"]
        self.parent.helpText = _(
            """
Measures how much of a vertebral body is filled with bone cement on the side of the puncture
after vertebroplasty, and flags vertebrae with a raised risk of paravertebral venous cement leakage.
<ul>
<li><b>VBV</b>: volume of the vertebral body (cm³).</li>
<li><b>BCV</b>: volume of the bone cement inside the vertebral body (cm³).</li>
<li><b>PSBCV</b>: the part of BCV on the puncture side of the plane through the midpoints of the
upper and lower endplates that contains the patient's anterior axis (cm³).</li>
<li><b>PSBCV/VBV%</b>: PSBCV as a percentage of VBV.</li>
</ul>
Select the postoperative CT, place two points in a coronal view (first the midpoint of the upper
endplate, then the midpoint of the lower endplate of the treated vertebra), choose the level and the
puncture side, and click Apply. The vertebral body and the cement are segmented automatically;
to measure segments you drew or corrected, check "Measure my segments".
<p>A vertebra is flagged when PSBCV/VBV% is above {cutoff:.2f}%. At this cut-off the published
sensitivity is {sensitivity:.1f}%, the specificity {specificity:.1f}% and the area under the ROC
curve {auc:.3f}. The flag is a risk indicator, not a diagnosis: many flagged vertebrae do not leak,
and leakage has to be confirmed on the images.</p>
<p>See the <a href="https://github.com/cementleakage/SlicerCementLeakage#3d-slicer-module">module
documentation</a>.</p>
"""
        ).format(
            cutoff=GAO_2022_PSBCV.cutoff_pct,
            sensitivity=GAO_2022_PSBCV.sensitivity_pct,
            specificity=GAO_2022_PSBCV.specificity_pct,
            auc=GAO_2022_PSBCV.auc,
        )
        self.parent.acknowledgementText = _(
            """
The puncture-side cement ratio and its 13.68% cut-off for paravertebral venous leakage are from
Gao et al., BMC Musculoskeletal Disorders 2022;23:184 (495 patients, 585 vertebrae).
Please cite that study when you report these measurements.
"""
        )


#
# CementLeakageParameterNode
#


@parameterNodeWrapper
class CementLeakageParameterNode:
    """
    The choices of the module panel, saved with the scene.

    inputVolume - postoperative CT, in Hounsfield units.
    endplatePoints - the upper, then the lower endplate midpoint of the vertebra (RAS, mm).
    level - level of the treated vertebra, T1 to L5.
    side - puncture side, patient "left" or "right".
    segmentation - receives the segments of the automatic segmentation, or holds the segments to measure.
    overwrite - replace the segments of this level when the segmentation already has them.
    useExistingSegments - measure the selected body and cement segments instead of segmenting.
    cementThresholdHu - intensity window of cement (HU).
    boneThresholdHu - intensity window of bone (HU).
    cutoffPercent - PSBCV/VBV% above which the vertebra is flagged.
    resultsTable - table shown in the panel; after a measurement, the logic's results table.
    autoUpdate - measure the level again when its endplate points move or its segments change.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    endplatePoints: vtkMRMLMarkupsFiducialNode
    level: Annotated[str, Choice(VERTEBRA_LEVELS)] = "L1"
    side: Annotated[str, Choice(SIDES)] = "left"
    segmentation: vtkMRMLSegmentationNode
    overwrite: bool = False
    useExistingSegments: bool = False
    cementThresholdHu: Annotated[
        FloatRange,
        RangeBounds(*HOUNSFIELD_BOUNDS),
        Default(FloatRange(DEFAULT_PARAMETERS.cement_min_hu, DEFAULT_PARAMETERS.cement_max_hu)),
    ]
    boneThresholdHu: Annotated[
        FloatRange,
        RangeBounds(*HOUNSFIELD_BOUNDS),
        Default(FloatRange(DEFAULT_PARAMETERS.bone_min_hu, DEFAULT_PARAMETERS.bone_max_hu)),
    ]
    cutoffPercent: Annotated[float, WithinRange(0, 100)] = DEFAULT_PARAMETERS.cutoff_pct
    resultsTable: vtkMRMLTableNode
    autoUpdate: bool = True


def getParameterNode() -> CementLeakageParameterNode:
    """The scene's parameter node of this module (``slicer.mrmlScene``), created on first use."""
    sceneLogic = ScriptedLoadableModuleLogic()
    sceneLogic.moduleName = "CementLeakage"
    return CementLeakageParameterNode(sceneLogic.getParameterNode())


def measurementParameters(parameterNode: CementLeakageParameterNode) -> MeasurementParameters:
    """The library's parameters from the panel's thresholds (HU) and cut-off (%)."""
    return MeasurementParameters(
        cement_min_hu=parameterNode.cementThresholdHu.minimum,
        cement_max_hu=parameterNode.cementThresholdHu.maximum,
        bone_min_hu=parameterNode.boneThresholdHu.minimum,
        bone_max_hu=parameterNode.boneThresholdHu.maximum,
        cutoff_pct=parameterNode.cutoffPercent,
    )


def dicomInstanceFile(instanceUid: str) -> str:
    """The file of a SOP Instance UID in Slicer's DICOM database: '' when the database is not
    open or holds no such instance. The logic reads a DICOM series' SliceThickness from it."""
    database = getattr(slicer, "dicomDatabase", None)
    if database is None or not database.isOpen:
        return ""
    return database.fileForInstance(instanceUid) or ""


#
# CementLeakageWidget
#


class CementLeakageWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: inputs, endplate points, segmentation, manual correction, results, export."""

    def __init__(self, parent=None) -> None:
        """Called when the user opens the module the first time, before ``setup``."""
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedPointsNode = None
        self._observedSegmentationNode = None
        self._writingSegments = False
        self._liveUpdateTimer = None

    def setup(self) -> None:
        """Build the panel from Resources/UI/CementLeakage.ui and connect it."""
        ScriptedLoadableModuleWidget.setup(self)

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CementLeakage.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        # The .ui file connects the top widget's mrmlSceneChanged(vtkMRMLScene*) signal to the
        # setMRMLScene slot of every MRML widget.
        uiWidget.setMRMLScene(slicer.mrmlScene)

        from CementLeakageLib.editor_presets import editor_presets
        from CementLeakageLib.logic import CementLeakageLogic

        self.logic = CementLeakageLogic(slicer.mrmlScene, dicom_instance_file=dicomInstanceFile)

        self._liveUpdateTimer = qt.QTimer()
        self._liveUpdateTimer.setSingleShot(True)
        self._liveUpdateTimer.setInterval(LIVE_UPDATE_DELAY_MS)
        self._liveUpdateTimer.connect("timeout()", self.onLiveUpdateTimeout)

        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segment_editor_node())
        presets = editor_presets()
        for buttonName, presetKey in PRESET_BUTTONS.items():
            button = getattr(self.ui, buttonName)
            button.toolTip = presets[presetKey].tooltip
            button.connect("clicked(bool)", lambda checked, key=presetKey: self.onPresetButton(key))

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        self.ui.planButton.connect("clicked(bool)", self.onPlanButton)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes and the panel is destroyed."""
        if self._liveUpdateTimer is not None:
            self._liveUpdateTimer.stop()
        self.setParameterNode(None)
        self.removeObservers()

    def enter(self) -> None:
        """Called each time the user opens this module."""
        self.initializeParameterNode()

    def exit(self) -> None:
        """Called each time the user opens another module: stop following the parameter node."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameterNode
            )

    def onSceneStartClose(self, caller, event) -> None:
        """The scene is about to close: its parameter node and observed nodes go with it."""
        self.setParameterNode(None)
        self.observePointsNode(None)
        self.observeSegmentationNode(None)
        if self._liveUpdateTimer is not None:
            self._liveUpdateTimer.stop()
        if self.logic is not None:
            self.logic.forget_measurements()

    def onSceneEndClose(self, caller, event) -> None:
        """The scene was closed: give the open panel a new parameter node and editor node."""
        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segment_editor_node())
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        """Follow the scene's parameter node; fill empty inputs with what the scene holds."""
        self.setParameterNode(getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode: Optional[CementLeakageParameterNode]) -> None:
        """Bind the panel to ``inputParameterNode`` (None unbinds it)."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameterNode
            )
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Widgets with a "SlicerParameterName" dynamic property in the .ui file follow the
            # parameter of that name; the rest is kept in step by updateGuiFromParameterNode.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameterNode
            )
            self.updateGuiFromParameterNode()

    def updateGuiFromParameterNode(self, caller=None, event=None) -> None:
        """Show the parameter node in the widgets that have no automatic binding."""
        parameterNode = self._parameterNode
        if parameterNode is None:
            return
        from CementLeakageLib.mrml_nodes import endplate_points_node

        # Each level has its own point list; choosing a level shows (or creates) its list.
        pointsNode = endplate_points_node(slicer.mrmlScene, parameterNode.level)
        if parameterNode.endplatePoints != pointsNode:
            parameterNode.endplatePoints = pointsNode  # re-enters this method once
            return
        if self.ui.endplatePlaceWidget.currentNode() != pointsNode:
            self.ui.endplatePlaceWidget.setCurrentNode(pointsNode)
        self.observePointsNode(pointsNode)
        self.observeSegmentationNode(parameterNode.segmentation)

        for segmentSelector in (self.ui.bodySegmentSelector, self.ui.cementSegmentSelector):
            if segmentSelector.currentNode() != parameterNode.segmentation:
                segmentSelector.setCurrentNode(parameterNode.segmentation)
            segmentSelector.enabled = parameterNode.useExistingSegments
        self.ui.overwriteCheckBox.enabled = not parameterNode.useExistingSegments
        self.ui.resultsTableView.setMRMLTableNode(parameterNode.resultsTable)
        editor = self.ui.segmentEditorWidget
        if editor.segmentationNode() != parameterNode.segmentation:
            editor.setSegmentationNode(parameterNode.segmentation)
        if editor.sourceVolumeNode() != parameterNode.inputVolume:
            editor.setSourceVolumeNode(parameterNode.inputVolume)
        self.ui.exportButton.enabled = bool(self.logic.measurements())

        if not parameterNode.inputVolume:
            self.ui.applyButton.toolTip = _("Select the postoperative CT.")
            self.ui.applyButton.enabled = False
        elif pointsNode.GetNumberOfControlPoints() < 2:
            self.ui.applyButton.toolTip = _("Place the upper and lower endplate midpoints.")
            self.ui.applyButton.enabled = False
        else:
            self.ui.applyButton.toolTip = _("Segment and measure the cement of the selected vertebra.")
            self.ui.applyButton.enabled = True
        self.ui.planButton.enabled = self.ui.applyButton.enabled
        self.updatePointsStatus()

    # Endplate points and split plane

    def observePointsNode(self, pointsNode) -> None:
        """Follow the endplate points of the current level (and stop following the previous ones)."""
        if pointsNode == self._observedPointsNode:
            return
        events = (
            slicer.vtkMRMLMarkupsNode.PointAddedEvent,
            slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent,
            slicer.vtkMRMLMarkupsNode.PointModifiedEvent,
            slicer.vtkMRMLMarkupsNode.PointRemovedEvent,
        )
        if self._observedPointsNode is not None:
            for event in events:
                self.removeObserver(self._observedPointsNode, event, self.onEndplatePointsModified)
        self._observedPointsNode = pointsNode
        if pointsNode is not None:
            for event in events:
                self.addObserver(pointsNode, event, self.onEndplatePointsModified)

    def onEndplatePointsModified(self, caller=None, event=None) -> None:
        """A point was placed, dragged or deleted: label it, move the plane, measure again soon."""
        from CementLeakageLib.mrml_nodes import label_endplate_points

        parameterNode = self._parameterNode
        if parameterNode is None or caller is None:
            return
        label_endplate_points(caller, parameterNode.level)
        self.updateSplitPlane()
        self.updatePointsStatus()
        self.ui.applyButton.enabled = (
            bool(parameterNode.inputVolume) and caller.GetNumberOfControlPoints() == 2
        )
        self.scheduleLiveUpdate()

    def updateSplitPlane(self) -> Optional[str]:
        """Show the level's split plane through its endplate points; return why not, if it cannot be."""
        from CementLeakageLib.mrml_nodes import endplate_points
        from CementLeakageLib.split_plane_node import update_split_plane_node

        parameterNode = self._parameterNode
        pointsNode = parameterNode.endplatePoints if parameterNode else None
        if pointsNode is None or pointsNode.GetNumberOfControlPoints() < 2:
            return _("place both endplate midpoints")
        try:
            upper, lower = endplate_points(pointsNode, parameterNode.level)
            update_split_plane_node(slicer.mrmlScene, upper, lower, parameterNode.side, parameterNode.level)
        except CementLeakageError as error:
            return str(error)
        return None

    def updatePointsStatus(self) -> None:
        """Say which endplate points are placed and whether they define a split plane."""
        parameterNode = self._parameterNode
        pointsNode = parameterNode.endplatePoints if parameterNode else None
        count = pointsNode.GetNumberOfControlPoints() if pointsNode else 0
        sagittalHint = _("On slices over 1 mm, place it in a sagittal view.")
        if count == 0:
            text = (
                _("Place the upper endplate midpoint, on its surface against the disc.") + " " + sagittalHint
            )
        elif count == 1:
            text = (
                _("Place the lower endplate midpoint, on its surface against the disc.") + " " + sagittalHint
            )
        else:
            problem = self.updateSplitPlane()
            text = _("Both points placed.") if problem is None else problem
        self.ui.endplatePointsStatusLabel.text = text

    # Live re-measurement

    def observeSegmentationNode(self, segmentationNode) -> None:
        """Follow segment edits of the case's segmentation."""
        if segmentationNode == self._observedSegmentationNode:
            return
        if self._observedSegmentationNode is not None:
            self.removeObserver(
                self._observedSegmentationNode, slicer.vtkSegmentation.SegmentModified, self.onSegmentModified
            )
        self._observedSegmentationNode = segmentationNode
        if segmentationNode is not None:
            self.addObserver(segmentationNode, slicer.vtkSegmentation.SegmentModified, self.onSegmentModified)

    def onSegmentModified(self, caller=None, event=None) -> None:
        """A segment changed (Segment Editor, Islands...): measure again once the editing pauses."""
        if not self._writingSegments:
            self.scheduleLiveUpdate()

    def scheduleLiveUpdate(self) -> None:
        """(Re)start the short timer after which the level is measured again (see LIVE_UPDATE_DELAY_MS)."""
        if self._parameterNode is not None and self._parameterNode.autoUpdate and self._liveUpdateTimer:
            self._liveUpdateTimer.start()

    def onLiveUpdateTimeout(self) -> None:
        """Measure the current level from its segments as they are now, if it has any yet."""
        parameterNode = self._parameterNode
        if parameterNode is None or not parameterNode.inputVolume or not parameterNode.segmentation:
            return
        self._writingSegments = True
        try:
            measurement = self.logic.remeasure_level(
                parameterNode.inputVolume,
                parameterNode.endplatePoints,
                parameterNode.segmentation,
                level=parameterNode.level,
                side=parameterNode.side,
                parameters=measurementParameters(parameterNode),
            )
        except CementLeakageError as error:
            self.ui.flagLabel.text = html.escape(str(error))
            return
        finally:
            self._writingSegments = False
        if measurement is not None:
            self.showMeasurement(measurement)

    # Segmentation and manual correction

    def onApplyButton(self) -> None:
        """Measure the vertebra and show the result; bad input is shown as a one-line message."""
        with slicer.util.tryWithErrorDisplay(_("Cement could not be measured."), waitCursor=True):
            measurement = self.measure()
            self.showMeasurement(measurement)

    def ensureSegmentationNode(self):
        """The case's segmentation node, created (with display nodes) if the panel has none."""
        parameterNode = self._parameterNode
        if not parameterNode.segmentation:
            segmentationNode = slicer.mrmlScene.AddNewNodeByClass(
                "vtkMRMLSegmentationNode", slicer.mrmlScene.GenerateUniqueName(_("Cement measurement"))
            )
            segmentationNode.CreateDefaultDisplayNodes()
            parameterNode.segmentation = segmentationNode
        return parameterNode.segmentation

    def measure(self):
        """Run the library on the panel's choices and return its VertebraMeasurement."""
        parameterNode = self._parameterNode
        parameters = measurementParameters(parameterNode)
        segmentationNode = self.ensureSegmentationNode()
        self._writingSegments = True
        try:
            if parameterNode.useExistingSegments:
                return self.logic.measure_segments(
                    parameterNode.inputVolume,
                    parameterNode.endplatePoints,
                    segmentationNode,
                    level=parameterNode.level,
                    side=parameterNode.side,
                    parameters=parameters,
                    body_segment=self.selectedSegmentName(self.ui.bodySegmentSelector, _("vertebral body")),
                    cement_segment=self.selectedSegmentName(self.ui.cementSegmentSelector, _("cement")),
                )
            if parameterNode.overwrite:
                # Replacing segments the user may have edited: Segment Editor's Undo brings them back.
                self.ui.segmentEditorWidget.setSegmentationNode(segmentationNode)
                self.ui.segmentEditorWidget.saveStateForUndo()
            return self.logic.segment_and_measure(
                parameterNode.inputVolume,
                parameterNode.endplatePoints,
                segmentationNode,
                level=parameterNode.level,
                side=parameterNode.side,
                parameters=parameters,
                overwrite=parameterNode.overwrite,
            )
        finally:
            self._writingSegments = False

    def onPresetButton(self, presetKey: str) -> None:
        """Open one of Slicer's Segment Editor effects on this level's segment, with our preset."""
        from CementLeakageLib.editor_presets import editor_presets

        with slicer.util.tryWithErrorDisplay(_("The editing tool could not be opened."), waitCursor=True):
            parameterNode = self._parameterNode
            if not parameterNode.inputVolume:
                raise CementLeakageError(_("select the postoperative CT first"))
            preset = editor_presets(measurementParameters(parameterNode))[presetKey]
            segmentationNode = self.ensureSegmentationNode()
            segmentId = self.logic.editing_segment_id(
                segmentationNode, parameterNode.inputVolume, parameterNode.level, preset.segment_role
            )
            self.ui.correctionCollapsibleButton.collapsed = False
            editor = self.ui.segmentEditorWidget
            editor.setSegmentationNode(segmentationNode)
            editor.setSourceVolumeNode(parameterNode.inputVolume)
            if segmentId:
                editor.setCurrentSegmentID(segmentId)
            self.logic.store_editor_preset(preset)
            editor.setActiveEffectByName(preset.effect_name)
            effect = editor.activeEffect()
            if effect is not None:
                for name, value in preset.parameters.items():
                    effect.setParameter(name, value)

    def selectedSegmentName(self, segmentSelector, role: str) -> str:
        """Name of the segment chosen in ``segmentSelector``; ``role`` names it in the error message."""
        segmentationNode = segmentSelector.currentNode()
        segmentId = segmentSelector.currentSegmentID()
        segment = (
            segmentationNode.GetSegmentation().GetSegment(segmentId)
            if segmentationNode and segmentId
            else None
        )
        if segment is None:
            raise CementLeakageError(
                _(
                    "select the {role} segment, or clear 'Measure my segments' to segment automatically"
                ).format(role=role)
            )
        return segment.GetName()

    # Results and export

    def showMeasurement(self, measurement) -> None:
        """Show the flag, the volumes and any warning of ``measurement``, and its results table."""
        if measurement.exceeds_cutoff:
            verdict = _("above the {cutoff:.2f}% cut-off").format(cutoff=measurement.cutoff_pct)
            colour = "#b03a2e"
        else:
            verdict = _("not above the {cutoff:.2f}% cut-off").format(cutoff=measurement.cutoff_pct)
            colour = "#1e8449"
        lines = [
            _("<b>{level}: PSBCV/VBV {ratio:.2f}% is {verdict}.</b>").format(
                level=html.escape(measurement.level), ratio=measurement.psbcv_vbv_pct, verdict=verdict
            ),
            _("VBV {vbv:.2f} cm³, BCV {bcv:.2f} cm³ ({bcvRatio:.1f}%), PSBCV {psbcv:.2f} cm³.").format(
                vbv=measurement.vbv_cm3,
                bcv=measurement.bcv_cm3,
                bcvRatio=measurement.bcv_vbv_pct,
                psbcv=measurement.psbcv_cm3,
            ),
            html.escape(measurement.interpretation),
        ]
        lines += [html.escape(warning) for warning in measurement.warnings]
        self.ui.flagLabel.text = f'<span style="color:{colour}">{lines[0]}</span><br>' + "<br>".join(
            lines[1:]
        )
        self.ui.flagLabel.toolTip = _(
            "Cut-off {cutoff:.2f}%: sensitivity {sensitivity:.1f}%, specificity {specificity:.1f}%, "
            "AUC {auc:.3f} ({source})."
        ).format(
            cutoff=measurement.cutoff_pct,
            sensitivity=measurement.cutoff_sensitivity_pct,
            specificity=measurement.cutoff_specificity_pct,
            auc=measurement.cutoff_auc,
            source=measurement.cutoff_source,
        )
        # The logic adds the measurement as a row of its results table; show that table.
        self._parameterNode.resultsTable = self.logic.results_table_node()
        self.ui.exportButton.enabled = True
        logging.info(
            "CementLeakage %s: PSBCV/VBV %.2f%%, flag %s",
            measurement.level,
            measurement.psbcv_vbv_pct,
            measurement.exceeds_cutoff,
        )

    def onPlanButton(self) -> None:
        """Show the level's cement budget under each published rule (preoperative CT)."""
        with slicer.util.tryWithErrorDisplay(_("The cement budget could not be computed."), waitCursor=True):
            parameterNode = self._parameterNode
            plan = self.logic.plan_level(
                parameterNode.inputVolume,
                parameterNode.endplatePoints,
                level=parameterNode.level,
                side=parameterNode.side,
                parameters=measurementParameters(parameterNode),
            )
            self.showPlan(plan)

    def showPlan(self, plan: dict) -> None:
        """Show a plan's VBV and one line per rule: the most cement (mL) under its threshold."""
        lines = [
            _("<b>{level}: VBV {vbv:.2f} cm³ (preoperative)</b>").format(
                level=html.escape(plan["level"]), vbv=plan["vbv_cm3"]
            )
        ]
        for budget in plan["budgets"]:
            unverified = "" if budget["verified"] else _(" (unverified rule)")
            lines.append(
                _("{rule}: at most {ml:.2f} mL of {what}{unverified}").format(
                    rule=html.escape(budget["rule"]),
                    ml=budget["max_cement_ml"],
                    what=html.escape(budget["applies_to"]),
                    unverified=unverified,
                )
            )
        lines += [html.escape(warning) for warning in plan["warnings"]]
        self.ui.flagLabel.text = "<br>".join(lines)

    def onExportButton(self) -> None:
        """Write the case's audit bundle into a new folder under the chosen folder."""
        from CementLeakageLib.case_export import default_bundle_name

        with slicer.util.tryWithErrorDisplay(_("The case could not be exported."), waitCursor=True):
            folder = os.path.join(self.ui.exportDirectoryButton.directory, default_bundle_name())
            paths = self.exportCase(folder)
            slicer.util.showStatusMessage(
                _("Exported {count} files to {folder}").format(count=len(paths), folder=folder), 5000
            )

    def exportCase(self, folder: str, force: bool = False) -> list:
        """Write the audit bundle of every vertebra measured in this case into ``folder``."""
        parameterNode = self._parameterNode
        return self.logic.export_case(
            folder, parameterNode.inputVolume, parameterNode.segmentation, force=force
        )


#
# CementLeakageTest
#


class CementLeakageTest(ScriptedLoadableModuleTest):
    """Self-test run by Slicer (Developer mode "Reload and Test", or ctest in an extension build)."""

    def setUp(self):
        """Start from an empty scene."""
        slicer.mrmlScene.Clear()

    def runTest(self):
        """Run every test of the module."""
        self.setUp()
        self.test_PhantomMeasurementMatchesTruth()
        self.setUp()
        self.test_PanelWorkflowOnPhantom()

    def test_PhantomMeasurementMatchesTruth(self):
        """The module's logic measures a synthetic vertebra as its analytic truth says.

        VBV, BCV and PSBCV within 3% of the phantom's true volumes, PSBCV/VBV% within 0.5
        percentage points, and the same flag.
        """
        from CementLeakageLib.logic import CementLeakageLogic
        from CementLeakageLib.mrml_nodes import add_endplate_markups, add_volume_node
        from CementLeakageLib.phantom import PhantomSpec, make_phantom

        self.delayDisplay("Building the phantom")
        spec = PhantomSpec(level="L1", side="left")
        phantom = make_phantom(spec)
        truth = phantom.truth
        scene = slicer.mrmlScene
        volumeNode = add_volume_node(scene, phantom.ct, "CementLeakage phantom")
        markupsNode = add_endplate_markups(scene, truth.upper_ras, truth.lower_ras, spec.level)
        segmentationNode = scene.AddNewNodeByClass(
            "vtkMRMLSegmentationNode", "CementLeakage phantom segments"
        )

        self.delayDisplay("Segmenting and measuring")
        logic = CementLeakageLogic(scene)
        measurement = logic.segment_and_measure(
            volumeNode, markupsNode, segmentationNode, level=spec.level, side=spec.side
        )

        self.assertAlmostEqual(measurement.vbv_cm3, truth.vbv_cm3, delta=0.03 * truth.vbv_cm3)
        self.assertAlmostEqual(measurement.bcv_cm3, truth.bcv_cm3, delta=0.03 * truth.bcv_cm3)
        self.assertAlmostEqual(measurement.psbcv_cm3, truth.psbcv_cm3, delta=0.03 * truth.psbcv_cm3)
        self.assertAlmostEqual(measurement.psbcv_vbv_pct, truth.psbcv_vbv_pct, delta=0.5)
        self.assertEqual(measurement.exceeds_cutoff, truth.exceeds_cutoff)
        self.delayDisplay("Test passed")

    def test_PanelWorkflowOnPhantom(self):
        """The panel's workflow, driven through the widget, gives the phantom's numbers.

        Select the CT, level and side; place the two endplate points (labelled and the split
        plane drawn as they are placed); click "Segment and measure"; drag a point and let the
        live update measure again; export the case. Volumes within 3% of the analytic truth,
        the ratio within 0.5 points, the plane equal to the library's, the bundle equal to the
        table.
        """
        import json

        import numpy as np

        from CementLeakageLib.mrml_nodes import add_volume_node, endplate_labels, endplate_points
        from CementLeakageLib.phantom import PhantomSpec, make_phantom
        from CementLeakageLib.split_plane import split_plane_from_endplates
        from CementLeakageLib.split_plane_node import find_split_plane_node, split_plane_of_node

        self.delayDisplay("Building the phantom")
        spec = PhantomSpec(level="L2", side="right")
        phantom = make_phantom(spec)
        truth = phantom.truth
        volumeNode = add_volume_node(slicer.mrmlScene, phantom.ct, "CementLeakage phantom")

        # The panel as Slicer builds it (also without a main window, e.g. --no-main-window).
        widget = slicer.modules.cementleakage.widgetRepresentation().self()
        widget.enter()
        parameterNode = widget._parameterNode
        parameterNode.inputVolume = volumeNode
        parameterNode.level = spec.level
        parameterNode.side = spec.side
        slicer.app.processEvents()

        self.delayDisplay("Placing the endplate midpoints")
        pointsNode = parameterNode.endplatePoints
        self.assertEqual(pointsNode.GetName(), "L2 endplate midpoints")
        self.assertIs(widget.ui.endplatePlaceWidget.currentNode(), pointsNode)
        pointsNode.AddControlPoint(vtk.vtkVector3d(*truth.upper_ras))
        pointsNode.AddControlPoint(vtk.vtkVector3d(*truth.lower_ras))
        slicer.app.processEvents()
        labels = [pointsNode.GetNthControlPointLabel(i) for i in range(2)]
        self.assertEqual(labels, list(endplate_labels(spec.level)))
        planeNode = find_split_plane_node(slicer.mrmlScene, spec.level)
        self.assertIsNotNone(planeNode)
        center, normal = split_plane_of_node(planeNode)
        plane = split_plane_from_endplates(truth.upper_ras, truth.lower_ras, spec.side)
        self.assertTrue(np.allclose(normal, plane.normal_ras, atol=1e-6))
        self.assertTrue(widget.ui.applyButton.enabled)

        self.delayDisplay("Segmenting and measuring")
        widget.ui.applyButton.click()
        slicer.app.processEvents()
        table = parameterNode.resultsTable
        self.assertEqual(table.GetNumberOfRows(), 1)
        header = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
        row = {name: table.GetCellText(0, c) for c, name in enumerate(header)}
        self.assertAlmostEqual(float(row["VBV (cm3)"]), truth.vbv_cm3, delta=0.03 * truth.vbv_cm3)
        self.assertAlmostEqual(float(row["BCV (cm3)"]), truth.bcv_cm3, delta=0.03 * truth.bcv_cm3)
        self.assertAlmostEqual(float(row["PSBCV (cm3)"]), truth.psbcv_cm3, delta=0.03 * truth.psbcv_cm3)
        self.assertAlmostEqual(float(row["PSBCV/VBV (%)"]), truth.psbcv_vbv_pct, delta=0.5)
        self.assertEqual(row["Above cut-off"], "yes" if truth.exceeds_cutoff else "no")
        self.assertIn("sensitivity", widget.ui.flagLabel.toolTip)

        self.delayDisplay("Dragging the upper point: the plane and the numbers follow")
        first = float(row["PSBCV (cm3)"])
        pointsNode.SetNthControlPointPositionWorld(
            0, truth.upper_ras[0] - 4.0, truth.upper_ras[1], truth.upper_ras[2]
        )
        slicer.app.processEvents()
        self.assertTrue(widget._liveUpdateTimer.isActive())
        widget._liveUpdateTimer.stop()
        widget.onLiveUpdateTimeout()
        moved = endplate_points(pointsNode, spec.level)
        center, normal = split_plane_of_node(planeNode)
        self.assertTrue(np.allclose(center, (moved[0] + moved[1]) / 2.0, atol=1e-6))
        updated = self.logicMeasurement(widget, spec.level)
        self.assertAlmostEqual(float(table.GetCellText(0, 4)), updated.psbcv_cm3, delta=5e-4)
        self.assertNotAlmostEqual(updated.psbcv_cm3, first, delta=1e-3)

        self.delayDisplay("Exporting the case")
        folder = os.path.join(tempfile.mkdtemp(prefix="CementLeakageSelfTest-"), "case")
        widget.exportCase(folder)
        with open(os.path.join(folder, "results.json"), encoding="utf-8") as handle:
            record = json.load(handle)["levels"][0]
        self.assertAlmostEqual(record["psbcv_cm3"], updated.psbcv_cm3, delta=1e-12)
        self.assertTrue(os.path.isfile(os.path.join(folder, "segmentation.seg.nrrd")))
        self.delayDisplay("Test passed")

    def logicMeasurement(self, widget, level: str):
        """The panel logic's latest measurement of ``level``."""
        return next(m for m in widget.logic.measurements() if m.level == level)
