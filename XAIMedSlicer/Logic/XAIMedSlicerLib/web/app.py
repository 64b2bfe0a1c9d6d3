"""The web viewer: a trame-slicer app over a real MRML scene, driven by the module's ``ExplainSession``.

The scan, the attribution overlay (``scene.apply_display``), the segment outlines and the structure
table are the same MRML nodes and calls the Slicer module uses; Explain runs in the same worker process
(``slicerlogic.jobs``), polled from the event loop, so the page stays responsive and Cancel works.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from ..errors import XAIError
from ..slicerlogic import ExplainRequest, ExplainSession
from . import loading, panel
from .annotate import WebAnnotation
from .compare import CompareViews
from .job import WebJob
from .point import PointPicker, check_inside
from .report_card import ROUTE, ReportKeeper, card_state, empty_state
from .scene_link import LAYOUT, slicer_scene, view_geometry
from .util import Reported, compact_legend, make_global, number, peak_ras, segmentations, target_text
from .view_annotations import ViewAnnotations, prediction_of
from .view_click import ViewClicks, label_at

GEOMETRY_POLL_S = 0.5
TOP_OUTLINES = 5  # outlines of the structures with the largest share (and of the selected one)
OPACITY_3D = 0.35
PREDICTED = "predicted"


class XAIViewer:
    """One viewer: the trame server, the Slicer app and scene, the session and the page's state."""

    def __init__(self, server=None, *, encoder: str = "png") -> None:
        if not os.environ.get("DISPLAY"):  # offscreen OpenGL through EGL/Mesa, no X server
            os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
        from trame.app import get_server
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories

        self.server = get_server(server, client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.state, self.ctrl = self.server.state, self.server.controller
        self.slicer_app = SlicerApp()
        register_rca_factories(self.slicer_app.view_manager, self.server, rca_encoder=encoder)
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.layout_manager.register_layout_dict(LayoutManager.default_grid_configuration())
        self.layout_manager.set_layout(LAYOUT)
        self.ss = slicer_scene(self.slicer_app)
        self.compare = CompareViews(self.slicer_app, self.layout_manager, self.ss)
        self.results: dict[str, object] = {}  # run name -> SceneBundle, for side by side
        self.annotations = ViewAnnotations(self.slicer_app)  # orientation letters and caption in each view
        make_global(self.ss)
        self.session = ExplainSession(self.ss)
        self.request = ExplainRequest()
        self.scan_volume = None
        self.bundle = None
        self.reports = ReportKeeper()  # each result's report files, kept and served at /xaimed-reports
        self.server.serve[ROUTE] = str(self.reports.root)
        self._cards: dict[str, dict] = {}  # attribution node ID -> the card's state
        self._predictions: dict[str, dict] = {}  # attribution node ID -> prediction (for the caption)
        self.job = WebJob(self.session, self._on_progress, self._keep_report)
        self._task: asyncio.Task | None = None
        self.picker = PointPicker(self.slicer_app, self._on_point)
        self.clicks = ViewClicks(self.slicer_app, self._on_view_click)
        self._labels_cache: tuple | None = None  # (labelmap node ID, labels Volume)
        self.annotation = WebAnnotation(self.slicer_app)
        panel.initial_state(self.state)
        panel.build_ui(self)
        self.state.change(*panel.DISPLAY_KEYS)(self._on_display_change)
        self.state.change("point_mode")(self._on_point_mode)
        self.state.change("view_text")(self._on_view_text)
        self.state.change("compare_with")(self._on_compare)
        self.state.change("painting")(self._on_painting)
        self.ctrl.on_server_ready.add(self._on_ready)

    # ---- inputs -------------------------------------------------------------------------------
    def load(self, image=None, model=None, labels=None, label_names=None, result=None) -> None:
        """Load the page's (or the given) scan, structures, model and result; errors go to the page."""
        s = self.state
        for key, value in (("scan_path", image), ("model_path", model), ("labels_path", labels)):
            if value is not None:
                s[key] = str(value)
        if label_names is not None:
            s.names_path = str(label_names)
        results: list[str] = []  # earlier results to load first (``--result`` given more than once)
        if result is not None:
            results = [str(r) for r in (result if isinstance(result, list | tuple) else [result]) if str(r)]
            s.result_path = results[-1] if results else ""
        s.message = ""
        with self._reported():
            self._load_model()
            self._load_scan()
            for path in [*results[:-1], *([s.result_path] if s.result_path else [])]:
                # earlier results first (side by side), the last one shown; each with its rules and words
                bundle = loading.load_result(self.ss, path, self.request.inputVolume, self.scan_volume)
                self._keep_report(bundle.attribution_node, path)
                self.show_bundle(bundle)
                s.status = f"loaded {Path(s.result_path).name}"

    def load_from_page(self, scan="", model="", labels="", names="", result="") -> None:
        """The Load button, with the fields' values as the page had them at the click."""
        self.load(
            image=scan or "",
            model=model or "",
            labels=labels or "",
            label_names=names or "",
            result=result or "",
        )

    def _load_scan(self) -> None:
        s = self.state
        node, volume, path = loading.load_scan(self.ss, s.scan_path)
        old = self.request.inputVolume
        self.request.inputVolume, self.scan_volume, self.bundle = node, volume, None
        self.request.structures = loading.load_structures(self.session, s.labels_path, s.names_path, node)
        if old is not None and old.GetScene() is not None:
            self.ss.scene.RemoveNode(old)  # our own node of the previous scan, never a user's file
        s.scan_loaded, s.rows, s.selected_row, s.status = True, [], -1, f"loaded {path.name}"
        self.results.clear()  # the results and the target point were of the previous scan
        self.picker.clear()
        s.results, s.compare_with, s.target_text, s.result_name, s.legend_css = [], None, "", "", ""
        s.update(empty_state())
        self.annotations.set_caption(None)
        self._show_scan()

    def _load_model(self) -> None:
        s = self.state
        if not s.model_path:
            s.model_text, s.targets = "no model: Explain is off", [PREDICTED]
            return
        info = loading.model_info(s.model_path)
        self.request.modelPath = Path(s.model_path)
        s.model_text = f"{info['name']} ({info['kind']}, {info['task']})"
        s.targets = [PREDICTED, *info["classes"]]
        s.target = s.target if s.target in s.targets else PREDICTED

    def _show_scan(self) -> None:
        from ..scene import show_in_slice_views

        show_in_slice_views(self.ss, self.request.inputVolume, None, 0.0, label=None)
        for other in segmentations(self.ss.scene):  # earlier results' structures: hidden
            if other is not self.request.structures and other.GetDisplayNode() is not None:
                other.GetDisplayNode().SetVisibility(False)
        legends = self.ss.scene.GetNodesByClass("vtkMRMLColorLegendDisplayNode")  # and their colour bars
        for index in range(legends.GetNumberOfItems()):
            legends.GetItemAsObject(index).SetVisibility(False)
        self._show_outlines(bool(self.state.outlines))
        for view in self.slicer_app.view_manager.get_slice_views():
            view.fit_view_to_content()
            view.set_visible_in_3d(True)
        for view in self.slicer_app.view_manager.get_threed_views():
            view.reset_view()
        self._render()

    # ---- results ------------------------------------------------------------------------------
    def show_bundle(self, bundle) -> None:
        """Show one result: overlay as the display controls say, its outlines, its table; views on its peak."""
        from ..scene import center_slice_views, table_rows

        for other in segmentations(self.ss.scene):
            if other is not bundle.segmentation_node and other.GetDisplayNode() is not None:
                other.GetDisplayNode().SetVisibility(False)
        self.bundle = bundle
        self.results[bundle.run_name] = bundle
        self.state.results = list(self.results)
        rows = table_rows(bundle.table_node) if bundle.table_node is not None else bundle.structures
        self.state.rows = panel.table_items(rows)
        self.state.selected_row = -1
        self.state.result_name = bundle.run_name
        self.state.target_text = target_text(bundle.attribution_node)
        self.state.update(self._cards.get(bundle.attribution_node.GetID(), empty_state()))
        self.annotations.set_caption(
            bundle.attribution_node, self._predictions.get(bundle.attribution_node.GetID())
        )
        self.apply_display()
        center_slice_views(self.ss, peak_ras(bundle))
        self._render()

    def apply_display(self) -> None:
        """The overlay controls (colour map, opacity, threshold, |map|, inside selected, legend, 3D)."""
        if self.bundle is None:
            return
        s, p = self.state, self.request
        p.colorMap, p.opacity, p.threshold = s.color_map, number(s.opacity, 0, 1), number(s.threshold, 0, 1)
        p.absoluteValue, p.onlyInsideSelected = bool(s.absolute), bool(s.only_inside)
        p.showLegend, p.volumeRendering = bool(s.legend), bool(s.render3d)
        selected = (
            self.session.segments_for_rows(self.bundle, [s.selected_row]) if s.selected_row >= 0 else []
        )
        shown = self.session.apply_display(self.bundle, p, selected)
        self._show_outlines(bool(s.outlines))
        compact_legend(self.ss.color_logic.GetColorLegendDisplayNode(shown), self.bundle)
        panel.legend_state(s, shown)
        if self.compare.active:
            self.compare.refresh(self.request.inputVolume or self.bundle.image_node, p.opacity)
        self._render()

    def _show_outlines(self, visible: bool) -> None:
        """Thin 2D outlines (no fill) of the top structures by share and of the selected one; the label
        map layer stays hidden (one outline per structure, not two). 3D: the same segments, faint."""
        from ..scene import segment_ids

        segmentation = self.bundle.segmentation_node if self.bundle is not None else self.request.structures
        for tag in self.ss.slice_logics:
            self.ss.composite_node(tag).SetLabelOpacity(0.0)
        if segmentation is None or segmentation.GetDisplayNode() is None:
            return
        display = segmentation.GetDisplayNode()
        display.SetVisibility(visible)
        display.SetVisibility2DFill(False)
        display.SetSliceIntersectionThickness(1)
        display.SetOpacity3D(OPACITY_3D)
        shown = set(segment_ids(segmentation))
        if self.bundle is not None and self.state.rows:
            rows = list(range(min(TOP_OUTLINES, len(self.state.rows))))
            if self.state.selected_row >= 0:
                rows.append(self.state.selected_row)
            shown = set(self.session.segments_for_rows(self.bundle, rows))
        for segment_id in segment_ids(segmentation):
            display.SetSegmentVisibility(segment_id, segment_id in shown)

    def select_row(self, index) -> None:
        """A structure-table row was clicked: every view goes to its peak, its segment is highlighted."""
        if self.bundle is None:
            return
        with self._reported():
            index = int(index)
            self.state.selected_row = index
            ras = self.session.go_to_structure(self.bundle, index)
            self.state.status = f"centred on {self.state.rows[index]['name']} peak " + ", ".join(
                f"{v:.1f}" for v in ras
            )
            if self.state.only_inside:
                self.apply_display()
            self._show_outlines(bool(self.state.outlines))
            self._render()

    def _on_view_click(self, _tag: str, ras) -> None:
        """A click in a slice view (not in point mode): select the structure under it in the table."""
        from ..scene import highlight_segment, volume_from_node

        bundle = self.bundle
        if self.state.point_mode or bundle is None or bundle.labelmap_node is None:
            return
        with self.state, self._reported():
            node_id = bundle.labelmap_node.GetID()
            if self._labels_cache is None or self._labels_cache[0] != node_id:
                self._labels_cache = (node_id, volume_from_node(bundle.labelmap_node, world=False))
            label = label_at(self._labels_cache[1], ras)
            index = next((i for i, r in enumerate(self.state.rows) if label and r["label"] == label), None)
            if index is None:
                return
            self.state.selected_row = index
            for segment_id in self.session.segments_for_rows(bundle, [index]):
                highlight_segment(bundle, segment_id)
            self.state.status = f"selected {self.state.rows[index]['name']}"
            self._show_outlines(bool(self.state.outlines))
            if self.state.only_inside:
                self.apply_display()
            self._render()

    # ---- explain ------------------------------------------------------------------------------
    def explain(self, method_params=None, chest_anatomy=None) -> None:
        """Start Explain off the event loop (the worker process does the work); the page's parameter
        field and chest switch travel with the click."""
        if method_params is not None:
            self.state.method_params = str(method_params)
        if chest_anatomy is not None:
            self.state.chest_anatomy = bool(chest_anatomy)
        if self.job.running:
            self.state.message = "an explanation is already running: wait for it or press Cancel"
            return
        self._task = asyncio.ensure_future(self._explain())

    async def _explain(self) -> None:
        s, p = self.state, self.request
        with self.state:
            s.running, s.progress, s.stage, s.message = True, 0, "starting the worker", ""
        try:
            with self._reported():
                if p.inputVolume is None:
                    raise XAIError("no scan loaded", "type the scan's path and press Load")
                if not s.model_path:
                    raise XAIError("no model loaded", "type the model's path and press Load")
                p.method, p.validateMap = s.method, bool(s.validate)
                p.methodParameters, p.chestAnatomy = str(s.method_params or ""), bool(s.chest_anatomy)
                point = self.picker.ras() if s.point_mode else None
                p.targetRegion, p.targetPoint = (
                    ("point", self.picker.node) if point is not None else ("predicted", None)
                )
                p.targetClass = "" if s.target in (None, PREDICTED) else str(s.target)
                node = await self.job.run(p)
                if node is None:
                    s.status, s.stage = "cancelled", "cancelled"
                else:
                    self.show_bundle(self.session.bundle_for_node(node))
                    s.status, s.stage, s.progress = f"explained: {s.result_name}", "done", 100
                    if point is not None and self.picker.clicked_at is not None:
                        s.click_s = round(time.perf_counter() - self.picker.clicked_at, 3)
        finally:
            with self.state:
                s.running = False

    def _keep_report(self, node, folder) -> None:
        """Read a result folder's rules and words now and keep its files (a job's folder is removed)."""
        contents, url, _kept = self.reports.keep(folder)
        self._cards[node.GetID()] = card_state(contents, url)
        self._predictions[node.GetID()] = prediction_of(contents.rules)

    def _on_compare(self, compare_with=None, **_kwargs) -> None:
        """Side by side: the shown map (A) in the axial view, the chosen earlier result (B) beside it."""
        with self._reported():
            other = self.results.get(compare_with or "")
            background = self.request.inputVolume or (other.image_node if other is not None else None)
            node = other.attribution_node if other is not None else None
            self.compare.show(background, node, number(self.state.opacity, 0, 1), LAYOUT)
            self._render()

    # ---- disagreement annotation -------------------------------------------------------------
    def _on_painting(self, painting=False, **_kwargs) -> None:
        """Paint on: a fresh region and the sphere brush (point mode off); off: views pan again."""
        with self._reported():
            if painting:
                self.state.point_mode = False
                self.annotation.start(self.request.inputVolume, number(self.state.brush_mm, 0.1, 200))
            else:
                self.annotation.stop()

    def save_annotation(self, study="", case_id="", code="", reader="", note="") -> None:
        """Save the painted region, coded, into the study database; the agreement goes to the page."""
        s = self.state
        s.update({"study_path": study, "case_id": case_id, "code": code, "reader": reader, "note": note})
        with self._reported():
            saved = self.annotation.save(
                self.ss,
                self.request.inputVolume,
                self.scan_volume,
                self.bundle,
                study=s.study_path,
                case_id=s.case_id,
                code=s.code,
                reader=s.reader,
                note=s.note,
            )
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in saved.agreement.items() if v is not None)
            s.annotation_text = f"saved annotation {saved.annotation_id}" + (
                f": {metrics}" if metrics else ""
            )
            s.painting = False

    def _on_view_text(self, view_text=True, **_kwargs) -> None:
        self.annotations.set_visible(bool(view_text))
        self._render()

    def export_seg(self, study="", series="", out="") -> None:
        """Export DICOM SEG: the last saved annotation on the scan's DICOM series, to a new file."""
        s = self.state
        s.update({"study_path": study, "seg_series": series, "seg_out": out})
        with self._reported():
            path = self.annotation.export_seg(s.study_path, s.seg_series, s.seg_out)
            s.annotation_text = f"DICOM SEG written: {path}"

    def _on_point_mode(self, point_mode=False, **_kwargs) -> None:
        with self._reported():
            if point_mode:
                self.state.painting = False
            self.picker.enable(bool(point_mode))

    def _on_point(self, ras) -> None:
        """A click placed the target point: check it lies in the scan, then explain at once."""
        with self.state, self._reported():
            if self.scan_volume is None:
                raise XAIError("no scan loaded", "load a scan before clicking a point")
            check_inside(self.scan_volume, ras)
            self.state.point_text = "point (RAS mm): " + ", ".join(f"{v:.1f}" for v in ras)
            self.explain()

    def cancel(self) -> None:
        """Stop the running explanation (the worker is killed within its grace period)."""
        if self.job.running:
            self.state.stage = "cancelling"
            asyncio.ensure_future(self.job.cancel())

    def _on_progress(self, percent: int, message: str) -> None:
        with self.state:
            self.state.progress, self.state.stage = percent, message

    # ---- plumbing -----------------------------------------------------------------------------
    def _on_display_change(self, **_kwargs) -> None:
        with self._reported():
            self.apply_display()
            if self.bundle is None:
                self._show_outlines(bool(self.state.outlines))

    def _reported(self):
        return Reported(self.state)

    def _render(self) -> None:
        for view in self.slicer_app.view_manager.get_views():
            view.schedule_render()

    def _on_ready(self, **_kwargs) -> None:
        asyncio.ensure_future(self._watch_geometry())

    async def _watch_geometry(self) -> None:
        """Keep the page's copy of the slice views' geometry current (used by pixel tests and the page)."""
        last = None
        while True:
            self.compare.sync()
            drawn = self.annotations.update()
            views = view_geometry(self.ss, self.compare.geometry_views())
            for tag, texts in self.annotations.texts().items():
                if tag in views:
                    views[tag].update(texts)
            text = json.dumps(views, sort_keys=True)
            if text != last or drawn:  # a view was resized or moved: push fresh frames to the page
                with self.state:
                    self.state.views = text
                last = text
                self._render()
            await asyncio.sleep(GEOMETRY_POLL_S)

    def start(self, port: int = 0, *, open_browser: bool = True, host: str = "localhost") -> None:
        """Serve the page (blocking)."""
        self.server.start(port=port, host=host, open_browser=open_browser, show_connection_info=True)
