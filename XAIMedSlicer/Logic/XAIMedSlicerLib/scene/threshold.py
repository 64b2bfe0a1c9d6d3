"""Symmetric threshold of signed maps: hide |value| < t in the slice views and in 3D.

A scalar display node's threshold keeps one range [lower, upper] visible, so it cannot hide a band
around zero while keeping both tails. Signed maps are therefore thresholded through colour-table alpha:
the map gets its own copy of its colour table (a saved ``vtkMRMLColorTableNode`` tagged
``XAIMed.threshold_of``) in which the entries holding only values inside (-t, t) are fully transparent.
Slice views multiply the overlay by the table's alpha. They map a value to one of ``LEVELS`` = 256
levels of the colour window first (level b holds [lower + b w/255, lower + (b+1) w/255), w the window)
and then to table entry b, so the copy has 256 entries: every value with |value| >= t stays visible,
every value with |value| < t - w/255 is hidden. The map's values are not changed: the data probe and
statistics still read the true values, and a saved scene keeps the setting.

3D: Slicer's volume rendering, when it follows the slice display, ramps opacity from the low end of the
window, which hides negative evidence. :func:`set_symmetric_volume_rendering` gives a signed map the
colours of its colour table and an opacity of 0 inside (-t, t), rising with |value| to 1 at the ends of
the window.
"""

from __future__ import annotations

import numpy as np

from ..errors import XAIError
from .provenance import PREFIX

LEVELS = 256  # slice views quantise the colour window to 8 bits before the colour table
THRESHOLD_OF = PREFIX + "threshold_of"  # on the derived table: the ID of the map it belongs to
BASE = PREFIX + "threshold_base"  # on the derived table: the ID of the colour table it copies
THRESHOLD = PREFIX + "symmetric_threshold"  # on the map: t (absent when off)


def window_bounds(node) -> tuple[float, float]:
    """The colour window [lower, upper] of a map's display node."""
    display = node.GetDisplayNode()
    half = display.GetWindow() / 2.0
    return display.GetLevel() - half, display.GetLevel() + half


def two_sided_color_node(node):
    """The map's own thresholded colour table (shown or not), or None when it has none."""
    color = node.GetDisplayNode().GetColorNode()
    if color is not None and color.GetAttribute(THRESHOLD_OF) == node.GetID():
        return color
    tables = node.GetScene().GetNodesByClass("vtkMRMLColorTableNode")
    for index in range(tables.GetNumberOfItems()):
        table = tables.GetItemAsObject(index)
        if table.GetAttribute(THRESHOLD_OF) == node.GetID():
            return table
    return None


def base_color_node(node):
    """The colour table the map shows, without the symmetric threshold."""
    color = node.GetDisplayNode().GetColorNode()
    if color is not None and color.GetAttribute(THRESHOLD_OF) == node.GetID():
        return node.GetScene().GetNodeByID(color.GetAttribute(BASE))
    return color


def level_ranges(lower: float, upper: float) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of the values each of the ``LEVELS`` display levels of a window holds: [start, end)."""
    step = (upper - lower) / (LEVELS - 1)
    start = lower + np.arange(LEVELS) * step
    return start, start + step


def symmetric_threshold(node) -> float | None:
    """The symmetric threshold t set on a map, or None."""
    value = node.GetAttribute(THRESHOLD)
    return float(value) if value is not None else None


def set_symmetric_threshold(node, t: float | None):
    """Hide the values of ``node`` with |value| < ``t`` in the slice views (None or 0 turns it off).

    Call it after the colour map and window are set (``overlay.set_colormap``): the transparent entries
    are placed on the current window. Returns the thresholded colour table (None when off).
    """
    scene = node.GetScene()
    display = node.GetDisplayNode()
    base = base_color_node(node)
    derived = two_sided_color_node(node)
    if t is None or t <= 0:
        display.SetAndObserveColorNodeID(base.GetID())
        if derived is not None:
            scene.RemoveNode(derived)
        node.RemoveAttribute(THRESHOLD)
        return None
    if not np.isfinite(t):
        raise XAIError(f"threshold {t} is not a number", "give a finite threshold")
    if derived is None:
        derived = scene.AddNewNodeByClass("vtkMRMLColorTableNode", f"{node.GetName()} colours |v|>=t")
        derived.SetTypeToUser()
        derived.SetAttribute(THRESHOLD_OF, node.GetID())
        derived.SetAttribute("Category", "XAIMed")
        derived.SetNumberOfColors(LEVELS)
        derived.GetLookupTable().SetTableRange(0, LEVELS - 1)
    derived.SetAttribute(BASE, base.GetID())
    n_base = base.GetNumberOfColors()
    start, end = level_ranges(*window_bounds(node))
    visible = (start <= -t) | (end > t)
    color = [0.0, 0.0, 0.0, 0.0]
    modifying = derived.StartModify()  # one Modified event for the whole table
    for index in range(LEVELS):
        base.GetColor(index * n_base // LEVELS, color)
        derived.SetColor(index, str(index), color[0], color[1], color[2], color[3] if visible[index] else 0.0)
    derived.EndModify(modifying)
    display.SetAndObserveColorNodeID(derived.GetID())
    node.SetAttribute(THRESHOLD, repr(float(t)))
    return derived


def set_symmetric_volume_rendering(display, node, t: float | None) -> None:
    """3D of a signed map: its colour table's colours, opacity 0 for |value| < t, rising to 1 at the window's ends.

    ``display`` is the map's vtkMRMLVolumeRenderingDisplayNode; its following of the slice display is
    turned off (that would ramp opacity from the window's low end only).
    """
    import vtk

    lower, upper = window_bounds(node)
    m = max(abs(lower), abs(upper))
    t = min(max(float(t or 0.0), 0.0), m)
    display.SetFollowVolumeDisplayNode(False)
    colors = vtk.vtkColorTransferFunction()
    table = base_color_node(node)
    n = table.GetNumberOfColors()
    rgba = [0.0, 0.0, 0.0, 0.0]
    for index, value in enumerate(lower + (np.arange(n) + 0.5) * (upper - lower) / n):
        table.GetColor(index, rgba)
        colors.AddRGBPoint(float(value), rgba[0], rgba[1], rgba[2])
    opacity = vtk.vtkPiecewiseFunction()
    if t >= m:
        points = ((-m, 0.0), (m, 0.0))
    elif t > 0:
        points = ((-m, 1.0), (-t, 0.0), (t, 0.0), (m, 1.0))
    else:
        points = ((-m, 1.0), (0.0, 0.0), (m, 1.0))
    for value, alpha in points:
        opacity.AddPoint(value, alpha)
    properties = display.GetVolumePropertyNode()
    properties.SetColor(colors)
    properties.SetScalarOpacity(opacity)
