"""XAIMedSlicer: explain what MONAI 3D networks see in CT and MRI volumes.

Thin module layer: widget wiring, the parameter node, the background worker and its progress. The
work itself lives in the Logic package ``XAIMedSlicerLib`` (``Logic/`` next to this file):
``worker`` runs the explanation in a separate PythonSlicer process, ``scene`` builds the MRML nodes.
"""

import enum
import logging
import os
import sys
import tempfile
import threading
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
METHODS = ("gradcam", "gradcampp", "ig", "input_x_gradient", "occlusion", "saliency", "smoothgrad")
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
            " MONAI bundle folder, TorchScript file or MeshNet folder), a method (Grad-CAM or Integrated"
            " Gradients) and a target, then click Explain. The network runs in a background process that can"
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
        self._job = None  # the running XAIMedSlicerJob
        self._devices = None
        self._deviceThread = None
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
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            isScan = firstVolumeNode and not firstVolumeNode.IsA("vtkMRMLLabelMapVolumeNode")
            if isScan and firstVolumeNode.GetAttribute("XAIMed.role") is None:
                self._parameterNode.inputVolume = firstVolumeNode

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
        p = self._parameterNode
        state = (
            node.GetID() if node else None,
            p.colorMap,
            p.opacity,
            p.threshold,
            p.showLegend,
            p.absoluteValue,
            p.volumeRendering,
            p.onlyInsideSelected,
        )
        if state == self._displayState:
            return
        self._displayState = state
        bundle = self.logic.bundleForNode(node) if node else None
        self.ui.structureTableView.setMRMLTableNode(bundle.table_node if bundle else None)
        self.ui.segmentsTableView.setSegmentationNode(bundle.segmentation_node if bundle else None)
        self.ui.thresholdSlider.enabled = bundle is None or not bundle.signed or p.absoluteValue
        if bundle is None:
            return
        selectionModel = self.ui.structureTableView.selectionModel()
        if selectionModel is not None and self._tableSelectionModel != selectionModel:
            selectionModel.connect(
                "selectionChanged(QItemSelection,QItemSelection)", self.onTableRowsSelected
            )
            self._tableSelectionModel = selectionModel
        with slicer.util.tryWithErrorDisplay(_("Failed to update the overlay."), waitCursor=False):
            self.logic.applyDisplay(bundle, p, self._selectedSegmentIDs())

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
            summary = self.logic.modelSummary(path)
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
        if self._devices is not None or self._deviceThread is not None:
            return
        from XAIMedSlicerLib.worker import probe_devices

        def probe():
            self._devices = probe_devices()

        self._deviceThread = threading.Thread(target=probe, daemon=True)
        self._deviceThread.start()
        self._deviceTimer.start()

    def onDeviceProbeTimer(self) -> None:
        if self._devices is None:
            return
        self._deviceTimer.stop()
        gpus = [d for d in self._devices if d["device"].startswith("cuda")]
        if gpus:
            self.ui.deviceInfoLabel.text = "; ".join(
                _("{name}: {free:.0f} MB free of {total:.0f} MB").format(
                    name=d["name"], free=d["free_mb"], total=d["total_mb"]
                )
                for d in gpus
            )
        else:
            error = self._devices[0].get("error") if self._devices else None
            self.ui.deviceInfoLabel.text = error or _("No CUDA GPU found: the CPU is used.")

    # ---- running the worker -------------------------------------------------------------------
    def onExplainButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to start the explanation."), waitCursor=True):
            self.logic.ensureDependencies()
            self._startJob(self.logic.startExplain(self._parameterNode))

    def onSegmentWithModelButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to start the segmentation network."), waitCursor=True):
            self.logic.ensureDependencies()
            self._startJob(self.logic.startSegment(self._parameterNode))

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
        job.process.poll()
        progress = job.process.last_progress
        self.ui.progressBar.value = int(round(100 * float(progress.get("fraction") or 0.0)))
        elapsed = time.monotonic() - job.started
        self.ui.statusLabel.text = _("{stage}: {message} ({elapsed:.0f} s)").format(
            stage=progress.get("stage"), message=progress.get("message"), elapsed=elapsed
        )
        outcome = job.process.outcome
        if outcome is None:
            return
        self._pollTimer.stop()
        self._job = None
        self.ui.statusLabel.text = outcome.message
        if outcome.status == "done":
            with slicer.util.tryWithErrorDisplay(_("Failed to load the result."), waitCursor=True):
                node = self.logic.finishJob(job, outcome)
                if self._parameterNode is not None and job.mode == "explain":
                    self._parameterNode.result = node
                elif self._parameterNode is not None:
                    self._parameterNode.structures = node
                self.ui.progressBar.value = 100
                self.ui.statusLabel.text = _("Done in {seconds:.1f} s.").format(
                    seconds=time.monotonic() - job.started
                )
        elif outcome.status == "failed":
            slicer.util.errorDisplay(outcome.message, windowTitle=_("XAIMedSlicer"))
        job.cleanup()
        self._onParameterNodeModified()

    # ---- structures ---------------------------------------------------------------------------
    def onImportLabelMapButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to import the label map."), waitCursor=True):
            p = self._parameterNode
            names = p.labelNamesPath if _isSet(p.labelNamesPath) else None
            p.structures = self.logic.importLabelMap(p.labelMapPath, names, p.inputVolume)

    def onTargetSegmentationChanged(self, node) -> None:
        self.ui.targetSegmentSelector.setCurrentNode(node)

    def onTargetPointChanged(self, node) -> None:
        self.ui.targetPointPlaceWidget.setCurrentNode(node)

    def _currentBundle(self):
        node = self._parameterNode.result if self._parameterNode else None
        return self.logic.bundleForNode(node) if node else None

    def _selectedSegmentIDs(self) -> list:
        bundle = self._currentBundle()
        if bundle is None or bundle.table_node is None:
            return []
        return self.logic.segmentsForRows(bundle, self._selectedRows())

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
                self.logic.goToStructure(bundle, rows[0])
                segmentIDs = self.logic.segmentsForRows(bundle, rows)
                self.ui.segmentsTableView.setSelectedSegmentIDs(segmentIDs)
                if self._parameterNode.onlyInsideSelected:
                    self.logic.applyDisplay(bundle, self._parameterNode, segmentIDs)
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
        rows = self.logic.rowsForSegments(bundle, segmentIDs)
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


class XAIMedSlicerJob:
    """A running background job: the worker process, its folder, and what to do with its output."""

    def __init__(self, mode, process, folder, inputNode, names=None, colors=None):
        self.mode = mode
        self.process = process
        self.folder = folder
        self.inputNode = inputNode
        self.names = names or {}
        self.colors = colors or {}
        self.started = time.monotonic()

    def cleanup(self) -> None:
        """Delete the temporary job folder (the scene holds the result nodes by now)."""
        self.folder.remove()


class XAIMedSlicerLogic(ScriptedLoadableModuleLogic):
    """Computation without the GUI. Delegates to XAIMedSlicerLib (worker, scene); usable from scripts."""

    def __init__(self, ss=None) -> None:
        """``ss``: the XAIMedSlicerLib SlicerScene to work in (default: Slicer's scene and logics)."""
        ScriptedLoadableModuleLogic.__init__(self)
        self._ss = ss
        self._bundles = {}  # attribution node ID -> SceneBundle

    def sceneAndLogics(self):
        """The scene with its volumes, segmentations, colours and volume rendering logics."""
        if self._ss is None:
            from XAIMedSlicerLib.scene import current_scene

            self._ss = current_scene()
        return self._ss

    def getParameterNode(self):
        return XAIMedSlicerParameterNode(super().getParameterNode())

    # ---- dependencies -------------------------------------------------------------------------
    def ensureDependencies(self) -> None:
        """PyTorch (through the PyTorch extension when present), then Resources/requirements.txt."""
        try:
            import PyTorchUtils
        except ModuleNotFoundError:
            PyTorchUtils = None
        if PyTorchUtils is not None:
            torchLogic = PyTorchUtils.PyTorchUtilsLogic()
            if not torchLogic.torchInstalled():
                if torchLogic.installTorch(askConfirmation=True, torchVersionRequirement=">=2.1") is None:
                    raise ValueError(_("PyTorch is required. Install it from the PyTorch module."))
        requirements = self.resourcePath("requirements.txt")
        packaging = getattr(slicer, "packaging", None) or getattr(slicer, "pydeps", None)
        if packaging is not None and hasattr(packaging, "pip_ensure"):
            wanted = packaging.load_requirements(requirements)
            if PyTorchUtils is None:
                wanted = ["torch>=2.1", *wanted]
            packaging.pip_ensure(wanted, requester="XAIMedSlicer")
            return
        self._pipInstallMissing(requirements, withTorch=PyTorchUtils is None)

    def _pipInstallMissing(self, requirements: str, withTorch: bool) -> None:
        import importlib.util

        lines = [line.strip() for line in Path(requirements).read_text().splitlines()]
        wanted = [line for line in lines if line and not line.startswith("#")] + (
            ["torch>=2.1"] if withTorch else []
        )
        missing = [
            req for req in wanted if importlib.util.find_spec(req.split(">")[0].split("=")[0].strip()) is None
        ]
        if missing:
            slicer.util.pip_install(" ".join(f'"{req}"' for req in missing))

    def resourcePath(self, relativePath: str) -> str:
        return os.path.join(os.path.dirname(__file__), "Resources", relativePath)

    def modelSummary(self, path) -> dict:
        from XAIMedSlicerLib.worker.summary import model_summary

        return model_summary(path)

    # ---- jobs ---------------------------------------------------------------------------------
    def startExplain(self, p, *, fault=None) -> XAIMedSlicerJob:
        """Write the inputs as NRRD files into a temporary folder and start the worker."""
        from XAIMedSlicerLib.worker import create_job_folder

        if not p.inputVolume or not _isSet(p.modelPath):
            raise ValueError(_("Select an input volume and a model."))
        folder = create_job_folder()
        try:
            return self._startExplainIn(folder, p, fault)
        except Exception:
            folder.remove()
            raise

    def _startExplainIn(self, folder, p, fault) -> XAIMedSlicerJob:
        from XAIMedSlicerLib.io.volumes import write_volume
        from XAIMedSlicerLib.scene.volumes import volume_from_node
        from XAIMedSlicerLib.worker import WorkerJob, WorkerProcess

        write_volume(volume_from_node(p.inputVolume), folder.input_path("image.nrrd"))
        names, colors = {}, {}
        labelsPath = None
        if p.structures:
            labels, names, colors = self._segmentationToLabels(p.structures, p.inputVolume)
            labelsPath = str(write_volume(labels, folder.input_path("labels.nrrd")))
        region = TargetRegion(p.targetRegion)
        job = WorkerJob(
            image=str(folder.input_path("image.nrrd")),
            model=str(p.modelPath),
            out_dir=str(folder.out_dir),
            method=p.method,
            target=p.targetClass.strip() or None,
            region=region.value,
            labels=labelsPath,
            label_names={str(k): v for k, v in names.items()},
            device=p.device,
            params={"steps": int(p.igSteps)} if p.method == "ig" else {},
            chunk=int(p.chunkSize) or None,
            memory_budget_mb=float(p.memoryBudgetMB) or None,
            seed=int(p.seed),
            fault=fault,
            **self._regionArguments(region, p, folder),
        )
        process = WorkerProcess(folder, job).start()
        return XAIMedSlicerJob("explain", process, folder, p.inputVolume, names, colors)

    def startSegment(self, p) -> XAIMedSlicerJob:
        """Run a segmentation network (for example MeshNet) in the worker to make structures."""
        from XAIMedSlicerLib.io.volumes import write_volume
        from XAIMedSlicerLib.scene.volumes import volume_from_node
        from XAIMedSlicerLib.worker import WorkerJob, WorkerProcess, create_job_folder

        if not p.inputVolume or not _isSet(p.segmentationModelPath):
            raise ValueError(_("Select an input volume and a segmentation network."))
        folder = create_job_folder()
        try:
            write_volume(volume_from_node(p.inputVolume), folder.input_path("image.nrrd"))
            job = WorkerJob(
                image=str(folder.input_path("image.nrrd")),
                model=str(p.segmentationModelPath),
                out_dir=str(folder.out_dir),
                mode="segment",
                device=p.device,
            )
            process = WorkerProcess(folder, job).start()
        except Exception:
            folder.remove()
            raise
        colors = self._modelColors(Path(p.segmentationModelPath))
        return XAIMedSlicerJob("segment", process, folder, p.inputVolume, colors=colors)

    def _regionArguments(self, region, p, folder) -> dict:
        """The worker's region fields from the chosen segment, box or point (in RAS millimetres)."""
        if region == TargetRegion.SEGMENT:
            from XAIMedSlicerLib.io.volumes import write_volume

            if not p.targetSegmentation or not p.targetSegmentID:
                raise ValueError(_("Choose the segment inside which the class is explained."))
            mask, _names, _colors = self._segmentationToLabels(
                p.targetSegmentation, p.inputVolume, [p.targetSegmentID]
            )
            return {"region_mask": str(write_volume(mask, folder.input_path("region.nrrd")))}
        if region == TargetRegion.BOX:
            if not p.targetROI:
                raise ValueError(_("Choose a box (markups ROI)."))
            bounds = [0.0] * 6
            p.targetROI.GetRASBounds(bounds)
            return {"box": [bounds[0], bounds[2], bounds[4], bounds[1], bounds[3], bounds[5]]}
        if region == TargetRegion.POINT:
            if not p.targetPoint or p.targetPoint.GetNumberOfControlPoints() < 1:
                raise ValueError(_("Click a point (markups point list) first."))
            ras = [0.0, 0.0, 0.0]
            p.targetPoint.GetNthControlPointPositionWorld(0, ras)
            return {"point": list(ras)}
        return {}

    def _segmentationToLabels(self, segmentationNode, referenceNode, segmentIDs=None):
        """Segments rasterised on the reference volume's grid: (labels Volume, names, colours).

        Label value i+1 is the i-th segment; temporary nodes are removed, the segmentation is unchanged.
        """
        from XAIMedSlicerLib.scene.volumes import volume_from_node

        segmentation = segmentationNode.GetSegmentation()
        ids = (
            list(segmentIDs)
            if segmentIDs
            else [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
        )
        idArray = vtk.vtkStringArray()
        for segmentID in ids:
            idArray.InsertNextValue(segmentID)
        ss = self.sceneAndLogics()
        labelmap = ss.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "XAIMed temporary labels")
        try:
            if not ss.segmentations_logic.ExportSegmentsToLabelmapNode(
                segmentationNode, idArray, labelmap, referenceNode
            ):
                raise ValueError(_("Could not rasterise the segments on the input volume."))
            labels = volume_from_node(labelmap)
        finally:
            if labelmap.GetDisplayNode() is not None:
                ss.scene.RemoveNode(labelmap.GetDisplayNode())
            ss.scene.RemoveNode(labelmap)
        names = {i + 1: segmentation.GetSegment(s).GetName() for i, s in enumerate(ids)}
        colors = {i + 1: tuple(segmentation.GetSegment(s).GetColor()) for i, s in enumerate(ids)}
        return labels, names, colors

    def _modelColors(self, folder: Path) -> dict:
        """Label colours from the model folder's colour table with one entry per class (MeshNet)."""
        from XAIMedSlicerLib.scene.colortables import read_color_table

        if not folder.is_dir():
            return {}
        classes = self.modelSummary(folder)["classes"]
        for colormap in sorted(folder.glob("colormap*.json")):
            try:
                table = read_color_table(colormap)
            except Exception:  # another JSON in the folder: no colours from it
                logging.debug("XAIMedSlicer: %s is not a colour table", colormap)
                continue
            if len(table) == len(classes) - 1:  # label 0 (background) is not in the table
                return {label: color for label, (_name, color) in table.items() if color is not None}
        return {}

    def finishJob(self, job: XAIMedSlicerJob, outcome):
        """Load a finished job into the scene: the attribution node (explain) or a segmentation (segment)."""
        from XAIMedSlicerLib.scene.segmentation import add_segmentation
        from XAIMedSlicerLib.worker import load_explanation, load_labels

        if job.mode == "segment":
            labels, names = load_labels(outcome.out_dir)
            segmentation, _labelmap = add_segmentation(
                self.sceneAndLogics(),
                labels,
                names,
                colors=job.colors or None,
                reference_node=job.inputNode,
                name=f"{job.inputNode.GetName()} structures",
                keep_labelmap=False,
            )
            return segmentation
        from XAIMedSlicerLib.scene import build_scene

        explanation = load_explanation(outcome.out_dir, job.folder.input_path("image.nrrd"))
        bundle = build_scene(
            explanation, ss=self.sceneAndLogics(), image_node=job.inputNode, colors=job.colors or None
        )
        self._bundles[bundle.attribution_node.GetID()] = bundle
        return bundle.attribution_node

    def process(self, p, *, timeout=None, onMessage=None, fault=None):
        """Blocking mode for scripts and tests: run the explanation and return (outcome, attribution node)."""
        job = self.startExplain(p, fault=fault)
        try:
            outcome = job.process.wait(timeout=timeout, on_message=onMessage)
            node = self.finishJob(job, outcome) if outcome.ok else None
        finally:
            job.cleanup()
        return outcome, node

    def importLabelMap(self, labelPath, namesPath, referenceNode):
        """A new segmentation from a label map file (resampled onto the reference volume in physical space)."""
        from XAIMedSlicerLib.anatomy.labels import align_labels, read_label_names
        from XAIMedSlicerLib.io.volumes import read_volume
        from XAIMedSlicerLib.scene.colortables import read_color_table
        from XAIMedSlicerLib.scene.segmentation import add_segmentation
        from XAIMedSlicerLib.scene.volumes import volume_from_node

        labels = align_labels(read_volume(labelPath), volume_from_node(referenceNode))
        names, colors = {}, {}
        if namesPath:
            try:
                table = read_color_table(namesPath)
                names = {k: v[0] for k, v in table.items()}
                colors = {k: v[1] for k, v in table.items() if v[1] is not None}
            except Exception:
                names = read_label_names(namesPath)
        segmentation, _labelmap = add_segmentation(
            self.sceneAndLogics(),
            labels,
            names,
            colors=colors or None,
            reference_node=referenceNode,
            name=f"{Path(str(labelPath)).name} structures",
            keep_labelmap=False,
        )
        return segmentation

    # ---- results in the scene -----------------------------------------------------------------
    def bundleForNode(self, attributionNode):
        """The SceneBundle of an attribution map (rebuilt from node attributes after a scene reload)."""
        if attributionNode is None:
            return None
        bundle = self._bundles.get(attributionNode.GetID())
        if bundle is not None and bundle.attribution_node is attributionNode:
            return bundle
        from XAIMedSlicerLib.scene import SceneBundle

        run = attributionNode.GetAttribute("XAIMed.run")
        if run is None:
            return None
        scene = self.sceneAndLogics().scene

        def runNode(className):
            found = scene.GetNodesByClass(className)
            nodes = [found.GetItemAsObject(i) for i in range(found.GetNumberOfItems())]
            nodes = [n for n in nodes if n.GetAttribute("XAIMed.run") == run]
            return nodes[0] if nodes else None

        displayNode = attributionNode.GetDisplayNode()
        scanID = attributionNode.GetAttribute("XAIMed.scan")
        bundle = SceneBundle(
            ss=self.sceneAndLogics(),
            image_node=scene.GetNodeByID(scanID) if scanID else None,
            attribution_node=attributionNode,
            color_node=displayNode.GetColorNode() if displayNode else None,
            legend_node=None,
            signed=attributionNode.GetAttribute("XAIMed.signed") == "1",
            run_name=run,
            segmentation_node=runNode("vtkMRMLSegmentationNode"),
            labelmap_node=runNode("vtkMRMLLabelMapVolumeNode"),
            table_node=runNode("vtkMRMLTableNode"),
        )
        self._bundles[attributionNode.GetID()] = bundle
        return bundle

    def applyDisplay(self, bundle, p, selectedSegmentIDs=()):
        """Show the result as the parameters say; derived maps (|map|, masked) are new nodes, reused once made.

        Returns the node shown in the slice views.
        """
        from XAIMedSlicerLib.scene.colormaps import add_color_legend
        from XAIMedSlicerLib.scene.masking import mask_to_segments
        from XAIMedSlicerLib.scene.overlay import (
            absolute_value_node,
            display_range,
            set_colormap,
            set_opacity,
            set_threshold,
            show_in_slice_views,
        )
        from XAIMedSlicerLib.scene.volume_rendering import add_volume_rendering
        from XAIMedSlicerLib.scene.volumes import volume_from_node

        shown = bundle.attribution_node
        if p.absoluteValue and bundle.signed:
            shown = self._derived(
                bundle, shown, "absolute", lambda: absolute_value_node(bundle.ss, bundle.attribution_node)
            )
        segmentIDs = sorted(selectedSegmentIDs)
        if p.onlyInsideSelected and segmentIDs and bundle.segmentation_node is not None:
            base = shown
            shown = self._derived(
                bundle,
                base,
                "masked:" + ";".join(segmentIDs),
                lambda: mask_to_segments(bundle.ss, base, bundle.segmentation_node, segmentIDs),
            )
        signed = shown.GetAttribute("XAIMed.signed") == "1"
        colorMap = ColorMap(p.colorMap)
        set_colormap(
            shown,
            "diverging"
            if colorMap == ColorMap.DIVERGING or (colorMap == ColorMap.AUTO and signed)
            else "sequential",
        )
        values = volume_from_node(shown, world=False).array
        lo, hi = display_range(values, signed)
        # One threshold range cannot hide a band around zero, so signed maps are thresholded as |map|.
        set_threshold(shown, lo + p.threshold * (hi - lo) if p.threshold > 0 and not signed else None)
        show_in_slice_views(bundle.ss, bundle.image_node, shown, p.opacity, label=bundle.labelmap_node)
        set_opacity(bundle.ss, p.opacity, shown)
        legend = add_color_legend(bundle.ss, shown, shown.GetName())
        legend.SetVisibility(bool(p.showLegend))
        for node in bundle.map_nodes():
            display = bundle.ss.volume_rendering_logic.GetFirstVolumeRenderingDisplayNode(node)
            if display is not None and node is not shown:
                display.SetVisibility(False)
        if p.volumeRendering:
            add_volume_rendering(bundle, shown).SetVisibility(True)
        else:
            display = bundle.ss.volume_rendering_logic.GetFirstVolumeRenderingDisplayNode(shown)
            if display is not None:
                display.SetVisibility(False)
        return shown

    def _derived(self, bundle, source, key, make):
        """A derived map of ``source`` (cached by key in its attributes), made once."""
        attribute = "XAIMed.derived." + key
        nodeID = source.GetAttribute(attribute)
        node = bundle.scene.GetNodeByID(nodeID) if nodeID else None
        if node is None:
            node = make()
            node.SetAttribute("XAIMed.run", bundle.run_name)
            source.SetAttribute(attribute, node.GetID())
            bundle.derived_nodes.append(node)
        return node

    def goToStructure(self, bundle, row: int):
        """Centre every slice view on the structure's attribution peak and highlight its segment."""
        from XAIMedSlicerLib.scene.interaction import center_on_structure, row_at

        return center_on_structure(bundle, row_at(bundle, row))

    def segmentsForRows(self, bundle, rows) -> list:
        from XAIMedSlicerLib.scene.interaction import segment_for_row

        return [s for s in (segment_for_row(bundle, row) for row in rows) if s]

    def rowsForSegments(self, bundle, segmentIDs) -> list:
        from XAIMedSlicerLib.scene.interaction import row_for_segment

        return sorted({r for r in (row_for_segment(bundle, s) for s in segmentIDs) if r is not None})


#
# XAIMedSlicerTest
#


class XAIMedSlicerTest(ScriptedLoadableModuleTest):
    """Real tests inside 3D Slicer: a built volume, a tiny MONAI network, the real background worker."""

    def setUp(self):
        slicer.mrmlScene.Clear()
        self.tmp = Path(tempfile.mkdtemp(prefix="xaimed-test-"))

    def runTest(self):
        self.setUp()
        self.test_ExplainInBackground()
        self.setUp()
        self.test_RerunKeepsEarlierResults()
        self.setUp()
        self.test_OverlayControlsAndTable()
        self.setUp()
        self.test_CancelAndCrash()

    # ---- fixtures -----------------------------------------------------------------------------
    def _volume(self):
        """A 32x28x24 oblique, anisotropic volume with one bright blob at a known voxel."""
        import numpy as np

        rng = np.random.default_rng(0)
        array = rng.normal(0.0, 0.1, (24, 28, 32)).astype(np.float32)  # [k, j, i]
        array[10:14, 12:16, 18:22] += 3.0
        node = slicer.util.addVolumeFromArray(array, name="XAIMedTestScan")
        node.SetSpacing(1.2, 0.9, 2.0)
        node.SetOrigin(-12.0, 8.0, 30.0)
        direction = vtk.vtkMatrix4x4()
        angle = np.deg2rad(15.0)
        direction.SetElement(0, 0, np.cos(angle))
        direction.SetElement(0, 1, -np.sin(angle))
        direction.SetElement(1, 0, np.sin(angle))
        direction.SetElement(1, 1, np.cos(angle))
        node.SetIJKToRASDirectionMatrix(direction)
        return node, (19.5, 13.5, 11.5)  # blob centre (i, j, k)

    def _model(self, classes=2):
        """A tiny MONAI DenseNet saved as TorchScript (real network, random but fixed weights)."""
        import torch
        from monai.networks.nets import DenseNet

        torch.manual_seed(0)
        net = DenseNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=classes,
            init_features=4,
            growth_rate=4,
            block_config=(2,),
        )
        path = self.tmp / "tiny_densenet.ts"
        torch.jit.script(net.eval()).save(str(path))
        return path

    def _parameters(self, volumeNode, modelPath, method="gradcam"):
        logic = XAIMedSlicerLogic()
        p = logic.getParameterNode()
        p.inputVolume = volumeNode
        p.modelPath = modelPath
        p.method = method
        p.device = "cpu"
        p.igSteps = 8
        return logic, p

    # ---- tests --------------------------------------------------------------------------------
    def test_ExplainInBackground(self):
        import numpy as np
        from XAIMedSlicerLib.explain import explain
        from XAIMedSlicerLib.scene import volume_from_node

        self.delayDisplay("Explaining a built volume in the background worker")
        XAIMedSlicerLogic().ensureDependencies()
        volumeNode, _blob = self._volume()
        modelPath = self._model()
        logic, p = self._parameters(volumeNode, modelPath)
        before = slicer.util.arrayFromVolume(volumeNode).copy()
        messages = []
        outcome, node = logic.process(p, onMessage=messages.append, timeout=600)
        self.assertEqual(outcome.status, "done", outcome.message)
        progress = [m for m in messages if m.get("type") == "progress"]
        self.assertGreater(len(progress), 3)
        self.assertEqual(progress[-1]["fraction"], 1.0)
        # the overlay lies on the input's grid to 1e-4 mm, and the input is untouched
        a, b = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(a)
        node.GetIJKToRASMatrix(b)
        self.assertTrue(
            np.allclose(slicer.util.arrayFromVTKMatrix(a), slicer.util.arrayFromVTKMatrix(b), atol=1e-4)
        )
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(volumeNode), before))
        self.assertEqual(node.GetAttribute("XAIMed.role"), "attribution")
        self.assertEqual(node.GetAttribute("XAIMed.method"), "gradcam")
        # the background result is the pipeline's own result, computed here in Slicer's process
        direct = explain(volume_from_node(volumeNode), modelPath, "gradcam", device="cpu", seed=0)
        self.assertTrue(np.allclose(slicer.util.arrayFromVolume(node), direct.attribution.array, atol=1e-5))

    def test_RerunKeepsEarlierResults(self):
        import numpy as np

        self.delayDisplay("Re-running keeps the earlier result as its own node")
        volumeNode, _blob = self._volume()
        logic, p = self._parameters(volumeNode, self._model())
        outcome1, first = logic.process(p, timeout=600)
        firstArray = slicer.util.arrayFromVolume(first).copy()
        p.method = "ig"
        outcome2, second = logic.process(p, timeout=600)
        self.assertEqual((outcome1.status, outcome2.status), ("done", "done"), outcome2.message)
        self.assertNotEqual(first.GetID(), second.GetID())
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(first), firstArray))
        self.assertEqual(second.GetAttribute("XAIMed.signed"), "1")
        maps = [
            n
            for n in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")
            if n.GetAttribute("XAIMed.role") == "attribution"
        ]
        self.assertEqual(len(maps), 2)

    def test_OverlayControlsAndTable(self):
        import numpy as np

        self.delayDisplay("Overlay controls and the structure table")
        volumeNode, _blob = self._volume()
        logic, p = self._parameters(volumeNode, self._model(), method="ig")
        labels = np.zeros(slicer.util.arrayFromVolume(volumeNode).shape, dtype=np.uint8)
        labels[8:16, 10:18, 16:24] = 1
        labels[:, :, :8] = 2
        labelNode = slicer.util.addVolumeFromArray(labels, nodeClassName="vtkMRMLLabelMapVolumeNode")
        labelNode.CopyOrientation(volumeNode)
        structures = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "XAIMedTestStructures")
        slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(labelNode, structures)
        p.structures = structures
        outcome, node = logic.process(p, timeout=600)
        self.assertEqual(outcome.status, "done", outcome.message)
        bundle = logic.bundleForNode(node)
        self.assertIsNotNone(bundle.table_node)
        self.assertEqual(bundle.table_node.GetNumberOfRows(), 2)
        # opacity, threshold, absolute value
        p.opacity, p.threshold, p.absoluteValue, p.volumeRendering = 0.7, 0.25, True, True
        shown = logic.applyDisplay(bundle, p)
        self.assertNotEqual(shown.GetID(), node.GetID())
        self.assertTrue(
            np.allclose(slicer.util.arrayFromVolume(shown), np.abs(slicer.util.arrayFromVolume(node)))
        )
        values = slicer.util.arrayFromVolume(shown)
        expected = values.min() + 0.25 * (values.max() - values.min())
        self.assertAlmostEqual(shown.GetDisplayNode().GetLowerThreshold(), expected, places=4)
        composite = slicer.app.layoutManager().sliceWidget("Red").sliceLogic().GetSliceCompositeNode()
        self.assertAlmostEqual(composite.GetForegroundOpacity(), 0.7, places=6)
        self.assertEqual(composite.GetForegroundVolumeID(), shown.GetID())
        # only inside the first structure: zero outside its segment
        segmentIDs = logic.segmentsForRows(bundle, [0])
        p.onlyInsideSelected = True
        masked = logic.applyDisplay(bundle, p, segmentIDs)
        label = logic.rowsForSegments(bundle, segmentIDs)
        self.assertEqual(label, [0])
        maskedValues = slicer.util.arrayFromVolume(masked)
        row = bundle.structures[0] if bundle.structures else None
        self.assertTrue(row is None or np.count_nonzero(maskedValues) <= int(row["voxels"]))
        # selecting a row centres the views on the structure's peak
        peak = logic.goToStructure(bundle, 0)
        sliceNode = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceNode()
        center = [sliceNode.GetSliceToRAS().GetElement(i, 3) for i in range(3)]
        self.assertTrue(np.allclose(center, peak, atol=1e-3))

    def test_CancelAndCrash(self):
        self.delayDisplay("Cancel stops the worker; a crash is reported, Slicer keeps running")
        volumeNode, _blob = self._volume()
        logic, p = self._parameters(volumeNode, self._model(), method="ig")
        p.igSteps = 512
        p.chunkSize = 1
        job = logic.startExplain(p)
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
