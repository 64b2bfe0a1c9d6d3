"""XAIMedSlicer: explain what MONAI 3D networks see in CT and MRI volumes.

Thin module layer: widget wiring, the parameter node, dependency installation, the background worker's
progress. The work itself lives in the Logic package ``XAIMedSlicerLib`` (``Logic/`` next to this file):
``slicerlogic.ExplainSession`` (held by XAIMedSlicerLogic as ``logic.session``) starts and finishes jobs
and drives the results; ``worker`` runs the explanation in a separate PythonSlicer process; ``scene``
builds and displays the MRML nodes.
"""

import enum
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import qt
import slicer
import vtk
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLMarkupsROINode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.parameterNodeWrapper.guiConnectors import GuiConnector, parameterNodeGuiConnector
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

_LOGIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Logic")
if _LOGIC_DIR not in sys.path:
    sys.path.insert(0, _LOGIC_DIR)

# Registered attribution methods (Testing/test_module_ui.py checks this against the method registry,
# which cannot be imported here without importing PyTorch).
METHODS = (
    "gradcam",
    "gradcampp",
    "ig",
    "input_x_gradient",
    "occlusion",
    "saliency",
    "smoothgrad",
    "guided_backprop",
    "attention_rollout",
    "attention_relevance",
)
DEVICES = ("auto", "cuda", "cpu")
POLL_MS = 200


#
# XAIMedSlicer
#


class XAIMedSlicer(ScriptedLoadableModule):
    """Module metadata. Uses ScriptedLoadableModule base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("XAI Med Slicer")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Informatics")]
        self.parent.dependencies = []
        self.parent.contributors = ["XAIMedSlicer developers"]
        self.parent.helpText = _(
            "Explains what a MONAI 3D network sees in a CT or MRI volume. Pick the scan, a model (model card,"
            " MONAI bundle folder, TorchScript file or MeshNet folder), a method (Grad-CAM, Integrated"
            " Gradients, occlusion and others) and a target, then click Explain. The network runs in a background process that can"
            " be cancelled; the attribution appears as a colour-mapped overlay in the slice views and in 3D,"
            " with a table of the evidence in each anatomical structure. Select a row to go to that"
            " structure's evidence. See the"
            ' <a href="https://github.com/XAIMedSlicer/XAIMedSlicer#readme">documentation</a>.'
        )
        self.parent.acknowledgementText = _(
            "XAIMedSlicer builds on 3D Slicer, MONAI, PyTorch, Captum and SimpleITK. Attribution maps are"
            " explanations of a model, not diagnoses."
        )
        slicer.app.connect("startupCompleted()", registerSampleData)


#
# Register sample data sets in Sample Data module
#


def registerSampleData():
    """Offer the MRHead scan of Slicer's testing data (small, with a checksum) for trying the module."""
    import SampleData

    iconsPath = os.path.join(os.path.dirname(__file__), "Resources/Icons")
    sha = "cc211f0dfd9a05ca3841ce1141b292898b2dd2d3f08286affadf823a7e58df93"
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="XAIMedSlicer",
        sampleName="XAIMedSlicerMRHead",
        thumbnailFileName=os.path.join(iconsPath, "XAIMedSlicer.png"),
        uris=f"https://github.com/Slicer/SlicerTestingData/releases/download/SHA256/{sha}",
        fileNames="XAIMedSlicerMRHead.nrrd",
        checksums=f"SHA256:{sha}",
        nodeNames="XAIMedSlicerMRHead",
    )


#
# XAIMedSlicerParameterNode
#


class TargetRegion(enum.Enum):
    """Where a segmentation network's class logits are summed."""

    PREDICTED = "predicted"
    SEGMENT = "mask"
    BOX = "box"
    POINT = "point"

    def label(self):
        return {
            TargetRegion.PREDICTED: _("Predicted mask of the class"),
            TargetRegion.SEGMENT: _("Inside a segment"),
            TargetRegion.BOX: _("Inside a box (ROI)"),
            TargetRegion.POINT: _("Component at a point"),
        }[self]


class ColorMap(enum.Enum):
    AUTO = "auto"
    SEQUENTIAL = "sequential"
    DIVERGING = "diverging"

    def label(self):
        return {
            ColorMap.AUTO: _("Automatic"),
            ColorMap.SEQUENTIAL: _("Sequential (inferno)"),
            ColorMap.DIVERGING: _("Diverging (blue-white-red)"),
        }[self]


@parameterNodeWrapper
class XAIMedSlicerParameterNode:
    """Everything the user chose; every field is bound to a widget of the .ui (SlicerParameterName)."""

    inputVolume: vtkMRMLScalarVolumeNode
    modelPath: Path
    method: Annotated[str, Choice(list(METHODS))] = "gradcam"
    device: Annotated[str, Choice(list(DEVICES))] = "auto"
    targetClass: str = ""
    targetRegion: TargetRegion = TargetRegion.PREDICTED
    targetSegmentation: vtkMRMLSegmentationNode
    targetSegmentID: str = ""
    targetROI: vtkMRMLMarkupsROINode
    targetPoint: vtkMRMLMarkupsFiducialNode
    structures: vtkMRMLSegmentationNode
    labelMapPath: Path
    labelNamesPath: Path
    segmentationModelPath: Path
    result: vtkMRMLScalarVolumeNode
    colorMap: ColorMap = ColorMap.AUTO
    opacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    threshold: Annotated[float, WithinRange(0.0, 1.0)] = 0.1
    showLegend: bool = True
    absoluteValue: bool = False
    volumeRendering: bool = False
    onlyInsideSelected: bool = False
    igSteps: Annotated[int, WithinRange(2, 512)] = 32
    chunkSize: Annotated[int, WithinRange(0, 256)] = 0
    memoryBudgetMB: Annotated[float, WithinRange(0.0, 1000000.0)] = 0.0
    seed: Annotated[int, WithinRange(0, 2147483647)] = 0
    validateMap: bool = True


def _isSet(path) -> bool:
    return path is not None and str(path) not in ("", ".")


def _plainType(datatype):
    import typing

    return typing.get_args(datatype)[0] if typing.get_origin(datatype) is Annotated else datatype


@parameterNodeGuiConnector
class SegmentSelectorToSegmentIDConnector(GuiConnector):
    """Binds a qMRMLSegmentSelectorWidget's current segment to a ``str`` parameter (the segment ID)."""

    @staticmethod
    def canRepresent(widget, datatype) -> bool:
        return type(widget) is slicer.qMRMLSegmentSelectorWidget and _plainType(datatype) is str

    @staticmethod
    def create(widget, datatype):
        if SegmentSelectorToSegmentIDConnector.canRepresent(widget, datatype):
            return SegmentSelectorToSegmentIDConnector(widget)
        return None

    def __init__(self, widget):
        super().__init__()
        self._widget = widget

    def _connect(self):
        self._widget.connect("currentSegmentChanged(QString)", self.changed)

    def _disconnect(self):
        self._widget.disconnect("currentSegmentChanged(QString)", self.changed)

    def widget(self):
        return self._widget

    def read(self) -> str:
        return self._widget.currentSegmentID() or ""

    def write(self, value: str) -> None:
        self._widget.setCurrentSegmentID(value or "")


#
# XAIMedSlicerWidget
#


class XAIMedSlicerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """GUI: binds widgets to the parameter node, starts and polls the worker, syncs table and segments."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None  # the running XAIMedSlicerLib.slicerlogic.SessionJob
        self._deviceProbe = None  # XAIMedSlicerLib.slicerlogic.devices.DeviceProbe
        self._syncing = False
        self._observedEditorNodes = []
        self._displayState = None
        self._tableSelectionModel = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/XAIMedSlicer.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = XAIMedSlicerLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.resultSelector.addAttribute("vtkMRMLScalarVolumeNode", "XAIMed.role", "attribution")
        self.ui.targetPointPlaceWidget.placeMultipleMarkups = (
            slicer.qSlicerMarkupsPlaceWidget.ForcePlaceSingleMarkup
        )
        self.ui.targetPointPlaceWidget.setMRMLScene(slicer.mrmlScene)
        self.ui.structureTableView.setSelectionBehavior(qt.QAbstractItemView.SelectRows)

        self.ui.explainButton.connect("clicked(bool)", self.onExplainButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.modelFolderButton.connect("clicked(bool)", self.onModelFolderButton)
        self.ui.importLabelMapButton.connect("clicked(bool)", self.onImportLabelMapButton)
        self.ui.segmentWithModelButton.connect("clicked(bool)", self.onSegmentWithModelButton)
        self.ui.targetSegmentationSelector.connect(
            "currentNodeChanged(vtkMRMLNode*)", self.onTargetSegmentationChanged
        )
        self.ui.targetPointSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onTargetPointChanged)
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self.onModelPathChanged)
        self.ui.segmentsTableView.connect(
            "selectionChanged(QItemSelection,QItemSelection)", self.onSegmentsSelected
        )

        self._pollTimer = qt.QTimer()
        self._pollTimer.setInterval(POLL_MS)
        self._pollTimer.connect("timeout()", self.onPollJob)
        self._deviceTimer = qt.QTimer()
        self._deviceTimer.setInterval(500)
        self._deviceTimer.connect("timeout()", self.onDeviceProbeTimer)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        if self._job is not None:
            self._job.process.cancel()
            self._job.cleanup()
            self._job = None
        self._pollTimer.stop()
        self._deviceTimer.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()
        self._startDeviceProbe()
        self._observeSegmentEditorNodes()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified
            )

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = self.logic.session.default_input_volume()

    def setParameterNode(self, inputParameterNode: XAIMedSlicerParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified
            )
        self._parameterNode = inputParameterNode
        self._displayState = None
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    # ---- state of the GUI ---------------------------------------------------------------------
    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        running = self._job is not None
        ready = bool(p.inputVolume) and _isSet(p.modelPath)
        self.ui.explainButton.enabled = ready and not running
        self.ui.explainButton.toolTip = (
            _("Compute the attribution in a background process.")
            if ready
            else _("Select an input volume and a model.")
        )
        self.ui.cancelButton.enabled = running
        self.ui.segmentWithModelButton.enabled = (
            bool(p.inputVolume) and _isSet(p.segmentationModelPath) and not running
        )
        self.ui.importLabelMapButton.enabled = bool(p.inputVolume) and _isSet(p.labelMapPath)
        region = p.targetRegion
        for widget, shown in (
            (self.ui.targetSegmentRow, region == TargetRegion.SEGMENT),
            (self.ui.targetRoiSelector, region == TargetRegion.BOX),
            (self.ui.targetPointRow, region == TargetRegion.POINT),
        ):
            widget.enabled = shown
        if self.ui.targetSegmentSelector.currentNode() != p.targetSegmentation:
            self.ui.targetSegmentSelector.setCurrentNode(p.targetSegmentation)
        self._showResult(p.result)

    def _showResult(self, node) -> None:
        """Table, segments and overlay of the selected result (re-applied only when a display setting changed)."""
        if self._syncing:
            return
        self._showFlags(node)
        from XAIMedSlicerLib.scene import DisplaySettings

        state = (node.GetID() if node else None, DisplaySettings.from_parameters(self._parameterNode))
        if state == self._displayState:
            return
        self._displayState = state
        bundle = self.logic.session.bundle_for_node(node)
        self.ui.structureTableView.setMRMLTableNode(bundle.table_node if bundle else None)
        self.ui.segmentsTableView.setSegmentationNode(bundle.segmentation_node if bundle else None)
        if bundle is None:
            return
        selectionModel = self.ui.structureTableView.selectionModel()
        if selectionModel is not None and self._tableSelectionModel != selectionModel:
            selectionModel.connect(
                "selectionChanged(QItemSelection,QItemSelection)", self.onTableRowsSelected
            )
            self._tableSelectionModel = selectionModel
        with slicer.util.tryWithErrorDisplay(_("Failed to update the overlay."), waitCursor=False):
            self.logic.session.apply_display(bundle, self._parameterNode, self._selectedSegmentIDs())

    def _showFlags(self, node) -> None:
        """The selected map's sanity and faithfulness verdict; red when the map fails the checks."""
        from XAIMedSlicerLib.scene.flags import get_flags

        flags = get_flags(node)
        if flags is None:
            self.ui.flagsLabel.text = _("Checks: not run for this map.") if node else ""
            self.ui.flagsLabel.styleSheet = ""
            return
        prefix = _("FAILS CHECKS: ") if flags["failed"] else _("Checks: ")
        self.ui.flagsLabel.text = prefix + flags["text"]
        self.ui.flagsLabel.styleSheet = "color: #c62828; font-weight: bold;" if flags["failed"] else ""

    # ---- model and devices --------------------------------------------------------------------
    def onModelFolderButton(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(
            self.parent, _("Choose a MONAI bundle or MeshNet folder"), str(self._parameterNode.modelPath)
        )
        if folder:
            self._parameterNode.modelPath = Path(folder)

    def onModelPathChanged(self, path: str) -> None:
        if not _isSet(path):
            self.ui.modelInfoLabel.text = _("No model selected.")
            return
        try:
            summary = self.logic.session.model_summary(path)
        except Exception as exc:  # XAIError: one line for the label
            self.ui.modelInfoLabel.text = str(exc)
            return
        classes = summary["classes"]
        self.ui.modelInfoLabel.text = _("{kind}, task: {task}, classes: {classes}").format(
            kind=summary["kind"],
            task=summary["task"],
            classes=", ".join(classes) if classes else _("unknown until it runs"),
        )
        completer = qt.QCompleter(classes, self.ui.targetClassLineEdit)
        self.ui.targetClassLineEdit.setCompleter(completer)

    def _startDeviceProbe(self) -> None:
        if self._deviceProbe is None:
            from XAIMedSlicerLib.slicerlogic.devices import DeviceProbe

            self._deviceProbe = DeviceProbe().start()
            self._deviceTimer.start()

    def onDeviceProbeTimer(self) -> None:
        probe = self._deviceProbe
        if probe.devices is None:
            return
        self._deviceTimer.stop()
        self.ui.deviceInfoLabel.text = "; ".join(
            _("{name}: {free:.0f} MB free of {total:.0f} MB").format(
                name=d["name"], free=d["free_mb"], total=d["total_mb"]
            )
            for d in probe.gpus
        ) or (probe.error or _("No CUDA GPU found: the CPU is used."))

    # ---- running the worker -------------------------------------------------------------------
    def onExplainButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to start the explanation."), waitCursor=True):
            self.logic.ensureDependencies()
            self._startJob(self.logic.session.start_explain(self._parameterNode))

    def onSegmentWithModelButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to start the segmentation network."), waitCursor=True):
            self.logic.ensureDependencies()
            self._startJob(self.logic.session.start_segment(self._parameterNode))

    def _startJob(self, job) -> None:
        self._job = job
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = _("Starting the background process...")
        self._pollTimer.start()
        self._onParameterNodeModified()

    def onCancelButton(self) -> None:
        if self._job is not None:
            self._job.process.cancel()
            self.ui.statusLabel.text = _("Cancelling...")

    def onPollJob(self) -> None:
        job = self._job
        if job is None:
            self._pollTimer.stop()
            return
        percent, progress, outcome = job.poll()
        self.ui.progressBar.value = percent
        self.ui.statusLabel.text = _("{stage}: {message} ({elapsed:.0f} s)").format(
            stage=progress.get("stage"), message=progress.get("message"), elapsed=job.elapsed()
        )
        if outcome is None:
            return
        self._pollTimer.stop()
        self._job = None
        self.ui.statusLabel.text = outcome.message
        if outcome.status == "done":
            with slicer.util.tryWithErrorDisplay(_("Failed to load the result."), waitCursor=True):
                self.logic.session.finish_job(job, outcome, self._parameterNode)
                self.ui.progressBar.value = 100
                self.ui.statusLabel.text = _("Done in {seconds:.1f} s.").format(seconds=job.elapsed())
        elif outcome.status == "failed":
            slicer.util.errorDisplay(outcome.message, windowTitle=_("XAIMedSlicer"))
        job.cleanup()
        self._onParameterNodeModified()

    # ---- structures ---------------------------------------------------------------------------
    def onImportLabelMapButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to import the label map."), waitCursor=True):
            p = self._parameterNode
            names = p.labelNamesPath if _isSet(p.labelNamesPath) else None
            p.structures = self.logic.session.import_label_map(p.labelMapPath, names, p.inputVolume)

    def onTargetSegmentationChanged(self, node) -> None:
        self.ui.targetSegmentSelector.setCurrentNode(node)

    def onTargetPointChanged(self, node) -> None:
        self.ui.targetPointPlaceWidget.setCurrentNode(node)

    def _currentBundle(self):
        node = self._parameterNode.result if self._parameterNode else None
        return self.logic.session.bundle_for_node(node)

    def _selectedSegmentIDs(self) -> list:
        bundle = self._currentBundle()
        if bundle is None or bundle.table_node is None:
            return []
        return self.logic.session.segments_for_rows(bundle, self._selectedRows())

    def _selectedRows(self) -> list:
        model = self.ui.structureTableView.selectionModel()
        if model is None:
            return []
        return sorted({index.row() for index in model.selectedIndexes()})

    def onTableRowsSelected(self, selected=None, deselected=None) -> None:
        """Rows -> centre the views on the first structure's peak, highlight it, select its segments."""
        bundle = self._currentBundle()
        rows = self._selectedRows()
        if self._syncing or bundle is None or not rows:
            return
        self._syncing = True
        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to go to the structure."), waitCursor=False):
                segmentIDs = self.logic.session.select_rows(bundle, rows, self._parameterNode)
                self.ui.segmentsTableView.setSelectedSegmentIDs(segmentIDs)
        finally:
            self._syncing = False

    def onSegmentsSelected(self, selected=None, deselected=None) -> None:
        """Segments selected in the segments table -> their rows in the structure table."""
        if self._syncing:
            return
        self._selectRowsForSegments(list(self.ui.segmentsTableView.selectedSegmentIDs()))

    def _selectRowsForSegments(self, segmentIDs) -> None:
        bundle = self._currentBundle()
        if bundle is None or not segmentIDs:
            return
        rows = self.logic.session.rows_for_segments(bundle, segmentIDs)
        model = self.ui.structureTableView.selectionModel()
        if not rows or model is None:
            return
        model.clearSelection()
        for row in rows:
            index = self.ui.structureTableView.model().index(row, 0)
            model.select(index, qt.QItemSelectionModel.Select | qt.QItemSelectionModel.Rows)
        self.ui.structureTableView.scrollTo(self.ui.structureTableView.model().index(rows[0], 0))

    def _observeSegmentEditorNodes(self) -> None:
        """Selecting a segment in the Segment Editor selects its row here."""
        for node in slicer.util.getNodesByClass("vtkMRMLSegmentEditorNode"):
            if node not in self._observedEditorNodes:
                self.addObserver(node, vtk.vtkCommand.ModifiedEvent, self.onSegmentEditorModified)
                self._observedEditorNodes.append(node)

    def onSegmentEditorModified(self, editorNode, event=None) -> None:
        bundle = self._currentBundle()
        if self._syncing or bundle is None or editorNode.GetSegmentationNode() != bundle.segmentation_node:
            return
        segmentID = editorNode.GetSelectedSegmentID()
        if segmentID:
            self._selectRowsForSegments([segmentID])


#
# XAIMedSlicerLogic
#


class XAIMedSlicerLogic(ScriptedLoadableModuleLogic):
    """Computation without the GUI, usable from scripts.

    ``self.session`` (``XAIMedSlicerLib.slicerlogic.ExplainSession``, Qt-free and tested headless) does
    the work: background jobs, structures, results, overlay display and structure navigation; its methods
    take the parameter node or an ``ExplainRequest`` with the same fields. This class adds what needs the
    application: the parameter node, installing dependencies, and the module's resources.
    """

    def __init__(self, ss=None) -> None:
        """``ss``: the XAIMedSlicerLib SlicerScene to work in (default: Slicer's scene and logics)."""
        ScriptedLoadableModuleLogic.__init__(self)
        from XAIMedSlicerLib.slicerlogic import ExplainSession

        self.session = ExplainSession(ss)

    def getParameterNode(self):
        return XAIMedSlicerParameterNode(super().getParameterNode())

    def process(self, p, *, timeout=None, onMessage=None, fault=None):
        """Blocking mode for scripts and tests: run the explanation, return (outcome, attribution node)."""
        return self.session.process(p, timeout=timeout, on_message=onMessage, fault=fault)

    def resourcePath(self, relativePath: str) -> str:
        return os.path.join(os.path.dirname(__file__), "Resources", relativePath)

    def ensureDependencies(self) -> None:
        """PyTorch (through the PyTorch extension when present), then Resources/requirements.txt."""
        from XAIMedSlicerLib.slicerlogic.requirements import missing_requirements, read_requirements

        try:
            import PyTorchUtils
        except ModuleNotFoundError:
            PyTorchUtils = None
        if PyTorchUtils is not None:
            torchLogic = PyTorchUtils.PyTorchUtilsLogic()
            if not torchLogic.torchInstalled():
                if torchLogic.installTorch(askConfirmation=True, torchVersionRequirement=">=2.1") is None:
                    raise ValueError(_("PyTorch is required. Install it from the PyTorch module."))
        wanted = read_requirements(self.resourcePath("requirements.txt"))
        wanted += [] if PyTorchUtils is not None else ["torch>=2.1"]
        try:
            import slicer.pydeps as pydeps  # Slicer 5.11 and later
        except ImportError:
            pydeps = getattr(slicer, "packaging", None)
        if pydeps is not None and hasattr(pydeps, "pip_ensure"):
            from packaging.requirements import Requirement

            pydeps.pip_ensure([Requirement(line) for line in wanted], requester="XAIMedSlicer")
        elif missing := missing_requirements(wanted):
            slicer.util.pip_install(" ".join(f'"{line}"' for line in missing))


#
# XAIMedSlicerTest
#


class XAIMedSlicerTest(ScriptedLoadableModuleTest):
    """Real tests inside 3D Slicer: a built volume, a tiny MONAI network, the real background worker."""

    def setUp(self):
        slicer.mrmlScene.Clear()
        self.tmp = Path(tempfile.mkdtemp(prefix="xaimed-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def runTest(self):
        self.setUp()
        self.test_ExplainInBackground()
        self.setUp()
        self.test_RerunOverlayAndStructures()
        self.setUp()
        self.test_CancelAndCrash()

    def _setUpRun(self, method="gradcam"):
        """The logic and its parameters on a 32x28x24 oblique scan with a bright blob and a tiny MONAI
        DenseNet saved as TorchScript (a real network with fixed random weights)."""
        import numpy as np
        import torch
        from monai.networks.nets import DenseNet

        array = np.random.default_rng(0).normal(0.0, 0.1, (24, 28, 32)).astype(np.float32)  # [k, j, i]
        array[10:14, 12:16, 18:22] += 3.0
        volumeNode = slicer.util.addVolumeFromArray(array, name="XAIMedTestScan")
        volumeNode.SetSpacing(1.2, 0.9, 2.0)
        volumeNode.SetOrigin(-12.0, 8.0, 30.0)
        cos, sin = np.cos(np.deg2rad(15.0)), np.sin(np.deg2rad(15.0))
        volumeNode.SetIJKToRASDirections(cos, -sin, 0.0, sin, cos, 0.0, 0.0, 0.0, 1.0)
        torch.manual_seed(0)
        net = DenseNet(
            spatial_dims=3, in_channels=1, out_channels=2, init_features=4, growth_rate=4, block_config=(2,)
        )
        modelPath = self.tmp / "tiny_densenet.ts"
        torch.jit.script(net.eval()).save(str(modelPath))
        logic = XAIMedSlicerLogic()
        p = logic.getParameterNode()
        p.inputVolume, p.modelPath, p.method, p.device, p.igSteps = volumeNode, modelPath, method, "cpu", 8
        return logic, p

    def test_ExplainInBackground(self):
        import numpy as np

        from XAIMedSlicerLib.explain import explain
        from XAIMedSlicerLib.scene import volume_from_node

        self.delayDisplay("Explaining a built volume in the background worker")
        XAIMedSlicerLogic().ensureDependencies()
        logic, p = self._setUpRun()
        before = slicer.util.arrayFromVolume(p.inputVolume).copy()
        messages = []
        outcome, node = logic.process(p, onMessage=messages.append, timeout=600)
        self.assertEqual(outcome.status, "done", outcome.message)
        progress = [m for m in messages if m.get("type") == "progress"]
        self.assertGreater(len(progress), 3)
        self.assertEqual(progress[-1]["fraction"], 1.0)
        # the overlay lies on the input's grid to 1e-4 mm, and the input is untouched
        a, b = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        p.inputVolume.GetIJKToRASMatrix(a)
        node.GetIJKToRASMatrix(b)
        arrayFromMatrix = slicer.util.arrayFromVTKMatrix
        self.assertTrue(np.allclose(arrayFromMatrix(a), arrayFromMatrix(b), atol=1e-4))
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(p.inputVolume), before))
        self.assertEqual(node.GetAttribute("XAIMed.role"), "attribution")
        self.assertEqual(node.GetAttribute("XAIMed.method"), "gradcam")
        # the background result is the pipeline's own result, computed here in Slicer's process
        direct = explain(volume_from_node(p.inputVolume), p.modelPath, "gradcam", device="cpu", seed=0)
        self.assertTrue(np.allclose(slicer.util.arrayFromVolume(node), direct.attribution.array, atol=1e-5))

    def test_RerunOverlayAndStructures(self):
        import numpy as np

        from XAIMedSlicerLib.scene.threshold import level_ranges, window_bounds

        self.delayDisplay("Re-running keeps earlier results; overlay controls; the structure table")
        logic, p = self._setUpRun()
        outcome, first = logic.process(p, timeout=600)
        self.assertEqual(outcome.status, "done", outcome.message)
        firstArray = slicer.util.arrayFromVolume(first).copy()
        labels = np.zeros(firstArray.shape, dtype=np.uint8)
        labels[8:16, 10:18, 16:24] = 1
        labels[:, :, :8] = 2
        labelNode = slicer.util.addVolumeFromArray(labels, nodeClassName="vtkMRMLLabelMapVolumeNode")
        labelNode.CopyOrientation(p.inputVolume)
        p.structures = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "XAIMedTestStructures")
        slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(labelNode, p.structures)
        p.method = "ig"
        outcome, node = logic.process(p, timeout=600)
        self.assertEqual(outcome.status, "done", outcome.message)
        self.assertNotEqual(first.GetID(), node.GetID())
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(first), firstArray))
        self.assertEqual(node.GetAttribute("XAIMed.signed"), "1")
        bundle = logic.session.bundle_for_node(node)
        self.assertEqual(bundle.table_node.GetNumberOfRows(), 2)
        # signed map: the threshold hides |value| < 0.25 max|value| through colour-table alpha
        p.opacity, p.threshold = 0.7, 0.25
        shown = logic.session.apply_display(bundle, p)
        values = slicer.util.arrayFromVolume(node)
        table = shown.GetDisplayNode().GetColorNode().GetLookupTable()
        start, end = level_ranges(*window_bounds(shown))  # the values each display level holds
        t = 0.25 * np.abs(values).max()
        alpha = np.array([table.GetTableValue(i)[3] for i in range(len(start))])
        self.assertTrue(np.array_equal(alpha == 0, (start > -t) & (end <= t)))
        composite = slicer.app.layoutManager().sliceWidget("Red").sliceLogic().GetSliceCompositeNode()
        self.assertAlmostEqual(composite.GetForegroundOpacity(), 0.7, places=6)
        self.assertEqual(composite.GetForegroundVolumeID(), shown.GetID())
        # |map| with a one-sided threshold, and 3D rendering
        p.absoluteValue, p.volumeRendering = True, True
        shown = logic.session.apply_display(bundle, p)
        self.assertTrue(np.allclose(slicer.util.arrayFromVolume(shown), np.abs(values)))
        expected = np.abs(values).min() + 0.25 * (np.abs(values).max() - np.abs(values).min())
        self.assertAlmostEqual(shown.GetDisplayNode().GetLowerThreshold(), expected, places=4)
        # the first structure: only inside its segment, and the views centred on its peak
        segmentIDs = logic.session.segments_for_rows(bundle, [0])
        self.assertEqual(logic.session.rows_for_segments(bundle, segmentIDs), [0])
        p.onlyInsideSelected = True
        masked = slicer.util.arrayFromVolume(logic.session.apply_display(bundle, p, segmentIDs))
        self.assertLessEqual(np.count_nonzero(masked), int(bundle.structures[0]["voxels"]))
        peak = logic.session.go_to_structure(bundle, 0)
        sliceNode = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceNode()
        center = [sliceNode.GetSliceToRAS().GetElement(i, 3) for i in range(3)]
        self.assertTrue(np.allclose(center, peak, atol=1e-3))

    def test_CancelAndCrash(self):
        self.delayDisplay("Cancel stops the worker; a crash is reported, Slicer keeps running")
        logic, p = self._setUpRun(method="ig")
        p.igSteps, p.chunkSize = 512, 1
        job = logic.session.start_explain(p)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and job.process.last_progress.get("stage") != "explain":
            job.process.poll()
            slicer.app.processEvents()
            time.sleep(0.05)
        start = time.monotonic()
        job.process.cancel()
        outcome = job.process.wait(timeout=10)
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertEqual(outcome.status, "cancelled")
        self.assertFalse(job.folder.out_dir.exists())
        job.cleanup()
        outcome, node = logic.process(p, fault="segfault", timeout=300)
        self.assertEqual(outcome.status, "failed")
        self.assertIsNone(node)
        self.assertIn("crashed", outcome.message)
        self.delayDisplay("Test passed")
