"""Disagreement annotation in the page: paint a region with trame-slicer's paint effect (a sphere brush
of a diameter in mm), then save it, coded, into the study database through the Qt-free controller the
Slicer module and ``xaimed study annotate`` use (``slicerlogic.annotation``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import XAIError

SEGMENT_NAME = "disagreement"


class WebAnnotation:
    """One painted region at a time: a new segmentation node (never a user's), painted on the scan."""

    def __init__(self, slicer_app) -> None:
        self.slicer_app = slicer_app
        self.node = None
        self.saved_id: int | None = None  # the last annotation saved from the page (for DICOM SEG)

    def start(self, scan_node, diameter_mm: float) -> None:
        """A fresh region on ``scan_node`` and the paint effect on (each drag in a view paints)."""
        from trame_slicer.segmentation import BrushDiameterMode, SegmentationEffectPaint

        from ..scene import unique_node_name

        if scan_node is None:
            raise XAIError("no scan loaded", "load a scan before painting")
        if not diameter_mm > 0:
            raise XAIError(f"brush diameter {diameter_mm} mm", "give a positive diameter in mm")
        editor = self.slicer_app.segmentation_editor
        node = editor.create_empty_segmentation_node()
        node.SetName(unique_node_name(node.GetScene(), "XAIMed disagreement"))
        node.SetAttribute("XAIMed.role", "annotation")
        editor.set_active_segmentation(node, scan_node)
        editor.add_empty_segment(segment_name=SEGMENT_NAME, segment_color=[1.0, 0.0, 1.0])
        effect = editor.set_active_effect_type(SegmentationEffectPaint)
        effect.set_use_sphere_brush(True)
        effect.set_brush_diameter(float(diameter_mm), BrushDiameterMode.Absolute)
        self.node = node

    def stop(self) -> None:
        """Paint effect off: the views pan and zoom again."""
        self.slicer_app.segmentation_editor.deactivate_effect()

    def save(self, ss, scan_node, scan_volume, bundle, *, study, case_id, code, reader, note):
        """Save the painted region with the shown map's method and values; returns SavedAnnotation."""
        from ..scene import get_provenance, volume_from_node
        from ..slicerlogic.annotation import open_study, region_mask, save_disagreement

        if self.node is None:
            raise XAIError("nothing painted", "press Paint and paint the region in a slice view first")
        if not str(study or "").strip() or not str(case_id or "").strip():
            raise XAIError("no study database or case ID", "type the study database path and the case ID")
        mask = region_mask(self.node, scan_node, ss)
        if not mask.any():
            raise XAIError("the painted region is empty", "paint the region in a slice view first")
        method = attribution = None
        if bundle is not None:
            method = (get_provenance(bundle.attribution_node).get("method") or {}).get("name")
            attribution = volume_from_node(bundle.attribution_node, world=False)
        if not method:
            raise XAIError("no map shown to annotate", "load or explain a map first")
        db = open_study(str(study).strip())
        try:
            saved = save_disagreement(
                db,
                case_id=str(case_id).strip(),
                reference=scan_volume,
                mask=mask,
                code=code,
                reader=str(reader or ""),
                note=str(note or ""),
                method=method,
                attribution=attribution,
            )
            self.saved_id = saved.annotation_id
            return saved
        finally:
            db.close()

    def export_seg(self, study, series, out) -> Path:
        """The last saved annotation as DICOM SEG on the scan's DICOM series (never over an existing file)."""
        from ..slicerlogic.annotation import export_seg, open_study

        if self.saved_id is None:
            raise XAIError("no annotation saved yet", "paint a region and press Save annotation first")
        for value, what in ((study, "study database"), (series, "DICOM series folder"), (out, "SEG file")):
            if not str(value or "").strip():
                raise XAIError(f"no {what} given", f"type the {what}'s path")
        db = open_study(str(study).strip())
        try:
            return export_seg(db, self.saved_id, str(series).strip(), Path(str(out).strip()).expanduser())
        finally:
            db.close()
