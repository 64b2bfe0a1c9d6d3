"""What every widget action of the module does and what the widgets show then, Qt-free.

The module's widget only reads the widgets' values into a dict (``INPUTS``: widget name -> path, text,
number or combo index), calls :meth:`ModulePresenter.act` and applies the returned *view*:
``{widget name: {property: value}}``, where ``{"text": "..."}`` means ``widget.setText("...")`` and
``{"items": [...]}`` refills a combo box. The Segment Editor is driven through its MRML node
(``vtkMRMLSegmentEditorNode``), which the embedded editor widget follows. So everything behind the
buttons (explain jobs, annotation, reader study, report) runs and is tested headless with slicer-core.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import XAIError
from .annotate import AnnotationController, code_choices, editor_node
from .reader_controller import ReaderStudyController
from .report_view import ReportContents, ReportStore, read_report
from .request import is_set
from .texts import device_text, flags_text, model_info, progress_text

INPUTS = (
    "studyPathLineEdit",
    "caseIdLineEdit",
    "readerLineEdit",
    "codeComboBox",
    "noteTextEdit",
    "dicomSeriesPathLineEdit",
    "readerStudyPathLineEdit",
    "readerIdLineEdit",
    "readerMapComboBox",
    "trustSpinBox",
    "reportFolderPathLineEdit",
)
FAILED_STYLE = "color: #c62828; font-weight: bold;"
_VALUE_PROPERTIES = ("currentPath", "plainText", "value", "currentIndex", "text")


def _same(text: str) -> str:
    return text


def widget_value(widget):
    """What the user entered in a widget: a path, text, number or a combo box's index (None: no value)."""
    for name in _VALUE_PROPERTIES:
        if hasattr(widget, name):
            return getattr(widget, name)
    return None


def apply_view(widgets, view: dict) -> None:
    """Show a view on ``widgets`` (the module's ``self.ui``): ``{"text": t}`` calls ``setText(t)``;
    ``{"items": [...]}`` refills a combo box without emitting its signals."""
    for name, properties in view.items():
        widget = getattr(widgets, name)
        for key, value in properties.items():
            if key == "items":
                widget.blockSignals(True)
                widget.clear()
                widget.addItems(list(value))
                widget.blockSignals(False)
            else:
                getattr(widget, "set" + key[0].upper() + key[1:])(value)


class ModulePresenter:
    """The module's sections behind their widgets (one per module logic)."""

    def __init__(self, session, annotations=None, reader=None, reports=None, tr: Callable = _same) -> None:
        self.session = session
        self.annotations = annotations or AnnotationController()  # default: the current scene
        self.reader = reader or ReaderStudyController()
        self.reports = reports or ReportStore()
        self.tr = tr
        self.job = None  # the running slicerlogic.SessionJob
        self.classes: list[str] = []  # class names of the chosen model (the target completer)
        self.saved = None  # the last SavedAnnotation
        self.device_probe = None  # slicerlogic.devices.DeviceProbe
        self._device_shown = False
        self._display_state = None
        self._shown_bundle = None

    @classmethod
    def create(cls, ss=None, tr: Callable = _same) -> ModulePresenter:
        """A presenter with its own session and controllers in the scene ``ss`` (default: the current one)."""
        from .session import ExplainSession

        return cls(ExplainSession(ss), AnnotationController(ss), ReaderStudyController(ss), ReportStore(), tr)

    def initial_view(self) -> dict:
        """The disagreement codes in their combo box and the reader-study section's state."""
        return {"codeComboBox": {"items": [label for _key, label in code_choices()]}, **self.reader_view()}

    # ---- explain section ----------------------------------------------------------------------
    def controls(self, p) -> dict:
        """Enabled states and tool tips after any parameter change."""
        tr, running = self.tr, self.job is not None
        ready = bool(p.inputVolume) and is_set(p.modelPath)
        region = getattr(p.targetRegion, "value", p.targetRegion)
        tip = (
            tr("Compute the attribution in a background process.")
            if ready
            else tr("Select an input volume and a model.")
        )
        return {
            "explainButton": {"enabled": ready and not running, "toolTip": tip},
            "cancelButton": {"enabled": running},
            "segmentWithModelButton": {
                "enabled": bool(p.inputVolume) and is_set(p.segmentationModelPath) and not running
            },
            "importLabelMapButton": {"enabled": bool(p.inputVolume) and is_set(p.labelMapPath)},
            "newRegionButton": {"enabled": bool(p.inputVolume)},
            "targetSegmentRow": {"enabled": region == "mask"},
            "targetRoiSelector": {"enabled": region == "box"},
            "targetPointRow": {"enabled": region == "point"},
        }

    def show_result(self, node, p, rows=()) -> dict:
        """The map's check verdict; when the map or a display setting changed since the last call also its
        report, table and segments, and the overlay as ``p`` says (inside the segments of the selected
        table ``rows`` when they belong to the same run)."""
        from ..scene import DisplaySettings

        text, failed = flags_text(node, self.tr)
        view = {"flagsLabel": {"text": text, "styleSheet": FAILED_STYLE if failed else ""}}
        state = (node.GetID() if node else None, DisplaySettings.from_parameters(p))
        if state == self._display_state:
            return view
        self._display_state = state
        if (report := self.reports.for_node(node)) is not None:
            view.update(self.report_view(report))
        bundle = self.session.bundle_for_node(node)
        same_run, self._shown_bundle = bundle is not None and bundle is self._shown_bundle, bundle
        view["structureTableView"] = {"MRMLTableNode": bundle.table_node if bundle else None}
        view["segmentsTableView"] = {"segmentationNode": bundle.segmentation_node if bundle else None}
        if bundle is not None:
            has_table = same_run and bundle.table_node is not None
            self.session.apply_display(
                bundle, p, self.session.segments_for_rows(bundle, rows) if has_table else []
            )
        return view

    def select_rows(self, p, rows) -> list[str]:
        """Structure-table rows picked: go to the first one's peak; returns the rows' segment IDs."""
        bundle = self.session.bundle_for_node(p.result) if p is not None else None
        return self.session.select_rows(bundle, list(rows), p) if bundle is not None and rows else []

    def rows_for_segments(self, p, segment_ids, segmentation=None) -> list[int]:
        """Structure-table rows of segments of the result's structures (of ``segmentation`` when given)."""
        bundle = self.session.bundle_for_node(p.result) if p is not None else None
        if bundle is None or not segment_ids or segmentation not in (None, bundle.segmentation_node):
            return []
        return self.session.rows_for_segments(bundle, list(segment_ids))

    def forget_display(self) -> None:
        """The next ``show_result`` re-applies everything (a new parameter node)."""
        self._display_state = self._shown_bundle = None

    def start(self, kind: str, p) -> dict:
        """Start the background explanation (``explain``) or segmentation network (``segment``)."""
        if self.job is not None:
            raise XAIError("a background job is already running", "wait for it or cancel it")
        self.job = self.session.start_explain(p) if kind == "explain" else self.session.start_segment(p)
        view = {
            "progressBar": {"value": 0},
            "statusLabel": {"text": self.tr("Starting the background process...")},
        }
        return {**view, **self.controls(p)}

    def poll(self, p) -> tuple[dict, bool, str | None]:
        """(view, finished, error to show in a dialog) of the running job; loads a finished one."""
        job = self.job
        if job is None:
            return {}, True, None
        percent, progress, outcome = job.poll()
        view = {
            "progressBar": {"value": percent},
            "statusLabel": {"text": progress_text(progress, job.elapsed(), self.tr)},
        }
        if outcome is None:
            return view, False, None
        self.job, error = None, None
        view["statusLabel"] = {"text": outcome.message}
        try:
            if outcome.status == "done":
                node = self.session.finish_job(job, outcome, p)
                if job.mode == "explain":  # the job folder is removed below: keep its report
                    report = self.reports.capture(node, outcome.out_dir)
                    view.update(self.report_view(report, folder_stays=False))
                view["progressBar"] = {"value": 100}
                done = self.tr("Done in {seconds:.1f} s.").format(seconds=job.elapsed())
                view["statusLabel"] = {"text": done}
            elif outcome.status == "failed":
                error = outcome.message
        except Exception as exc:  # XAIError: one line; anything else is reported, the GUI keeps running
            error = str(exc) or type(exc).__name__
        finally:
            job.cleanup()
        return {**view, **(self.controls(p) if p is not None else {})}, True, error

    def start_device_probe(self) -> bool:
        """Start the device check once (in a background thread); True when it was started now."""
        if self.device_probe is not None:
            return False
        from .devices import DeviceProbe

        self.device_probe = DeviceProbe().start()
        return True

    def tick(self, p) -> tuple[dict, bool, str | None]:
        """The module's timer: (view, idle, error). The device line once known, the job's progress; idle
        when no job runs and the device line is shown (the timer can stop)."""
        view = {}
        if self.device_probe is not None and not self._device_shown:
            view = self.device_view(self.device_probe)
            self._device_shown = bool(view)
        job_view, finished, error = self.poll(p)
        return {**view, **job_view}, finished and (self._device_shown or self.device_probe is None), error

    def cancel(self) -> dict:
        if self.job is None:
            return {}
        self.job.process.cancel()
        return {"statusLabel": {"text": self.tr("Cancelling...")}}

    def scene_closing(self) -> dict:
        """The scene is about to close: the reader study pauses (its nodes go); the section's view."""
        self.reader.close()
        return self.reader_view()

    def close(self) -> None:
        """Module cleanup: cancel a running job, close the studies."""
        if self.job is not None:
            self.job.process.cancel()
            self.job.cleanup()
            self.job = None
        self.reader.close()
        self.annotations.close()

    # ---- one entry point for the buttons ------------------------------------------------------
    def act(self, action: str, values: dict, p) -> dict:
        """Run ``action`` with the widgets' ``values`` (``INPUTS`` plus extras); returns the view."""
        handler = getattr(self, f"_on_{action}", None)
        if handler is None:
            raise XAIError(f"unknown module action '{action}'", "report this as a bug")
        return handler(values, p) or {}

    def _on_model_path(self, values, p) -> dict:
        text, self.classes = model_info(values.get("path"), self.tr)
        return {"modelInfoLabel": {"text": text}}

    def _on_model_folder(self, values, p) -> dict:
        if values.get("folder"):
            from pathlib import Path

            p.modelPath = Path(values["folder"])

    def _on_import_label_map(self, values, p) -> dict:
        names = p.labelNamesPath if is_set(p.labelNamesPath) else None
        p.structures = self.session.import_label_map(p.labelMapPath, names, p.inputVolume)

    def device_view(self, probe) -> dict:
        """The device line once the probe has answered ({} before)."""
        text = device_text(probe, self.tr)
        return {} if text is None else {"deviceInfoLabel": {"text": text}}

    # ---- annotate disagreement ----------------------------------------------------------------
    def editor_node(self):
        """The embedded Segment Editor's MRML node (made once per scene)."""
        return editor_node(self.annotations.ss.scene)

    @staticmethod
    def _code(values) -> str:
        return code_choices()[int(values.get("codeComboBox") or 0)][0]

    def _drawing(self):
        node = self.editor_node().GetSegmentationNode()
        return node if node is not None and node.GetAttribute("XAIMed.role") == "disagreement" else None

    def _on_new_region(self, values, p) -> dict:
        """A new coded segment to paint into (in a new drawing on the scan unless one is being edited)."""
        editor, drawing = self.editor_node(), self._drawing()
        if drawing is None:
            drawing = self.annotations.new_drawing(p.inputVolume)
            editor.SetAndObserveSegmentationNode(drawing)
            editor.SetAndObserveSourceVolumeNode(p.inputVolume)
        editor.SetSelectedSegmentID(self.annotations.add_region(drawing, self._code(values)))

    def _on_code_changed(self, values, p) -> dict:
        """The combo recodes the selected segment of a disagreement drawing."""
        drawing, segment_id = self._drawing(), self.editor_node().GetSelectedSegmentID()
        if drawing is not None and segment_id:
            self.annotations.set_code(drawing, segment_id, self._code(values))

    def _on_save_annotation(self, values, p) -> dict:
        bundle = self.session.bundle_for_node(p.result)
        self.saved, text = self.annotations.save_and_describe(
            values.get("studyPathLineEdit"),
            self.editor_node().GetSegmentationNode(),
            p.inputVolume,
            bundle.attribution_node if bundle else None,
            case_id=str(values.get("caseIdLineEdit") or ""),
            method=p.method,
            reader=str(values.get("readerLineEdit") or ""),
            note=str(values.get("noteTextEdit") or ""),
            code=self._code(values),
        )
        return {"agreementLabel": {"text": text}}

    def _on_export_seg(self, values, p) -> dict:
        if self.saved is None:
            raise XAIError("no annotation saved yet", "save the drawing to the study database first")
        if not values.get("out"):
            return {}
        path = self.annotations.export_seg(
            self.saved.annotation_id, values.get("dicomSeriesPathLineEdit"), values["out"]
        )
        return {"agreementLabel": {"text": self.tr("DICOM SEG written to {path}").format(path=path)}}

    # ---- reader study -------------------------------------------------------------------------
    def reader_view(self) -> dict:
        reader = self.reader
        labels = list(reader.view.labels) if reader.view is not None else []
        return {
            "readerProgressLabel": {"text": reader.progress_text()},
            "readerMapComboBox": {"items": labels, "enabled": bool(labels)},
            "rateButton": {"enabled": bool(labels)},
            "nextCaseButton": {"enabled": bool(labels)},
            "exportSummaryButton": {"enabled": reader.study is not None},
        }

    def _label(self, values) -> str:
        labels = self.reader.view.labels if self.reader.view is not None else ()
        index = int(values.get("readerMapComboBox") if values.get("readerMapComboBox") is not None else -1)
        if not 0 <= index < len(labels):
            raise XAIError("no map is selected", "start the reader study and pick a map")
        return labels[index]

    def _on_start_reader(self, values, p) -> dict:
        self.reader.start(
            values.get("readerStudyPathLineEdit") or "", str(values.get("readerIdLineEdit") or "")
        )
        return {**self.reader_view(), "readerStatusLabel": {"text": ""}}

    def _on_map_changed(self, values, p) -> dict:
        index = values.get("readerMapComboBox")
        if self.reader.view is not None and index is not None and index >= 0:
            self.reader.show_map(self._label(values))

    def _on_rate(self, values, p) -> dict:
        self.reader.rate(self._label(values), int(values.get("trustSpinBox")))
        return {"readerStatusLabel": {"text": self.reader.rated_text()}}

    def _on_next_case(self, values, p) -> dict:
        seconds, _view = self.reader.next_case()
        text = self.tr("Case completed in {seconds:.0f} s.").format(seconds=seconds)
        return {**self.reader_view(), "readerStatusLabel": {"text": text}}

    def _on_export_summary(self, values, p) -> dict:
        if not values.get("out"):
            return {}
        path, rows = self.reader.export_summary(values["out"])
        return {
            "readerStatusLabel": {
                "text": self.tr("{rows} rows written to {path}").format(rows=rows, path=path)
            }
        }

    # ---- report -------------------------------------------------------------------------------
    @staticmethod
    def report_view(report: ReportContents, folder_stays: bool = True) -> dict:
        """Text and rules in one browser, report.html in the other (its pictures found in its folder
        while that folder stays; a job's folder is removed)."""
        from pathlib import Path

        stays = folder_stays and report.folder and Path(report.folder).is_dir()
        folders = [report.folder] if stays else []
        return {
            "reportTextBrowser": {"plainText": report.plain_text()},
            "reportHtmlBrowser": {"searchPaths": folders, "html": report.html or ""},
        }

    def _on_report_folder(self, values, p) -> dict:
        return self.report_view(read_report(values.get("reportFolderPathLineEdit") or None))
