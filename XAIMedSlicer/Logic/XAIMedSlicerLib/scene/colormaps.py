"""Overlay colour maps as real ``vtkMRMLColorTableNode``s (saved in the .mrb) and the colour legend.

slicer-core lacks the desktop app's Inferno/DivergingBlueRed colour files, so the tables are built from
matplotlib's published colour maps: ``inferno`` for unsigned maps and ``RdBu_r`` (ColorBrewer
blue-white-red) for signed maps, each sampled at 256 entries.
"""

from __future__ import annotations

import numpy as np

N_COLORS = 256
SEQUENTIAL = "XAIMed Inferno"
DIVERGING = "XAIMed DivergingBlueWhiteRed"
_SOURCES = {SEQUENTIAL: "inferno", DIVERGING: "RdBu_r"}
KIND_ATTRIBUTE = "XAIMed.colormap"


def colormap_rgba(name: str, n: int = N_COLORS) -> np.ndarray:
    """(n, 4) RGBA in 0..1 of ``SEQUENTIAL`` or ``DIVERGING`` (the values the colour nodes hold)."""
    import matplotlib

    source = _SOURCES.get(name, name)
    return np.asarray(matplotlib.colormaps[source].resampled(n)(np.linspace(0.0, 1.0, n)), dtype=float)


def _color_table_node(scene, name: str):
    for node in _nodes_by_class(scene, "vtkMRMLColorTableNode"):
        if node.GetName() == name and node.GetAttribute(KIND_ATTRIBUTE) == name:
            return node
    rgba = colormap_rgba(name)
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    node.SetTypeToUser()
    node.SetNumberOfColors(len(rgba))
    node.GetLookupTable().SetTableRange(0, len(rgba) - 1)
    for index, (r, g, b, a) in enumerate(rgba):
        node.SetColor(index, f"{index}", float(r), float(g), float(b), float(a))
    node.SetAttribute(KIND_ATTRIBUTE, name)
    node.SetAttribute("XAIMed.source", f"matplotlib '{_SOURCES[name]}', {len(rgba)} entries")
    node.SetAttribute("Category", "XAIMed")
    return node


def sequential_color_node(scene):
    """The inferno colour table for unsigned maps (created once per scene)."""
    return _color_table_node(getattr(scene, "scene", scene), SEQUENTIAL)


def diverging_color_node(scene):
    """The blue-white-red colour table for signed maps (created once per scene)."""
    return _color_table_node(getattr(scene, "scene", scene), DIVERGING)


def color_node_for(scene, signed: bool):
    """Diverging colour table for signed maps, sequential for unsigned ones."""
    return diverging_color_node(scene) if signed else sequential_color_node(scene)


def color_node_rgba(color_node) -> np.ndarray:
    """(n, 4) RGBA table of a colour node, read back from the node itself."""
    out = np.zeros((color_node.GetNumberOfColors(), 4))
    for index in range(len(out)):
        color = [0.0, 0.0, 0.0, 0.0]
        color_node.GetColor(index, color)
        out[index] = color
    return out


def add_color_legend(ss, volume_node, title: str | None = None):
    """A colour legend for ``volume_node``'s display (vtkMRMLColorLegendDisplayNode via the colours logic)."""
    legend = ss.color_logic.GetColorLegendDisplayNode(volume_node)
    if legend is None:
        legend = ss.color_logic.AddDefaultColorLegendDisplayNode(volume_node)
    legend.SetTitleText(title or volume_node.GetName())
    legend.SetVisibility(True)
    legend.SetLabelFormat("%.3g")
    return legend


def _nodes_by_class(scene, class_name: str) -> list:
    collection = scene.GetNodesByClass(class_name)
    return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]
