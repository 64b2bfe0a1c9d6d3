"""The overlay controls of the Slicer module applied to one result: ``apply_display(bundle, settings)``.

Derived maps (|map|, the map inside chosen segments) are new nodes, made once and reused: the source map
remembers each one's ID in an ``XAIMed.derived.<key>`` attribute, so the cache survives a saved scene.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import XAIError
from .colormaps import add_color_legend
from .masking import mask_to_segments
from .overlay import (
    SIGNED,
    absolute_value_node,
    display_range,
    set_colormap,
    set_opacity,
    set_threshold,
    show_in_slice_views,
)
from .provenance import PREFIX
from .threshold import set_symmetric_threshold, set_symmetric_volume_rendering
from .volume_rendering import add_volume_rendering
from .volumes import volume_from_node

COLOR_MAPS = ("auto", "sequential", "diverging")
DERIVED = PREFIX + "derived."


@dataclass
class DisplaySettings:
    """How a result is shown.

    * ``color_map``: ``auto`` (diverging for signed maps, sequential otherwise), ``sequential`` or
      ``diverging``;
    * ``threshold``: fraction 0..1. Unsigned maps hide values below ``min + threshold x (max - min)``;
      signed maps hide |value| < ``threshold x max|value|`` (:mod:`.threshold`);
    * ``absolute_value``: show |map| of a signed map (a derived node);
    * ``only_inside_selected``: show the map only inside the selected segments (a derived node).
    """

    color_map: str = "auto"
    opacity: float = 0.5
    threshold: float = 0.1
    show_legend: bool = True
    absolute_value: bool = False
    volume_rendering: bool = False
    only_inside_selected: bool = False

    def __post_init__(self) -> None:
        self.color_map = str(getattr(self.color_map, "value", self.color_map))
        if self.color_map not in COLOR_MAPS:
            raise XAIError(f"unknown colour map '{self.color_map}'", f"use one of {', '.join(COLOR_MAPS)}")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise XAIError(f"threshold {self.threshold} is outside 0..1", "give a fraction between 0 and 1")

    @classmethod
    def from_parameters(cls, p) -> DisplaySettings:
        """The settings of the module's parameter node (or any object with its attribute names)."""
        return cls(
            color_map=p.colorMap,
            opacity=float(p.opacity),
            threshold=float(p.threshold),
            show_legend=bool(p.showLegend),
            absolute_value=bool(p.absoluteValue),
            volume_rendering=bool(p.volumeRendering),
            only_inside_selected=bool(p.onlyInsideSelected),
        )


def derived_map(bundle, source, key: str, make: Callable[[], object]):
    """The map derived from ``source`` under ``key``, made by ``make()`` the first time only."""
    attribute = DERIVED + key
    node_id = source.GetAttribute(attribute)
    node = bundle.scene.GetNodeByID(node_id) if node_id else None
    if node is None:
        node = make()
        node.SetAttribute(PREFIX + "run", bundle.run_name)
        source.SetAttribute(attribute, node.GetID())
        bundle.derived_nodes.append(node)
    return node


def shown_map(bundle, settings: DisplaySettings, segment_ids: Iterable[str] = ()):
    """The node that ``settings`` show: the attribution map, its |map|, or either inside the segments."""
    shown = bundle.attribution_node
    if settings.absolute_value and bundle.signed:
        shown = derived_map(bundle, shown, "absolute", lambda: absolute_value_node(bundle.ss, shown))
    segment_ids = sorted(segment_ids)
    if settings.only_inside_selected and segment_ids and bundle.segmentation_node is not None:
        base = shown
        shown = derived_map(
            bundle,
            base,
            "masked:" + ";".join(segment_ids),
            lambda: mask_to_segments(bundle.ss, base, bundle.segmentation_node, segment_ids),
        )
    return shown


def apply_display(bundle, settings: DisplaySettings, segment_ids: Iterable[str] = ()):
    """Show the result as ``settings`` say in the slice views (and in 3D); returns the node shown.

    ``segment_ids``: the selected structures (used with ``only_inside_selected``). Only nodes of the
    run (and its derived maps) change; the scan and the user's segmentations are left as they are.
    """
    shown = shown_map(bundle, settings, segment_ids)
    signed = shown.GetAttribute(SIGNED) == "1"
    diverging = settings.color_map == "diverging" or (settings.color_map == "auto" and signed)
    set_colormap(shown, "diverging" if diverging else "sequential")
    lo, hi = display_range(volume_from_node(shown, world=False).array, signed)
    if signed:
        set_threshold(shown, None)
        set_symmetric_threshold(shown, settings.threshold * hi if settings.threshold > 0 else None)
    else:
        set_threshold(shown, lo + settings.threshold * (hi - lo) if settings.threshold > 0 else None)
    show_in_slice_views(bundle.ss, bundle.image_node, shown, settings.opacity, label=bundle.labelmap_node)
    set_opacity(bundle.ss, settings.opacity, shown)
    legend = add_color_legend(bundle.ss, shown, shown.GetName())
    legend.SetVisibility(bool(settings.show_legend))
    logic = bundle.ss.volume_rendering_logic
    for node in bundle.map_nodes():
        rendering = logic.GetFirstVolumeRenderingDisplayNode(node)
        if rendering is not None and node is not shown:
            rendering.SetVisibility(False)
    if settings.volume_rendering:
        rendering = add_volume_rendering(bundle, shown)
        if signed:
            set_symmetric_volume_rendering(rendering, shown, settings.threshold * hi)
    else:
        rendering = logic.GetFirstVolumeRenderingDisplayNode(shown)
        if rendering is not None:
            rendering.SetVisibility(False)
    return shown
