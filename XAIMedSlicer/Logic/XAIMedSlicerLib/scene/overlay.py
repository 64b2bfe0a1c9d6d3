"""The attribution overlay: its volume node, colour map, window/level, threshold and opacity."""

from __future__ import annotations

import numpy as np

from ..errors import XAIError
from ..geometry.volume import Volume
from .app import SLICE_VIEWS
from .colormaps import color_node_for, diverging_color_node, sequential_color_node
from .provenance import PREFIX, get_provenance, set_provenance
from .volumes import add_volume, node_ijk_to_ras, volume_from_node

SIGNED = PREFIX + "signed"
ROLE = PREFIX + "role"


def display_range(array: np.ndarray, signed: bool) -> tuple[float, float]:
    """Window of a map: [-m, m] with m = max |value| when signed, else [min, max] (never empty)."""
    finite = np.asarray(array, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (-1.0, 1.0) if signed else (0.0, 1.0)
    if signed:
        m = float(np.abs(finite).max())
        m = m if m > 0 else 1.0
        return -m, m
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def add_attribution_node(
    ss,
    attribution: Volume,
    *,
    signed: bool,
    name: str = "Attribution",
    provenance: dict | None = None,
    reference_node=None,
    threshold: float | None = None,
):
    """Add the map as a new scalar volume node with a display node ready for overlay.

    The node's IJKToRAS is the attribution's exact grid; with ``reference_node`` (the scan) the grids
    must agree to 1e-4 mm. Colour map: diverging when ``signed`` (window symmetric about 0), inferno
    otherwise (window = data range). ``threshold``: values below it are transparent (None: off).
    """
    if reference_node is not None:
        check_same_grid(reference_node, attribution)
    node = add_volume(ss, attribution.with_array(np.asarray(attribution.array, dtype=np.float32)), name)
    node.SetAttribute(SIGNED, "1" if signed else "0")
    node.SetAttribute(ROLE, "attribution")
    if provenance is not None:
        set_provenance(node, provenance)
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(color_node_for(ss.scene, signed).GetID())
    lo, hi = display_range(attribution.array, signed)
    set_window(node, lo, hi)
    set_threshold(node, threshold)
    return node


def check_same_grid(reference_node, volume: Volume, tol: float = 1e-4) -> None:
    """Raise XAIError unless ``reference_node`` has ``volume``'s size and IJKToRAS (to ``tol`` mm)."""
    image = reference_node.GetImageData()
    size = tuple(image.GetDimensions()) if image is not None else None
    ijk_to_ras = node_ijk_to_ras(reference_node, world=True)
    if size != volume.size or not np.allclose(ijk_to_ras, volume.ijk_to_ras(), atol=tol):
        raise XAIError(
            f"the map's grid {volume.size} does not match volume '{reference_node.GetName()}' {size}",
            "compute the attribution on that volume's own grid",
        )


def set_window(node, lower: float, upper: float) -> None:
    """Fixed window/level mapping ``lower``..``upper`` onto the colour map's ends."""
    display = node.GetDisplayNode()
    display.SetAutoWindowLevel(0)
    display.SetWindowLevelMinMax(float(lower), float(upper))


def set_threshold(node, lower: float | None, upper: float | None = None) -> None:
    """Hide values outside [lower, upper] (``upper`` None: no upper bound); ``lower`` None turns it off."""
    display = node.GetDisplayNode()
    if lower is None:
        display.SetApplyThreshold(0)
        return
    if upper is None:
        scalar_range = node.GetImageData().GetScalarRange()
        upper = max(float(scalar_range[1]), float(lower)) + 1.0
    display.SetAutoThreshold(0)
    display.SetLowerThreshold(float(lower))
    display.SetUpperThreshold(float(upper))
    display.SetApplyThreshold(1)


def set_colormap(node, color) -> None:
    """Colour map of an overlay: a colour node, its ID, or "sequential" / "diverging".

    Switching to diverging makes the window symmetric about 0; to sequential, the window is the data range.
    """
    scene = node.GetScene()
    if color == "sequential":
        color, signed = sequential_color_node(scene), False
    elif color == "diverging":
        color, signed = diverging_color_node(scene), True
    else:
        color = scene.GetNodeByID(color) if isinstance(color, str) else color
        if color is None:
            raise XAIError("unknown colour node", "give a colour node, its ID, 'sequential' or 'diverging'")
        signed = None
    node.GetDisplayNode().SetAndObserveColorNodeID(color.GetID())
    if signed is not None:
        set_window(node, *display_range(volume_from_node(node, world=False).array, signed))


def set_opacity(ss, opacity: float, node=None) -> None:
    """Foreground (overlay) opacity of every slice view in the scene, 0..1.

    With ``node`` its display node's opacity is set too (used by views that honour it).
    """
    if not 0.0 <= float(opacity) <= 1.0:
        raise XAIError(f"opacity {opacity} is outside 0..1", "give an opacity between 0 and 1")
    for composite in composite_nodes(ss.scene):
        composite.SetForegroundOpacity(float(opacity))
    if node is not None:
        node.GetDisplayNode().SetOpacity(float(opacity))


def composite_nodes(scene) -> list:
    """Every slice composite node of the scene (one per slice view)."""
    nodes = scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    return [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]


def show_in_slice_views(ss, background, foreground, opacity: float = 0.5, label=None) -> None:
    """Scan as background, overlay as foreground at ``opacity``, optional label map drawn as outlines."""
    for composite in composite_nodes(ss.scene):
        composite.SetBackgroundVolumeID(background.GetID() if background is not None else None)
        composite.SetForegroundVolumeID(foreground.GetID() if foreground is not None else None)
        composite.SetLabelVolumeID(label.GetID() if label is not None else None)
        composite.SetLabelOpacity(1.0)
    set_opacity(ss, opacity)
    for layout_name in SLICE_VIEWS:
        if layout_name in ss.slice_logics:
            ss.slice_node(layout_name).SetUseLabelOutline(True)


def absolute_value_node(ss, node, name: str | None = None):
    """A new node holding |map| on the same grid (sequential colour map); ``node`` is left unchanged."""
    volume = volume_from_node(node, world=False)
    absolute = volume.with_array(np.abs(volume.array).astype(np.float32))
    out = add_attribution_node(
        ss,
        absolute,
        signed=False,
        name=name or f"{node.GetName()} |abs|",
        provenance=get_provenance(node) or None,
    )
    copy_run_attributes(node, out)
    out.SetAttribute(PREFIX + "derived_from", node.GetID())
    out.SetAttribute(PREFIX + "derivation", "absolute value")
    return out


def copy_run_attributes(source, target) -> None:
    """Give a derived map the run and scan of the map it was made from."""
    for key in ("run", "scan", "prediction"):
        value = source.GetAttribute(PREFIX + key)
        if value is not None:
            target.SetAttribute(PREFIX + key, value)
