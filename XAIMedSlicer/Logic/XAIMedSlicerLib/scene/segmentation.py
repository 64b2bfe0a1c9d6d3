"""A segmentation node of anatomical structures, imported from a label map Volume."""

from __future__ import annotations

import numpy as np

from ..errors import XAIError
from ..geometry.volume import Volume
from .colortables import Color, palette_color
from .provenance import PREFIX
from .terminology import set_segment_terminology
from .volumes import add_volume, unique_node_name

LABEL_TAG = PREFIX + "label"


def add_label_color_table(scene, colors: dict[int, tuple[str, Color]], name: str):
    """A colour table node holding each label's name and colour (label map display, outlines)."""
    size = max(colors, default=0) + 1
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", unique_node_name(scene, name))
    node.SetTypeToUser()
    node.SetNumberOfColors(size)
    node.GetLookupTable().SetTableRange(0, size - 1)
    node.SetColor(0, "background", 0.0, 0.0, 0.0, 0.0)
    for value in range(1, size):
        if value in colors:
            label_name, (r, g, b) = colors[value]
            node.SetColor(value, label_name, r, g, b, 1.0)
        else:
            node.SetColor(value, "", 0.0, 0.0, 0.0, 0.0)
            node.SetColorDefined(value, False)
    return node


def structure_colors(
    values, names: dict[int, str], colors: dict[int, Color | None] | None
) -> dict[int, tuple[str, Color]]:
    """Name and colour of every label value: given colours first, else the stable palette."""
    colors = colors or {}
    out = {}
    for value in values:
        value = int(value)
        color = colors.get(value)
        out[value] = (names.get(value, f"label {value}"), tuple(color) if color else palette_color(value))
    return out


def add_segmentation(
    ss,
    labels: Volume,
    names: dict[int, str],
    *,
    colors: dict[int, Color | None] | None = None,
    reference_node=None,
    name: str = "Structures",
    closed_surface: bool = True,
    keep_labelmap: bool = True,
):
    """Import ``labels`` (integer label map) as a new segmentation node; returns (segmentation, labelmap).

    One segment per non-zero label present, named from ``names``, coloured from ``colors`` (RGB 0..1)
    or a stable palette, tagged ``XAIMed.label`` with its label value and SNOMED CT terminology.
    The reference geometry is ``reference_node`` (the scan) or the label map itself. The label map
    volume node (with a colour table of the same names and colours) stays in the scene: slice views
    draw it as segment outlines. With ``keep_labelmap=False`` both are removed and None is returned for it.
    """
    array = np.asarray(labels.array)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.bool_)):
        if np.any(array != np.round(array)):
            raise XAIError("the label map holds non-integer values", "give an integer label map")
    present = [int(v) for v in np.unique(array) if v != 0]
    if not present:
        raise XAIError("the label map holds no structures (all zero)", "give a label map with labels > 0")
    if min(present) < 0:
        raise XAIError(f"the label map holds negative labels ({min(present)})", "use labels >= 1")
    scene = ss.scene
    table = structure_colors(present, names, colors)
    labelmap = add_volume(ss, labels, f"{name} labels", label_map=True)
    color_node = add_label_color_table(scene, table, f"{name} colours")
    labelmap.GetDisplayNode().SetAndObserveColorNodeID(color_node.GetID())

    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", unique_node_name(scene, name))
    segmentation.CreateDefaultDisplayNodes()
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference_node or labelmap)
    if not ss.segmentations_logic.ImportLabelmapToSegmentationNode(labelmap, segmentation):
        raise XAIError("Slicer could not import the label map into a segmentation", "check the label map")
    _name_segments(segmentation, table)
    if closed_surface:
        segmentation.CreateClosedSurfaceRepresentation()
    display = segmentation.GetDisplayNode()
    display.SetVisibility(True)
    display.SetVisibility3D(True)
    display.SetOpacity2DFill(0.15)
    segmentation.SetAttribute(PREFIX + "role", "structures")
    if not keep_labelmap:
        scene.RemoveNode(labelmap)
        scene.RemoveNode(color_node)
        return segmentation, None
    labelmap.SetAttribute(PREFIX + "role", "structure labels")
    labelmap.SetAttribute(PREFIX + "segmentation", segmentation.GetID())
    return segmentation, labelmap


def _name_segments(segmentation, table: dict[int, tuple[str, Color]]) -> None:
    seg = segmentation.GetSegmentation()
    seen = set()
    for index in range(seg.GetNumberOfSegments()):
        segment = seg.GetNthSegment(index)
        value = int(segment.GetLabelValue())
        if value not in table:
            raise XAIError(f"imported segment has unexpected label {value}", "report this as a bug")
        label_name, color = table[value]
        segment.SetName(label_name)
        segment.SetColor(*color)
        segment.SetTag(LABEL_TAG, str(value))
        set_segment_terminology(segment, label_name)
        seen.add(value)
    missing = set(table) - seen
    if missing:
        raise XAIError(f"labels {sorted(missing)} were not imported as segments", "report this as a bug")


def segment_tag(segment, key: str) -> str | None:
    """A segment's tag value, or None when it has none."""
    import vtk

    value = vtk.reference("")
    return str(value) if segment.GetTag(key, value) else None


def segment_ids(segmentation) -> list[str]:
    """IDs of every segment, in order."""
    seg = segmentation.GetSegmentation()
    return [seg.GetNthSegmentID(i) for i in range(seg.GetNumberOfSegments())]


def segment_id_for_label(segmentation, label: int) -> str | None:
    """ID of the segment tagged with ``label`` (or whose label value is ``label``)."""
    seg = segmentation.GetSegmentation()
    for segment_id in segment_ids(segmentation):
        segment = seg.GetSegment(segment_id)
        tag = segment_tag(segment, LABEL_TAG)
        if (tag is not None and int(tag) == int(label)) or (tag is None and segment.GetLabelValue() == label):
            return segment_id
    return None


def segment_label(segmentation, segment_id: str) -> int | None:
    """The label value a segment was imported from (its ``XAIMed.label`` tag), or None."""
    segment = segmentation.GetSegmentation().GetSegment(segment_id)
    tag = segment_tag(segment, LABEL_TAG) if segment is not None else None
    return int(tag) if tag is not None else None
