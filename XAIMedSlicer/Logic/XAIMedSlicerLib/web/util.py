"""Small helpers of the web viewer: errors into the page, numbers from the page, scene look-ups."""

from __future__ import annotations

import logging

from ..errors import XAIError

log = logging.getLogger(__name__)


class Reported:
    """Context manager: an XAIError (or anything else) becomes the page's one-line message."""

    def __init__(self, state) -> None:
        self.state = state

    def __enter__(self):
        return self

    def __exit__(self, kind, error, _tb) -> bool:
        if error is None or not isinstance(error, Exception):
            return False
        with self.state:
            if isinstance(error, XAIError):
                self.state.message = str(error)
            else:
                log.exception("XAIMedSlicer web viewer")
                self.state.message = f"internal error: {type(error).__name__}: {error}"
        return True


def target_text(node) -> str:
    """What was explained, from the map's provenance: class, region and its size."""
    from ..scene import get_provenance

    target = get_provenance(node).get("target") or {}
    if not isinstance(target, dict) or not target:
        return ""
    text = f"target: {target.get('class_name', target.get('kind', ''))}"
    if target.get("region"):
        text += f", {target['region']} region of {target.get('region_voxels', '?')} voxels"
    return text


def compact_legend(legend, bundle) -> None:
    """A slim colour bar at the right edge of each view, titled with the method."""
    if legend is None:
        return
    legend.SetTitleText(str(bundle.run_name.split(" ")[1] if " " in bundle.run_name else bundle.run_name))
    legend.SetSize(0.08, 0.4)
    legend.GetTitleTextProperty().SetFontSize(14)
    legend.GetLabelTextProperty().SetFontSize(11)


def number(value, lo: float, hi: float) -> float:
    try:
        return min(max(float(value), lo), hi)
    except (TypeError, ValueError):
        raise XAIError(f"'{value}' is not a number", f"give a number between {lo} and {hi}") from None


def segmentations(scene) -> list:
    nodes = scene.GetNodesByClass("vtkMRMLSegmentationNode")
    return [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]


def peak_ras(bundle):
    import numpy as np

    from ..scene import volume_from_node

    volume = volume_from_node(bundle.attribution_node, world=False)
    k, j, i = np.unravel_index(int(np.argmax(volume.array)), volume.array.shape)
    return volume.index_to_ras((i, j, k))


def make_global(ss) -> None:
    """``slicer.mrmlScene`` / ``slicer.modules`` point at the viewer's scene (``slicer.util`` helpers)."""
    import slicer

    from ..scene.app import HeadlessModules

    slicer.mrmlScene = ss.scene
    if getattr(slicer, "app", None) is None:
        slicer.modules = HeadlessModules(ss)
