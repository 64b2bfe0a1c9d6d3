"""Figures a clinician reads: slice views through the peak with colour bar, letters, caption, outlines.

``render_figures(bundle, explanation, out_dir)`` writes ``figure_axial.png``, ``figure_coronal.png``,
``figure_sagittal.png`` (one view only for a one-slice volume such as a radiograph). Each view is
rendered by MRML slice logic framed on the body's bounding box, through the attribution peak, with
outlines of only the top-N structures by evidence share (or the selected ones); Pillow then adds the
caption, the orientation letters (from the slice node's SliceToRAS), a scale bar and the colour bar
around the untouched slice pixels. ``FigureView`` says where every RAS point lands in the PNG.
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
    frame_on_box,
    ras_to_pixel,
    single_slice_view,
    view_letters,
    xy_to_ras_matrix,
)
from .overlay import show_in_slice_views
from .render import slice_image_rgb, write_png
from .volumes import add_volume, volume_from_node

METHOD_NAMES = {"gradcam": "Grad-CAM", "ig": "Integrated Gradients", "smoothgrad": "SmoothGrad",
                "saliency": "Saliency", "occlusion": "Occlusion sensitivity"}  # fmt: skip


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


def top_labels(structures: list[dict], top_n: int) -> list[int]:
    """Labels of the ``top_n`` structures with the largest positive share (non-zero shares only)."""
    rows = sorted(structures, key=lambda r: -float(r.get("positive_share") or 0.0))
    return [int(r["label"]) for r in rows if float(r.get("positive_share") or 0.0) > 0][: max(0, top_n)]


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
            text += f" (p = {float(probs[classes.index(pred['predicted_class'])]):.2f})"
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
    name = METHOD_NAMES.get(method, method)
    if bundle.signed:
        title = f"{name} (a.u.)\nsigned, ±{tick_label(upper)}"
        ticks = [(upper, tick_label(upper)), (0.0, "0"), (lower, tick_label(lower))]
    else:
        title = f"{name} (a.u.)\nabsolute, linear"
        ticks = [(upper, tick_label(upper)), (lower, tick_label(lower))]
    threshold = display.GetLowerThreshold() if display.GetApplyThreshold() else None
    return ColourBar(table, lower, upper, title, ticks, threshold)


def _outline_node(bundle, labels: list[int]):
    """A new label map node holding only ``labels`` (same colour table), or None."""
    if bundle.labelmap_node is None or not labels:
        return None
    volume = volume_from_node(bundle.labelmap_node)
    kept = np.where(np.isin(volume.array, labels), volume.array, 0).astype(volume.array.dtype)
    node = add_volume(
        bundle.ss, volume.with_array(kept), f"{bundle.run_name} figure outlines", label_map=True
    )
    node.GetDisplayNode().SetAndObserveColorNodeID(bundle.labelmap_node.GetDisplayNode().GetColorNodeID())
    return node


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
) -> dict[str, FigureView]:
    """Write the annotated figures (see module doc); returns {"axial" | "coronal" | "sagittal": FigureView}.

    ``selected``: label values to outline (default: the ``top_n`` structures by positive share).
    The slice views are left showing the scan, the overlay and the run's own outlines.
    """
    ss = bundle.ss
    if any(name not in ss.slice_logics for name in SLICE_VIEWS):
        raise XAIError("the scene has no slice views", "build the scene with scene.create_scene()")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outlined = list(selected) if selected is not None else top_labels(explanation.structures, top_n)
    outline = _outline_node(bundle, outlined)
    through = np.asarray(center_ras if center_ras is not None else explanation.peak_ras(), dtype=float)
    corners = body_corners_ras(explanation.image, explanation.labels)
    only = single_slice_view(explanation.image, SLICE_VIEWS)
    layouts = [only] if only else list(SLICE_VIEWS)
    bar = colour_bar_of(bundle, explanation.method)
    caption = caption_lines(explanation)
    figures = {}
    try:
        show_in_slice_views(ss, bundle.image_node, bundle.attribution_node, opacity, label=outline)
        for layout_name in layouts:
            orientation, view = SLICE_VIEWS[layout_name]
            slice_node = ss.slice_node(layout_name)
            frame_on_box(slice_node, orientation, corners, through, int(size))
            rgb = slice_image_rgb(ss.slice_logics[layout_name])
            xy_to_ras = xy_to_ras_matrix(slice_node)
            letters = view_letters(slice_node)
            mm_per_pixel = float(np.linalg.norm(xy_to_ras[:3, 0]))
            panel, offset, layout = compose(rgb, [f"{view.capitalize()} · " + caption[0], *caption[1:]],
                                            letters, bar, mm_per_pixel)  # fmt: skip
            path = write_png(panel, out_dir / f"figure_{view}.png")
            figures[view] = FigureView(view, path, offset, rgb.shape[:2], xy_to_ras, letters, bar, layout,
                                       outlined)  # fmt: skip
    finally:
        show_in_slice_views(
            ss, bundle.image_node, bundle.attribution_node, opacity, label=bundle.labelmap_node
        )
        if outline is not None:
            ss.scene.RemoveNode(outline)
    return figures
