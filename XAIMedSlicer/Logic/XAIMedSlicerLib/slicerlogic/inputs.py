"""The worker's inputs from the scene: segments rasterised on the scan's grid, the target region."""

from __future__ import annotations

from ..errors import XAIError
from ..geometry.volume import Volume
from .request import choice


def segmentation_to_labels(
    ss, segmentation_node, reference_node, segment_ids=None
) -> tuple[Volume, dict[int, str], dict[int, tuple]]:
    """Segments rasterised on the reference volume's grid: (labels Volume, names, colours RGB 0..1).

    Label value i+1 is the i-th segment of ``segment_ids`` (default: every segment, in order). The
    temporary label map node is removed again; the segmentation is not changed.
    """
    import slicer
    import vtk

    from ..scene.volumes import volume_from_node

    segmentation = segmentation_node.GetSegmentation()
    ids = (
        list(segment_ids)
        if segment_ids
        else [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
    )
    unknown = [s for s in ids if segmentation.GetSegment(s) is None]
    if unknown or not ids:
        missing = f"no segment {', '.join(unknown)}" if unknown else "no segments"
        raise XAIError(
            f"segmentation '{segmentation_node.GetName()}' has {missing}",
            "choose a segmentation with the segments to use",
        )
    id_array = vtk.vtkStringArray()
    for segment_id in ids:
        id_array.InsertNextValue(segment_id)
    labelmap = ss.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "XAIMed temporary labels")
    try:
        exported = ss.segmentations_logic.ExportSegmentsToLabelmapNode(
            segmentation_node,
            id_array,
            labelmap,
            reference_node,
            slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY,  # exactly the scan's grid
        )
        if not exported:
            raise XAIError(
                "Slicer could not rasterise the segments on the input volume", "check the segments"
            )
        labels = volume_from_node(labelmap)
    finally:
        if labelmap.GetDisplayNode() is not None:
            ss.scene.RemoveNode(labelmap.GetDisplayNode())
        ss.scene.RemoveNode(labelmap)
    names = {i + 1: segmentation.GetSegment(s).GetName() for i, s in enumerate(ids)}
    colors = {i + 1: tuple(segmentation.GetSegment(s).GetColor()) for i, s in enumerate(ids)}
    return labels, names, colors


def region_arguments(ss, request, folder) -> dict:
    """The worker's region fields from the chosen segment, box or point (RAS millimetres).

    ``mask``: the segment is written as ``region.nrrd`` in the job folder's inputs; ``box``: the markups
    ROI's RAS bounds (r0, a0, s0, r1, a1, s1); ``point``: the first control point's world RAS.
    """
    from ..io.volumes import write_volume

    region = choice(request.targetRegion)
    if region == "mask":
        if not request.targetSegmentation or not request.targetSegmentID:
            raise XAIError("no segment chosen for the target", "choose the segment inside which to explain")
        mask, _names, _colors = segmentation_to_labels(
            ss, request.targetSegmentation, request.inputVolume, [request.targetSegmentID]
        )
        return {"region_mask": str(write_volume(mask, folder.input_path("region.nrrd")))}
    if region == "box":
        if not request.targetROI:
            raise XAIError("no box chosen for the target", "choose a box (markups ROI)")
        bounds = [0.0] * 6
        request.targetROI.GetRASBounds(bounds)
        return {"box": [bounds[0], bounds[2], bounds[4], bounds[1], bounds[3], bounds[5]]}
    if region == "point":
        if not request.targetPoint or request.targetPoint.GetNumberOfControlPoints() < 1:
            raise XAIError("no point clicked for the target", "click a point (markups point list) first")
        ras = [0.0, 0.0, 0.0]
        request.targetPoint.GetNthControlPointPositionWorld(0, ras)
        return {"point": list(ras)}
    return {}
