"""3D Slicer module: puncture-side bone cement volume ratio (PSBCV/VBV%) after vertebroplasty.

The measurement itself lives in the ``CementLeakageLib`` package next to this file (Slicer puts
this folder on ``sys.path``). This file connects it to Slicer: the module description, the
parameter node, the panel and the self-test. It is loaded by Slicer 5.8 and newer, whose oldest
supported Python is 3.9.
"""

import html
import logging
from typing import Annotated, Optional

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


#
# CementLeakageWidget
#


class CementLeakageWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: inputs, segmentation choices, thresholds, Apply and the results."""

    def __init__(self, parent=None) -> None:
        """Called when the user opens the module the first time, before ``setup``."""
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        """Build the panel from Resources/UI/CementLeakage.ui and connect it."""
        ScriptedLoadableModuleWidget.setup(self)

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CementLeakage.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        # The .ui file connects the top widget's mrmlSceneChanged(vtkMRMLScene*) signal to the
        # setMRMLScene slot of every MRML widget.
        uiWidget.setMRMLScene(slicer.mrmlScene)

        from CementLeakageLib.logic import CementLeakageLogic

        self.logic = CementLeakageLogic(slicer.mrmlScene)

        self.ui.endplatePointsWidget.setNodeBaseName(_("Endplate midpoints"))

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.endplatePointsWidget.connect("markupsNodeChanged()", self.onEndplatePointsNodeChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes and the panel is destroyed."""
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
        """The scene is about to close: its parameter node goes with it."""
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        """The scene was closed: give the open panel a new parameter node."""
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        """Follow the scene's parameter node; fill empty inputs with what the scene and panel show."""
        self.setParameterNode(getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode
        if not self._parameterNode.endplatePoints and self.ui.endplatePointsWidget.currentNode():
            self._parameterNode.endplatePoints = self.ui.endplatePointsWidget.currentNode()

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
        if self.ui.endplatePointsWidget.currentNode() != parameterNode.endplatePoints:
            self.ui.endplatePointsWidget.setCurrentNode(parameterNode.endplatePoints)
        for segmentSelector in (self.ui.bodySegmentSelector, self.ui.cementSegmentSelector):
            if segmentSelector.currentNode() != parameterNode.segmentation:
                segmentSelector.setCurrentNode(parameterNode.segmentation)
            segmentSelector.enabled = parameterNode.useExistingSegments
        self.ui.overwriteCheckBox.enabled = not parameterNode.useExistingSegments
        self.ui.resultsTableView.setMRMLTableNode(parameterNode.resultsTable)

        if not parameterNode.inputVolume:
            self.ui.applyButton.toolTip = _("Select the postoperative CT.")
            self.ui.applyButton.enabled = False
        elif not parameterNode.endplatePoints:
            self.ui.applyButton.toolTip = _("Place the upper and lower endplate midpoints.")
            self.ui.applyButton.enabled = False
        else:
            self.ui.applyButton.toolTip = _("Measure the cement of the selected vertebra.")
            self.ui.applyButton.enabled = True

    def onEndplatePointsNodeChanged(self) -> None:
        """The markups widget's node selector changed: store the choice in the parameter node."""
        if self._parameterNode is not None:
            self._parameterNode.endplatePoints = self.ui.endplatePointsWidget.currentNode()

    def onApplyButton(self) -> None:
        """Measure the vertebra and show the result; bad input is shown as a one-line message."""
        with slicer.util.tryWithErrorDisplay(_("Cement could not be measured."), waitCursor=True):
            measurement = self.measure()
            self.showMeasurement(measurement)

    def measure(self):
        """Run the library on the panel's choices and return its VertebraMeasurement."""
        parameterNode = self._parameterNode
        parameters = measurementParameters(parameterNode)
        if not parameterNode.segmentation:
            segmentationNode = slicer.mrmlScene.AddNewNodeByClass(
                "vtkMRMLSegmentationNode", slicer.mrmlScene.GenerateUniqueName(_("Cement measurement"))
            )
            segmentationNode.CreateDefaultDisplayNodes()
            parameterNode.segmentation = segmentationNode
        if parameterNode.useExistingSegments:
            return self.logic.measure_segments(
                parameterNode.inputVolume,
                parameterNode.endplatePoints,
                parameterNode.segmentation,
                level=parameterNode.level,
                side=parameterNode.side,
                parameters=parameters,
                body_segment=self.selectedSegmentName(self.ui.bodySegmentSelector, _("vertebral body")),
                cement_segment=self.selectedSegmentName(self.ui.cementSegmentSelector, _("cement")),
            )
        return self.logic.segment_and_measure(
            parameterNode.inputVolume,
            parameterNode.endplatePoints,
            parameterNode.segmentation,
            level=parameterNode.level,
            side=parameterNode.side,
            parameters=parameters,
            overwrite=parameterNode.overwrite,
        )

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
        # The logic adds the measurement as a row of its results table; show that table.
        self._parameterNode.resultsTable = self.logic.results_table_node()
        logging.info(
            "CementLeakage %s: PSBCV/VBV %.2f%%, flag %s",
            measurement.level,
            measurement.psbcv_vbv_pct,
            measurement.exceeds_cutoff,
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
