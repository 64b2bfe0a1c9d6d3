"""What the Slicer module calls when the user picks a structure: centre views, highlight, sync rows."""

from __future__ import annotations

import numpy as np

from ..errors import XAIError
from .provenance import PREFIX
from .segmentation import segment_id_for_label, segment_ids, segment_label
from .table import table_rows

HIGHLIGHT = PREFIX + "highlighted"
DIM_OPACITY = 0.25


def _slice_nodes(scene) -> list:
    nodes = scene.GetNodesByClass("vtkMRMLSliceNode")
    return [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]


def center_slice_views(ss, ras) -> np.ndarray:
    """Move every slice view so that its plane passes through ``ras`` and its centre is ``ras``.

    The crosshair is placed there too. Returns the point (RAS mm).
    """
    scene = getattr(ss, "scene", ss)
    r, a, s = (float(v) for v in np.asarray(ras, dtype=float).reshape(3))
    for node in _slice_nodes(scene):
        node.JumpSliceByCentering(r, a, s)
    crosshairs = scene.GetNodesByClass("vtkMRMLCrosshairNode")
    for i in range(crosshairs.GetNumberOfItems()):
        crosshairs.GetItemAsObject(i).SetCrosshairRAS(r, a, s)
    return np.array([r, a, s])


def slice_view_center(slice_node) -> np.ndarray:
    """RAS centre of a slice view (translation of its SliceToRAS)."""
    matrix = slice_node.GetSliceToRAS()
    return np.array([matrix.GetElement(i, 3) for i in range(3)])


def _row(bundle, row_or_label) -> dict:
    rows = table_rows(bundle.table_node) if bundle.table_node is not None else bundle.structures
    if isinstance(row_or_label, dict):
        return row_or_label
    if isinstance(row_or_label, str):
        match = [row for row in rows if row["name"] == row_or_label]
    else:
        match = [row for row in rows if int(row["label"]) == int(row_or_label)]
    if not match:
        raise XAIError(f"no structure {row_or_label!r} in the table", "pick a structure listed in the table")
    return match[0]


def row_at(bundle, index: int) -> dict:
    """The table row at ``index`` (0-based, table order: by decreasing share)."""
    rows = table_rows(bundle.table_node) if bundle.table_node is not None else bundle.structures
    if not 0 <= index < len(rows):
        raise XAIError(f"table row {index} does not exist ({len(rows)} rows)", "pick a listed row")
    return rows[index]


def center_on_structure(bundle, row_or_label) -> np.ndarray:
    """Centre all slice views on a structure's attribution peak and highlight its segment.

    ``row_or_label``: a table row dict, a label value or a structure name. Returns the peak (RAS mm).
    """
    row = _row(bundle, row_or_label)
    ras = center_slice_views(bundle.ss, (row["peak_r"], row["peak_a"], row["peak_s"]))
    if bundle.segmentation_node is not None:
        segment_id = segment_id_for_label(bundle.segmentation_node, int(row["label"]))
        if segment_id is not None:
            highlight_segment(bundle, segment_id)
    return ras


def highlight_segment(bundle, segment_id: str) -> None:
    """Show one segment at full opacity and dim the others (display properties only)."""
    segmentation = bundle.segmentation_node
    if segmentation.GetSegmentation().GetSegment(segment_id) is None:
        raise XAIError(f"segment {segment_id} does not exist", "pick a segment of the structures")
    display = segmentation.GetDisplayNode()
    for other in segment_ids(segmentation):
        opacity = 1.0 if other == segment_id else DIM_OPACITY
        display.SetSegmentOpacity2DOutline(other, opacity)
        display.SetSegmentOpacity2DFill(other, opacity)
        display.SetSegmentOpacity3D(other, opacity)
    segmentation.SetAttribute(HIGHLIGHT, segment_id)


def clear_highlight(bundle) -> None:
    """Every segment back at full opacity."""
    segmentation = bundle.segmentation_node
    display = segmentation.GetDisplayNode()
    for segment_id in segment_ids(segmentation):
        display.SetSegmentOpacity2DOutline(segment_id, 1.0)
        display.SetSegmentOpacity2DFill(segment_id, 1.0)
        display.SetSegmentOpacity3D(segment_id, 1.0)
    segmentation.RemoveAttribute(HIGHLIGHT)


def highlighted_segment(bundle) -> str | None:
    """The segment last highlighted, or None."""
    return bundle.segmentation_node.GetAttribute(HIGHLIGHT) if bundle.segmentation_node else None


def row_for_segment(bundle, segment_id: str) -> int | None:
    """Table row (0-based) of a segment: by its ``XAIMed.label`` tag, else by its name."""
    segmentation = bundle.segmentation_node
    segment = segmentation.GetSegmentation().GetSegment(segment_id) if segmentation else None
    if segment is None:
        return None
    label = segment_label(segmentation, segment_id)
    rows = table_rows(bundle.table_node) if bundle.table_node is not None else bundle.structures
    for index, row in enumerate(rows):
        if (label is not None and int(row["label"]) == label) or (
            label is None and row["name"] == segment.GetName()
        ):
            return index
    return None


def segment_for_row(bundle, index: int) -> str | None:
    """Segment ID of the table row at ``index`` (0-based), or None."""
    row = row_at(bundle, index)
    if bundle.segmentation_node is None:
        return None
    return segment_id_for_label(bundle.segmentation_node, int(row["label"]))
