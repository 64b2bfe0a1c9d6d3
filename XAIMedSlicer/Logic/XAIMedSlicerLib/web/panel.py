"""The page: side panel (inputs, model, method, target, Explain/Cancel, progress, display, structures)
beside trame-slicer's axial / coronal / sagittal / 3D layout."""

from __future__ import annotations

import numpy as np

# Registered attribution methods (Testing/test_web_panel.py checks this against the method registry,
# which the server does not import: PyTorch runs in the worker only).
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
COLOR_MAPS = ("auto", "sequential", "diverging")
DISPLAY_KEYS = (
    "opacity",
    "threshold",
    "color_map",
    "absolute",
    "only_inside",
    "outlines",
    "legend",
    "render3d",
)
LEGEND_STOPS = 11


def initial_state(state) -> None:
    """Defaults of every state name the page uses."""
    from ..study.coding import CATEGORIES
    from .report_card import empty_state

    state.update(
        {
            "trame__title": "XAIMedSlicer viewer",
            "scan_path": "",
            "model_path": "",
            "labels_path": "",
            "names_path": "",
            "result_path": "",
            "scan_loaded": False,
            "model_text": "no model: Explain is off",
            "methods": list(METHODS),
            "method": "gradcam",
            "targets": ["predicted"],
            "target": "predicted",
            "validate": False,
            "method_params": "",
            "chest_anatomy": False,
            **empty_state(),
            "point_mode": False,
            "point_text": "",
            "target_text": "",
            "click_s": None,
            "running": False,
            "progress": 0,
            "stage": "",
            "status": "",
            "message": "",
            "result_name": "",
            "opacity": 0.5,
            "threshold": 0.1,
            "color_map": "auto",
            "absolute": False,
            "only_inside": False,
            "outlines": True,
            "legend": True,
            "view_text": True,
            "render3d": False,
            "legend_css": "",
            "legend_min": "",
            "legend_max": "",
            "rows": [],
            "selected_row": -1,
            "views": "{}",
            "results": [],
            "study_path": "",
            "case_id": "",
            "code": "irrelevant",
            "codes": list(CATEGORIES),
            "reader": "",
            "note": "",
            "brush_mm": 6.0,
            "painting": False,
            "annotation_text": "",
            "seg_series": "",
            "seg_out": "",
            "compare_with": None,
        }
    )


def table_items(rows: list[dict]) -> list[dict]:
    """Structure rows as the page shows them (table order: by decreasing share)."""
    return [
        {
            "name": str(row["name"]),
            "label": int(row["label"]),
            "share": f"{100 * float(row['positive_share']):.1f}",
            "peak": f"{float(row['peak']):.3g}",
            "ml": f"{float(row['volume_ml']):.1f}",
        }
        for row in rows
    ]


def legend_state(state, node) -> None:
    """The page's colour bar: the shown map's colour table as a CSS gradient and its window."""
    from ..scene import color_node_rgba

    display = node.GetDisplayNode()
    rgba = color_node_rgba(display.GetColorNode())
    picks = rgba[np.linspace(0, len(rgba) - 1, LEGEND_STOPS).round().astype(int)]
    stops = ", ".join(f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})" for r, g, b, _a in picks)
    state.legend_css = f"background: linear-gradient(to right, {stops}); height: 14px; border-radius: 2px;"
    state.legend_min = f"{display.GetWindowLevelMin():.3g}"
    state.legend_max = f"{display.GetWindowLevelMax():.3g}"


def _number_row(v3, html, label: str, key: str) -> None:
    with html.Div(classes="d-flex align-center"):
        v3.VSlider(v_model=(key,), min=0, max=1, step=0.05, label=label, hide_details=True, density="compact")
        v3.VTextField(
            v_model_number=(key,),
            type="number",
            step=0.05,
            min=0,
            max=1,
            id=f"xaimed-{key}",
            hide_details=True,
            density="compact",
            style="max-width: 90px",
            classes="ml-2",
        )


def _inputs(viewer, v3) -> None:
    for key, label in (
        ("scan_path", "Scan (NIfTI, NRRD, DICOM folder)"),
        ("labels_path", "Label map (optional)"),
        ("names_path", "Label names / colour table (optional)"),
        ("model_path", "Model (card .json, bundle, TorchScript, MeshNet)"),
        ("result_path", "Result folder (optional, xaimed explain --out)"),
    ):
        v3.VTextField(v_model=(key,), label=label, id=f"xaimed-{key}", density="compact", hide_details=True)
    # the fields travel with the click: a value typed just before is not overtaken by the click
    v3.VBtn(
        "Load",
        click=(viewer.load_from_page, "[scan_path, model_path, labels_path, names_path, result_path]"),
        id="xaimed-load",
        block=True,
        classes="my-2",
        disabled=("running",),
    )


def _explain(viewer, v3, html) -> None:
    html.Div("{{ model_text }}", id="xaimed-model", classes="text-caption mb-1")
    v3.VSelect(v_model=("method",), items=("methods",), label="Method", id="xaimed-method", density="compact")
    v3.VSelect(v_model=("target",), items=("targets",), label="Target", id="xaimed-target", density="compact")
    v3.VSwitch(
        v_model=("point_mode",),
        label="Point target: click a slice view (segmentation networks)",
        id="xaimed-point_mode",
        density="compact",
        hide_details=True,
    )
    html.Div("{{ point_text }}", id="xaimed-point", classes="text-caption")
    html.Div(
        "{{ click_s === null ? '' : 'click to overlay: ' + click_s + ' s' }}",
        id="xaimed-click",
        classes="text-caption",
    )
    v3.VTextField(
        v_model=("method_params",),
        label="Method parameters (KEY=VALUE …)",
        placeholder="samples=25 seed=1",
        id="xaimed-method_params",
        density="compact",
        hide_details=True,
        classes="mb-1",
    )
    v3.VSwitch(
        v_model=("chest_anatomy",),
        label="Chest anatomy (radiograph)",
        id="xaimed-chest_anatomy",
        density="compact",
        hide_details=True,
    )
    v3.VSwitch(
        v_model=("validate",),
        label="Check the map (randomisation, deletion; slower)",
        id="xaimed-validate",
        density="compact",
        hide_details=True,
    )
    with html.Div(classes="d-flex"):
        v3.VBtn(
            "Explain",
            click=(viewer.explain, "[method_params, chest_anatomy]"),
            id="xaimed-explain",
            color="primary",
            disabled=("running || !scan_loaded",),
            classes="flex-grow-1",
        )
        v3.VBtn("Cancel", click=viewer.cancel, id="xaimed-cancel", disabled=("!running",), classes="ml-2")
    v3.VProgressLinear(model_value=("progress",), height=8, classes="my-2", id="xaimed-progress")
    html.Div("{{ stage }} {{ running ? progress + '%' : '' }}", id="xaimed-stage", classes="text-caption")
    html.Div("{{ status }}", id="xaimed-status", classes="text-caption")
    html.Div("{{ target_text }}", id="xaimed-target-info", classes="text-caption")


def _report(v3, html) -> None:
    """The shown result's hybrid decision, fired rules and sentences (explanation.txt), report link."""
    html.Div("No result with rules and words yet.", v_if="!report_shown", classes="text-caption")
    with v3.VCard(v_if="report_shown", id="xaimed-report", variant="tonal", classes="pa-2"):
        html.Div("{{ report_decision }}", id="xaimed-decision", classes="text-subtitle-2 mb-1")
        with html.Div(id="xaimed-rules"):
            with html.Div(v_for="(r, i) in report_rules", key="i", classes="xaimed-rule text-caption mb-1"):
                v3.VChip(
                    "{{ r.severity }}",
                    size="x-small",
                    label=True,
                    color=("r.severity === 'info' ? 'info' : 'warning'",),
                    classes="mr-1 xaimed-rule-severity",
                )
                html.B("{{ r.name }}:", classes="xaimed-rule-name")
                html.Span("{{ r.message }}", classes="xaimed-rule-message")
        with html.Div(id="xaimed-sentences", classes="mt-1"):
            with html.P(
                v_for="(s, i) in report_sentences", key="i", classes="xaimed-sentence text-body-2 mb-1"
            ):
                html.Span(
                    "{{ part.t }}",
                    v_for="(part, j) in s",
                    key="j",
                    style=("part.em ? 'font-style: italic' : ''",),
                )
        html.Div("{{ p }}", v_for="(p, i) in report_problems", key="i", classes="text-caption text-warning")
        v3.VBtn(
            "Open report",
            v_if="report_url",
            href=("report_url",),
            target="_blank",
            id="xaimed-report-link",
            size="small",
            classes="mt-1",
        )


def _display(v3, html) -> None:
    _number_row(v3, html, "Opacity", "opacity")
    _number_row(v3, html, "Threshold", "threshold")
    v3.VSelect(
        v_model=("color_map",),
        items=("['auto', 'sequential', 'diverging']",),
        label="Colour map",
        density="compact",
    )
    with html.Div(v_if="legend_css", id="xaimed-colorbar", classes="mb-2"):
        html.Div("{{ result_name }}", classes="text-caption")
        html.Div(style=("legend_css",))
        with html.Div(classes="d-flex text-caption"):
            html.Span("{{ legend_min }}")
            v3.VSpacer()
            html.Span("{{ legend_max }}")
    v3.VSelect(
        v_model=("compare_with",),
        items=("results",),
        label="Side by side with map B (axial A | B)",
        id="xaimed-compare",
        clearable=True,
        density="compact",
    )
    for key, label in (
        ("absolute", "Absolute value (signed maps)"),
        ("only_inside", "Only inside the selected structure"),
        ("outlines", "Segment outlines"),
        ("legend", "Colour legend in the views"),
        ("view_text", "Orientation letters and caption in the views"),
        ("render3d", "Map in 3D (volume rendering)"),
    ):
        v3.VSwitch(v_model=(key,), label=label, id=f"xaimed-{key}", density="compact", hide_details=True)


def _structures(viewer, v3, html) -> None:
    with v3.VTable(density="compact", id="xaimed-structures", hover=True):
        with html.Thead(), html.Tr():
            for title in ("Structure", "Share %", "Peak", "mL"):
                html.Th(title)
        with html.Tbody():
            with html.Tr(
                v_for="(row, i) in rows",
                key="i",
                click=(viewer.select_row, "[i]"),
                style="cursor: pointer",
                classes=("{'bg-primary': i === selected_row}",),
            ):
                html.Td("{{ row.name }}")
                html.Td("{{ row.share }}")
                html.Td("{{ row.peak }}")
                html.Td("{{ row.ml }}")


def _annotate(viewer, v3, html) -> None:
    for key, label in (("study_path", "Study database (xaimed study init)"), ("case_id", "Case ID")):
        v3.VTextField(v_model=(key,), label=label, id=f"xaimed-{key}", density="compact", hide_details=True)
    v3.VSelect(
        v_model=("code",), items=("codes",), label="Disagreement code", id="xaimed-code", density="compact"
    )
    v3.VTextField(
        v_model=("reader",), label="Reader", id="xaimed-reader", density="compact", hide_details=True
    )
    v3.VTextField(v_model=("note",), label="Note", id="xaimed-note", density="compact", hide_details=True)
    v3.VTextField(
        v_model_number=("brush_mm",),
        type="number",
        label="Brush diameter (mm)",
        id="xaimed-brush_mm",
        density="compact",
        hide_details=True,
    )
    v3.VSwitch(
        v_model=("painting",),
        label="Paint the region (drag in a slice view)",
        id="xaimed-painting",
        density="compact",
        hide_details=True,
    )
    v3.VBtn(
        "Save annotation",
        click=(viewer.save_annotation, "[study_path, case_id, code, reader, note]"),
        id="xaimed-save-annotation",
        block=True,
    )
    for key, label in (
        ("seg_series", "DICOM series of the scan (for DICOM SEG)"),
        ("seg_out", "DICOM SEG file"),
    ):
        v3.VTextField(v_model=(key,), label=label, id=f"xaimed-{key}", density="compact", hide_details=True)
    v3.VBtn(
        "Export DICOM SEG",
        click=(viewer.export_seg, "[study_path, seg_series, seg_out]"),
        id="xaimed-export-seg",
        block=True,
        classes="mt-1",
    )
    html.Div("{{ annotation_text }}", id="xaimed-annotation", classes="text-caption")


def build_ui(viewer) -> None:
    """The page layout; the views come from trame-slicer's layout manager."""
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    with SinglePageWithDrawerLayout(viewer.server, theme="dark") as layout:
        layout.title.set_text("XAIMedSlicer")
        layout.drawer.width = 400
        with layout.drawer, html.Div(classes="pa-3"):
            v3.VAlert(
                v_if="message",
                text=("message",),
                type="error",
                density="compact",
                id="xaimed-message",
                closable=True,
                click_close="message = ''",
                classes="mb-2",
            )
            with v3.VExpansionPanels(multiple=True, model_value=([0, 1, 2, 3, 4, 5],)):
                for title, fill in (
                    ("Inputs", lambda: _inputs(viewer, v3)),
                    ("Explain", lambda: _explain(viewer, v3, html)),
                    ("Rules and words", lambda: _report(v3, html)),
                    ("Display", lambda: _display(v3, html)),
                    ("Structures", lambda: _structures(viewer, v3, html)),
                    ("Annotate a disagreement", lambda: _annotate(viewer, v3, html)),
                ):
                    with v3.VExpansionPanel(title=title), v3.VExpansionPanelText():
                        fill()
            html.Pre("{{ views }}", id="xaimed-views", style="display: none")
        with layout.content, html.Div(style="position: relative; width: 100%; height: calc(100vh - 90px);"):
            viewer.layout_manager.initialize_layout_grid(layout)
    viewer.ui = layout
