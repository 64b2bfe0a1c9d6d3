"""'Only inside selected structures': a masked copy of a map, zero outside chosen segments."""

from __future__ import annotations

import numpy as np

from ..errors import XAIError
from .overlay import SIGNED, add_attribution_node, copy_run_attributes
from .provenance import PREFIX, get_provenance
from .volumes import volume_from_node


def _node_ids(scene) -> set[str]:
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def segments_mask(ss, segmentation_node, segment_ids, reference_node) -> np.ndarray:
    """Boolean array [k, j, i] on ``reference_node``'s grid: True inside any of ``segment_ids``.

    Uses the segmentations logic's export onto the reference geometry; every temporary node it makes is
    removed again, and the segmentation is not modified.
    """
    import vtk

    scene = ss.scene
    segment_ids = [segment_ids] if isinstance(segment_ids, str) else list(segment_ids)
    seg = segmentation_node.GetSegmentation()
    unknown = [s for s in segment_ids if seg.GetSegment(s) is None]
    if unknown or not segment_ids:
        raise XAIError(f"unknown or no segments {unknown}", "choose segments of the structures segmentation")
    ids = vtk.vtkStringArray()
    for segment_id in segment_ids:
        ids.InsertNextValue(segment_id)
    before = _node_ids(scene)
    temporary = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "XAIMed temporary mask")
    try:
        ok = ss.segmentations_logic.ExportSegmentsToLabelmapNode(
            segmentation_node,
            ids,
            temporary,
            reference_node,
            0,  # 0: extent of the reference geometry
        )
        if not ok:
            raise XAIError("Slicer could not rasterise the chosen segments", "check the segmentation")
        mask = volume_from_node(temporary, world=False)
    finally:
        for node_id in _node_ids(scene) - before:
            node = scene.GetNodeByID(node_id)
            if node is not None:
                scene.RemoveNode(node)
    reference = volume_from_node(reference_node, world=False)
    if not mask.same_grid(reference):
        raise XAIError("the segment mask is not on the map's grid", "report this as a bug")
    return mask.array > 0


def mask_to_segments(ss, node, segmentation_node, segment_ids, name: str | None = None):
    """A new map node equal to ``node`` inside the chosen segments and 0 outside (``node`` unchanged).

    It keeps ``node``'s colour map, window/level and threshold and carries its provenance plus the
    segments it was restricted to (``XAIMed.masked_to``).
    """
    segment_ids = [segment_ids] if isinstance(segment_ids, str) else list(segment_ids)
    mask = segments_mask(ss, segmentation_node, segment_ids, node)
    volume = volume_from_node(node, world=False)
    masked = volume.with_array(np.where(mask, volume.array, 0).astype(np.float32))
    names = [segmentation_node.GetSegmentation().GetSegment(s).GetName() for s in segment_ids]
    out = add_attribution_node(
        ss,
        masked,
        signed=node.GetAttribute(SIGNED) == "1",
        name=name or f"{node.GetName()} in {', '.join(names)}"[:120],
        provenance=get_provenance(node) or None,
    )
    source, target = node.GetDisplayNode(), out.GetDisplayNode()
    target.SetAndObserveColorNodeID(source.GetColorNodeID())
    target.SetAutoWindowLevel(0)
    target.SetWindowLevel(source.GetWindow(), source.GetLevel())
    target.SetApplyThreshold(source.GetApplyThreshold())
    target.SetLowerThreshold(source.GetLowerThreshold())
    target.SetUpperThreshold(source.GetUpperThreshold())
    copy_run_attributes(node, out)
    out.SetAttribute(PREFIX + "derived_from", node.GetID())
    out.SetAttribute(PREFIX + "derivation", "masked to segments")
    out.SetAttribute(PREFIX + "masked_to", ";".join(names))
    out.SetAttribute(PREFIX + "masked_to_segment_ids", ";".join(segment_ids))
    return out
