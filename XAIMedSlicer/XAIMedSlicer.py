"""XAIMedSlicer: explain what MONAI 3D networks see in CT and MRI volumes.

Thin wiring: widgets, the parameter node, dependencies. The work is in the Qt-free, headless-tested
``XAIMedSlicerLib.slicerlogic`` (``Logic/``): ``presenter`` (every widget action and what the widgets show),
``ExplainSession``, ``annotate``, ``reader_controller``, ``report_view``, ``texts`` and ``selftest``.
"""

import enum
import os
import shutil
import sys
import tempfile
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
from slicer.parameterNodeWrapper.util import unannotatedType
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

# The registered methods (Testing/test_module_ui.py checks them; the registry would import PyTorch).
METHODS = ("gradcam", "gradcampp", "ig", "input_x_gradient", "occlusion", "saliency", "smoothgrad",
           "guided_backprop", "attention_rollout", "attention_relevance")  # fmt: skip
DEVICES = ("auto", "cuda", "cpu")
POLL_MS = 200
CLICKED = "clicked(bool)"
INDEX_CHANGED = "currentIndexChanged(int)"
NODE_CHANGED = "currentNodeChanged(vtkMRMLNode*)"
SELECTION_CHANGED = "selectionChanged(QItemSelection,QItemSelection)"


class XAIMedSlicer(ScriptedLoadableModule):
    """Module metadata (Slicer's ScriptedLoadableModule template)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("XAI Med Slicer")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Informatics")]
        self.parent.dependencies = []
        self.parent.contributors = ["XAIMedSlicer developers"]
        self.parent.helpText = _(
            "Explains what a MONAI 3D network sees in a CT or MRI volume. Pick the scan, a model (card, MONAI"
            " bundle, TorchScript or MeshNet folder), a method and a target, then click Explain. It runs in a"
            " background process that can be cancelled; the map appears as an overlay in 2D and 3D with the"
            " evidence per structure. Annotate where you disagree, run a blinded reader study, read a report."
            ' See the <a href="https://github.com/XAIMedSlicer/XAIMedSlicer#readme">documentation</a>.'
        )
        self.parent.acknowledgementText = _(
            "XAIMedSlicer builds on 3D Slicer, MONAI, PyTorch, Captum and SimpleITK. Attribution maps are"
            " explanations of a model, not diagnoses."
        )
        slicer.app.connect("startupCompleted()", registerSampleData)


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
    methodParameters: str = ""
    chestAnatomy: bool = False
    slidingWindow: str = ""
    chunkSize: Annotated[int, WithinRange(0, 256)] = 0
    memoryBudgetMB: Annotated[float, WithinRange(0.0, 1000000.0)] = 0.0
    seed: Annotated[int, WithinRange(0, 2147483647)] = 0
    validateMap: bool = True


@parameterNodeGuiConnector
class SegmentSelectorToSegmentIDConnector(GuiConnector):
    """Binds a qMRMLSegmentSelectorWidget's current segment to a ``str`` parameter (the segment ID)."""

    @staticmethod
    def canRepresent(widget, datatype) -> bool:
        return type(widget) is slicer.qMRMLSegmentSelectorWidget and unannotatedType(datatype) is str

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


class XAIMedSlicerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """GUI: binds widgets to the parameter node; every action goes to the Qt-free ``logic.presenter``."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = self._parameterNode = self._parameterNodeGuiTag = self._tableSelectionModel = None
        self._syncing, self._observedEditorNodes = False, []

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
        act, folderTitle = self._act, _("Choose a MONAI bundle or MeshNet folder")
        for widget, signal, slot in (
            (self.ui.explainButton, CLICKED, lambda: self._startJob("explain")),
            (self.ui.segmentWithModelButton, CLICKED, lambda: self._startJob("segment")),
            (self.ui.cancelButton, CLICKED, lambda: self._apply(self.logic.presenter.cancel())),
            (
                self.ui.modelFolderButton,
                CLICKED,
                lambda: act("model_folder", folder=self._folder(folderTitle)),
            ),
            (self.ui.importLabelMapButton, CLICKED, lambda: act("import_label_map")),
            (self.ui.targetSegmentationSelector, NODE_CHANGED, self.ui.targetSegmentSelector.setCurrentNode),
            (self.ui.targetPointSelector, NODE_CHANGED, self.ui.targetPointPlaceWidget.setCurrentNode),
            (self.ui.modelPathLineEdit, "currentPathChanged(QString)", self.onModelPathChanged),
            (self.ui.segmentsTableView, SELECTION_CHANGED, self.onSegmentsSelected),
            (self.ui.newRegionButton, CLICKED, lambda: act("new_region")),
            (self.ui.codeComboBox, INDEX_CHANGED, lambda index: act("code_changed")),
            (self.ui.saveAnnotationButton, CLICKED, lambda: act("save_annotation")),
            (self.ui.exportSegButton, CLICKED, lambda: act("export_seg", out=self._saveAs("DICOM (*.dcm)"))),
            (self.ui.startReaderButton, CLICKED, lambda: act("start_reader")),
            (self.ui.readerMapComboBox, INDEX_CHANGED, lambda index: act("map_changed")),
            (self.ui.rateButton, CLICKED, lambda: act("rate")),
            (self.ui.nextCaseButton, CLICKED, lambda: act("next_case")),
            (
                self.ui.exportSummaryButton,
                CLICKED,
                lambda: act("export_summary", out=self._saveAs("CSV (*.csv)")),
            ),
            (
                self.ui.reportFolderPathLineEdit,
                "currentPathChanged(QString)",
                lambda path: act("report_folder"),
            ),
        ):
            widget.connect(signal, slot)
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.connect("timeout()", self.onTimer)
        self._apply(self.logic.presenter.initial_view())
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self._timer.stop()
        self.logic.presenter.close()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()
        if self.logic.presenter.start_device_probe():
            self._timer.start()
        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.presenter.editor_node())
        for node in slicer.util.getNodesByClass(
            "vtkMRMLSegmentEditorNode"
        ):  # a segment picked there -> its row
            if node not in self._observedEditorNodes:
                self.addObserver(node, vtk.vtkCommand.ModifiedEvent, self.onSegmentEditorModified)
                self._observedEditorNodes.append(node)

    def exit(self) -> None:
        self.ui.segmentEditorWidget.setActiveEffect(None)
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified
            )

    def onSceneStartClose(self, caller, event) -> None:
        self._apply(self.logic.presenter.scene_closing())
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
        self.logic.presenter.forget_display()
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    # ---- actions and views of the Qt-free presenter -------------------------------------------
    def _apply(self, view: dict) -> None:
        from XAIMedSlicerLib.slicerlogic.presenter import apply_view

        apply_view(self.ui, view)

    def _act(self, action: str, **extra) -> None:
        """One button or field: the presenter acts on the widgets' values; its view is shown."""
        from XAIMedSlicerLib.slicerlogic.presenter import INPUTS, widget_value

        with slicer.util.tryWithErrorDisplay(_("XAIMedSlicer could not do this."), waitCursor=True):
            values = {name: widget_value(getattr(self.ui, name)) for name in INPUTS}
            self._apply(self.logic.presenter.act(action, {**values, **extra}, self._parameterNode))

    def _saveAs(self, fileFilter: str) -> str:
        return qt.QFileDialog.getSaveFileName(self.parent, _("Save as"), "", fileFilter)

    def _folder(self, title: str) -> str:
        return qt.QFileDialog.getExistingDirectory(self.parent, title, str(self._parameterNode.modelPath))

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        self._apply(self.logic.presenter.controls(p))
        if self.ui.targetSegmentSelector.currentNode() != p.targetSegmentation:
            self.ui.targetSegmentSelector.setCurrentNode(p.targetSegmentation)
        if self._syncing:
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to update the overlay."), waitCursor=False):
            self._apply(self.logic.presenter.show_result(p.result, p, self._selectedRows()))
        selectionModel = self.ui.structureTableView.selectionModel()
        if selectionModel is not None and self._tableSelectionModel != selectionModel:
            selectionModel.connect(SELECTION_CHANGED, self.onTableRowsSelected)
            self._tableSelectionModel = selectionModel

    def onModelPathChanged(self, path: str) -> None:
        self._act("model_path", path=path)
        self.ui.targetClassLineEdit.setCompleter(
            qt.QCompleter(self.logic.presenter.classes, self.ui.targetClassLineEdit)
        )

    def _startJob(self, kind: str) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to start the background process."), waitCursor=True):
            self.logic.ensureDependencies()
            self._apply(self.logic.presenter.start(kind, self._parameterNode))
            self._timer.start()

    def onTimer(self) -> None:
        """The background job's progress (and its result), the device line once the check answered."""
        view, idle, error = self.logic.presenter.tick(self._parameterNode)
        self._apply(view)
        if idle:
            self._timer.stop()
        if error:
            slicer.util.errorDisplay(error, windowTitle=_("XAIMedSlicer"))

    # ---- structure table <-> segments table <-> Segment Editor --------------------------------
    def _selectedRows(self) -> list:
        model = self.ui.structureTableView.selectionModel()
        return sorted({index.row() for index in model.selectedIndexes()}) if model is not None else []

    def onTableRowsSelected(self, selected=None, deselected=None) -> None:
        """Rows -> centre the views on the first structure's peak, highlight it, select its segments."""
        rows = self._selectedRows()
        if self._syncing or not rows:
            return
        self._syncing = True
        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to go to the structure."), waitCursor=False):
                segmentIDs = self.logic.presenter.select_rows(self._parameterNode, rows)
                self.ui.segmentsTableView.setSelectedSegmentIDs(segmentIDs)
        finally:
            self._syncing = False

    def onSegmentsSelected(self, selected=None, deselected=None) -> None:
        if not self._syncing:
            segmentIDs = list(self.ui.segmentsTableView.selectedSegmentIDs())
            self._selectRows(self.logic.presenter.rows_for_segments(self._parameterNode, segmentIDs))

    def onSegmentEditorModified(self, editorNode, event=None) -> None:
        if not self._syncing and (segmentID := editorNode.GetSelectedSegmentID()):
            segmentation = editorNode.GetSegmentationNode()
            self._selectRows(
                self.logic.presenter.rows_for_segments(self._parameterNode, [segmentID], segmentation)
            )

    def _selectRows(self, rows) -> None:
        view = self.ui.structureTableView
        if not rows or view.selectionModel() is None:
            return
        view.selectionModel().clearSelection()
        for row in rows:
            view.selectionModel().select(
                view.model().index(row, 0), qt.QItemSelectionModel.Select | qt.QItemSelectionModel.Rows
            )
        view.scrollTo(view.model().index(rows[0], 0))


class XAIMedSlicerLogic(ScriptedLoadableModuleLogic):
    """Usable from scripts. The Qt-free, headless-tested ``session`` (slicerlogic.ExplainSession: jobs,
    results, display; takes the parameter node or an ExplainRequest) and ``presenter`` (slicerlogic.presenter:
    every widget action) do the work; here: the parameter node, dependencies, resources."""

    def __init__(self, ss=None) -> None:
        """``ss``: the XAIMedSlicerLib SlicerScene to work in (default: Slicer's scene and logics)."""
        ScriptedLoadableModuleLogic.__init__(self)
        from XAIMedSlicerLib.slicerlogic.presenter import ModulePresenter

        self.presenter = ModulePresenter.create(ss, tr=_)
        self.session = self.presenter.session

    def getParameterNode(self):
        return XAIMedSlicerParameterNode(super().getParameterNode())

    def process(self, p, *, timeout=None, onMessage=None, fault=None):
        """Blocking mode for scripts and tests: run the explanation, return (outcome, attribution node)."""
        return self.session.process(p, timeout=timeout, on_message=onMessage, fault=fault)

    def resourcePath(self, relativePath: str) -> str:
        return os.path.join(os.path.dirname(__file__), "Resources", relativePath)

    def ensureDependencies(self) -> None:
        """PyTorch (through the PyTorch extension when present), then Resources/requirements.txt."""
        from XAIMedSlicerLib.slicerlogic.dependencies import ensure_dependencies

        ensure_dependencies(self.resourcePath("requirements.txt"), tr=_)


class XAIMedSlicerTest(ScriptedLoadableModuleTest):
    """Real tests in 3D Slicer (scenarios and criteria in slicerlogic.selftest, also run in Testing/)."""

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
        self.setUp()
        self.test_AnnotateDisagreement()

    def _setUpRun(self, message: str):
        from XAIMedSlicerLib.slicerlogic import selftest

        self.delayDisplay(message)
        logic = XAIMedSlicerLogic()
        p = logic.getParameterNode()
        p.inputVolume, p.modelPath = selftest.add_test_case(logic.session.ss, self.tmp)
        p.method, p.device, p.igSteps = "gradcam", "cpu", 8
        return logic, p, selftest

    def test_ExplainInBackground(self):
        logic, p, selftest = self._setUpRun("Explaining a built volume in the background worker")
        logic.ensureDependencies()
        r = selftest.check_explain(logic.session, p)  # against explain() run in Slicer's own process
        self.assertEqual(r["status"], "done", r["message"])
        self.assertEqual(selftest.failures(r), [])
        self.assertLess(r["grid_error_mm"], 1e-4)

    def test_RerunOverlayAndStructures(self):
        logic, p, selftest = self._setUpRun("Re-running keeps earlier results; overlay controls; structures")
        r = selftest.check_display(logic.session, p)
        self.assertEqual(r["status"], "done", r["message"])
        self.assertEqual(selftest.failures(r), [])
        self.assertLess(r["centre_error_mm"], 1e-3)

    def test_CancelAndCrash(self):
        logic, p, selftest = self._setUpRun(
            "Cancel stops the worker; a crash is reported, Slicer keeps running"
        )
        r = selftest.check_cancel_and_crash(logic.session, p)
        self.assertEqual(r["cancel_status"], "cancelled")
        self.assertEqual(selftest.failures(r), [])
        self.assertEqual(r["crash_status"], "failed")

    def test_AnnotateDisagreement(self):
        logic, p, selftest = self._setUpRun("A painted region is saved in a study database, exactly")
        r = selftest.check_annotation(logic.session.ss, self.tmp, p.inputVolume)
        self.assertTrue(r["voxels_equal"])
        self.assertEqual(selftest.failures(r), [])
        self.assertLess(r["grid_error_mm"], 1e-4)
