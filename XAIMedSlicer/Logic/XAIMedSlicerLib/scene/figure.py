"""Figures a clinician reads: slice views through the peak with colour bar, letters, caption, outlines.

``render_figures(bundle, explanation, out_dir)`` writes ``figure_axial.png``, ``figure_coronal.png``,
``figure_sagittal.png`` (one view only for a one-slice volume such as a radiograph). Each view is
rendered by MRML slice logic (scan windowed on the body, the overlay at the run's opacity and
threshold) framed on the body's bounding box, through the attribution peak; one-pixel outlines of only
the top-N structures by evidence share (or the selected ones) are painted on it; Pillow then adds, in
bands around it, the caption, the orientation letters (from the slice node's SliceToRAS, so right for
any direction matrix), a scale bar, the colour bar with units and the outline legend.
``FigureView`` says where every RAS point lands in the PNG.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import XAIError
from .app import SLICE_VIEWS
from .colormaps import color_node_rgba
from .figure_compose import ColourBar, compose, tick_label
from .figure_geometry import (
    body_corners_ras,
    body_mask,
    frame_on_box,
    is_oblique,
    orient_view,
    ras_to_pixel,
    single_slice_view,
    view_letters,
    xy_to_ras_matrix,
)
from .figure_outline import draw_outlines, label_image
from .overlay import show_in_slice_views
from .render import slice_image_rgb, write_png

UNITS = "a.u."  # attribution maps have no physical unit; the colour bar says so
METHOD_NAMES = {"gradcam": "Grad-CAM", "gradcampp": "Grad-CAM++", "ig": "Integrated Gradients",
                "smoothgrad": "SmoothGrad", "saliency": "Saliency", "input_x_gradient": "Input x Gradient",
                "guided_backprop": "Guided backpropagation", "occlusion": "Occlusion sensitivity",
                "attention_rollout": "Attention rollout", "attention_relevance": "Attention relevance"}  # fmt: skip


@dataclass
class FigureView:
    """One written figure: path, where the slice image sits in it, and its geometry."""

    view: str
    path: Path
    offset: tuple[int, int]  # (row, col) of the slice image's top-left pixel in the PNG
    slice_shape: tuple[int, int]
    xy_to_ras: np.ndarray
    letters: dict[str, str]
    colour_bar: ColourBar
    layout: dict = field(default_factory=dict)
    outlined: list[int] = field(default_factory=list)

    def pixel_of_ras(self, ras) -> tuple[int, int]:
        """(row, col) in the PNG of a RAS point in this view's plane."""
        row, col = ras_to_pixel(self.xy_to_ras, ras, self.slice_shape[0])
        return int(round(row)) + self.offset[0], int(round(col)) + self.offset[1]


def top_labels(structures: list[dict], top_n: int, min_share: float = 0.05) -> list[int]:
    """Labels of the ``top_n`` structures with the largest positive share, each at least ``min_share``."""
    rows = sorted(structures, key=lambda r: -float(r.get("positive_share") or 0.0))
    kept = [int(r["label"]) for r in rows if float(r.get("positive_share") or 0.0) >= max(min_share, 1e-12)]
    return kept[: max(0, top_n)]


def caption_lines(explanation) -> list[str]:
    """Caption: method and target; prediction; model."""
    method = METHOD_NAMES.get(explanation.method, explanation.method)
    target = explanation.target or {}
    name = target.get("class_name") or target.get("class_index", target.get("index", "?"))
    kind = "region of class" if target.get("kind") == "segmentation_region" else "class"
    lines = [f"{method} · target: {kind} {name}"]
    pred = explanation.prediction or {}
    if pred.get("predicted_class") is not None:
        text = f"prediction: {pred['predicted_class']}"
        classes, probs = pred.get("classes") or [], pred.get("probabilities") or []
        if pred["predicted_class"] in classes and len(probs) == len(classes):
            text += f" (p = {float(probs[classes.index(pred['predicted_class'])]):.3f})"
        lines.append(text)
    elif pred.get("task"):
        lines.append(f"prediction: {pred['task']}")
    model = (explanation.provenance or {}).get("model") or {}
    if model:
        label = model.get("name") or Path(str(model.get("path", "model"))).name
        sha = str(model.get("sha256") or "")[:12]
        lines.append(f"model: {label}" + (f" (sha256 {sha}…)" if sha else ""))
    return lines


def colour_bar_of(bundle, method: str) -> ColourBar:
    """The overlay's own colour table and window, as the slice views map it."""
    display = bundle.attribution_node.GetDisplayNode()
    lower, upper = display.GetWindowLevelMin(), display.GetWindowLevelMax()
    table = np.round(color_node_rgba(bundle.color_node)[:, :3] * 255).astype(np.uint8)
    title = [METHOD_NAMES.get(method, method), f"attribution ({UNITS})"]
    if bundle.signed:
        title.append("signed: red +, blue -")
        ticks = [(upper, tick_label(upper)), (0.0, "0"), (lower, tick_label(lower))]
    else:
        title.append("absolute, linear")
        ticks = [(upper, tick_label(upper)), (lower, tick_label(lower))]
    threshold = display.GetLowerThreshold() if display.GetApplyThreshold() else None
    if threshold is not None and lower < threshold < upper:
        title.append(f"hidden below {tick_label(threshold)}")
    return ColourBar(table, lower, upper, title, ticks, threshold)


def structure_colours(bundle, labels: list[int]) -> dict[int, tuple[int, int, int]]:
    """The label map's own colour (0..255 RGB) of each label value, as Slicer's views show it."""
    colours = {}
    display = None if bundle.labelmap_node is None else bundle.labelmap_node.GetDisplayNode()
    node = None if display is None else display.GetColorNode()
    for value in labels:
        rgba = [1.0, 1.0, 0.0, 1.0]
        if node is not None:
            node.GetColor(int(value), rgba)
        colours[int(value)] = tuple(int(round(c * 255)) for c in rgba[:3])
    return colours


def scan_window(image, mask: np.ndarray) -> tuple[float, float]:
    """Display window of the scan for a figure: 1st..99.8th percentile of the body's voxels."""
    values = np.asarray(image.array, dtype=np.float64)[mask]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values[:: max(1, values.size // 500_000)], [1.0, 99.8])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def legend_entries(explanation, outlined: list[int], colours: dict) -> list[tuple[str, tuple]]:
    """Legend lines: "outline: <structure> (<share> of the positive evidence)" in the outline colour."""
    names = {int(k): str(v) for k, v in (explanation.label_names or {}).items()}
    shares = {int(r["label"]): r.get("positive_share") for r in explanation.structures or []}
    entries = []
    for value in outlined:
        share = shares.get(value)
        note = f" ({100 * float(share):.0f}% of the positive evidence)" if share is not None else ""
        entries.append((f"outline: {names.get(value, f'label {value}')}{note}", colours[value]))
    return entries


def render_figures(
    bundle,
    explanation,
    out_dir: str | os.PathLike,
    *,
    opacity: float = 0.5,
    top_n: int = 3,
    selected: list[int] | None = None,
    center_ras=None,
    size: int = 512,
    align: str = "auto",
) -> dict[str, FigureView]:
    """Write the annotated figures (see module doc); returns {"axial" | "coronal" | "sagittal": FigureView}.

    ``selected``: label values to outline (default: the ``top_n`` structures by positive share, each
    holding at least 5% of it). ``align``: "ras" (Slicer's patient-axis views), "volume" (the scan's own
    planes) or "auto" (the scan's planes for an oblique scan or a one-slice radiograph, else "ras").
    The slice views are left showing the scan, the overlay and the run's own outlines.
    """
    ss = bundle.ss
    if any(name not in ss.slice_logics for name in SLICE_VIEWS):
        raise XAIError("the scene has no slice views", "build the scene with scene.create_scene()")
    if align not in ("auto", "ras", "volume"):
        raise XAIError(f"unknown figure alignment {align!r}", "use 'auto', 'ras' or 'volume'")
    image = explanation.image
    only = single_slice_view(image, SLICE_VIEWS)
    if align == "auto":
        align = "volume" if only or is_oblique(image) else "ras"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outlined = list(selected) if selected is not None else top_labels(explanation.structures, top_n)
    outlined = outlined if explanation.labels is not None else []
    colours = structure_colours(bundle, outlined)
    legend = legend_entries(explanation, outlined, colours)
    through = np.asarray(center_ras if center_ras is not None else explanation.peak_ras(), dtype=float)
    mask = body_mask(image, explanation.labels)
    corners = body_corners_ras(image, mask)
    layouts = [only] if only else list(SLICE_VIEWS)
    bar = colour_bar_of(bundle, explanation.method)
    caption = caption_lines(explanation)
    figures = {}
    scan_display = bundle.image_node.GetDisplayNode()
    saved_window = (scan_display.GetAutoWindowLevel(), scan_display.GetWindowLevelMin(),
                    scan_display.GetWindowLevelMax())  # fmt: skip
    try:
        show_in_slice_views(ss, bundle.image_node, bundle.attribution_node, opacity, label=None)
        scan_display.SetAutoWindowLevel(0)
        scan_display.SetWindowLevelMinMax(*scan_window(image, mask))
        for layout_name in layouts:
            orientation, view = SLICE_VIEWS[layout_name]
            slice_node = ss.slice_node(layout_name)
            orient_view(slice_node, orientation, bundle.image_node if align == "volume" else None)
            frame_on_box(slice_node, corners, through, int(size))
            rgb = slice_image_rgb(ss.slice_logics[layout_name])
            xy_to_ras = xy_to_ras_matrix(slice_node)
            if outlined:
                rgb = draw_outlines(rgb, label_image(explanation.labels, xy_to_ras, rgb.shape[:2]), colours)
            letters = view_letters(slice_node)
            mm_per_pixel = float(np.linalg.norm(xy_to_ras[:3, 0]))
            panel, offset, layout = compose(rgb, [f"{view.capitalize()} · " + caption[0], *caption[1:]],
                                            letters, bar, mm_per_pixel, legend)  # fmt: skip
            path = write_png(panel, out_dir / f"figure_{view}.png")
            figures[view] = FigureView(view, path, offset, rgb.shape[:2], xy_to_ras, letters, bar, layout,
                                       outlined)  # fmt: skip
    finally:
        scan_display.SetWindowLevelMinMax(saved_window[1], saved_window[2])
        scan_display.SetAutoWindowLevel(saved_window[0])
        show_in_slice_views(
            ss, bundle.image_node, bundle.attribution_node, opacity, label=bundle.labelmap_node
        )
    return figures
