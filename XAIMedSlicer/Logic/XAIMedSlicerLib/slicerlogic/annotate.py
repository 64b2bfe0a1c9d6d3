"""The module's "Annotate disagreement" section, Qt-free (the web viewer drives the same controller).

The reader paints coded regions into a segmentation node with Slicer's Segment Editor; this
controller makes that node (one segment per region, tagged with its XAIMED code and terminology),
saves it into the study database with the map's provenance and agreement, and exports DICOM SEG::

    c = AnnotationController(ss)              # ss: scene.SlicerScene (default: the current scene)
    c.open_study("study.sqlite", methods=["gradcam"])   # created when missing (never overwritten)
    node = c.new_drawing(scan_node)           # a segmentation node on the scan's grid
    segment_id = c.add_region(node, "missed") # an empty coded segment to paint into
    saved = c.save(node, scan_node, case_id="c1", method="gradcam", reader="R1", note="...",
                   attribution_node=map_node) # case added with its map when the study lacks it
    agreement_text(saved.agreement); c.reader_agreement("c1", "gradcam")
    c.export_seg(saved.annotation_id, dicom_folder, "out.dcm")
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import XAIError
from ..study.annotation import DisagreementAnnotation, Provenance
from ..study.coding import CATEGORIES, category, terminology_entry
from ..study.store import CaseSpec, Study
from .annotation import (
    SavedAnnotation,
    case_provenance,
    export_seg,
    open_study,
    reader_agreement,
    region_mask,
)

CODE_TAG = "XAIMed.code"
ROLE = "disagreement"
METRIC_NAMES = {
    "irrelevant_mass_share": "map mass in 'irrelevant' regions",
    "missed_share": "'missed' voxels outside the map's top 5%",
    "missed_mass_share": "'missed' regions' share of the map mass",
    "dice_irrelevant": "Dice(irrelevant, map top 5%)",
    "dice_missed": "Dice(missed, map top 5%)",
    "dice_agree": "Dice(agree, map top 5%)",
}


def code_choices() -> list[tuple[str, str]]:
    """(key, label) of every coded disagreement type, for the code combo box."""
    return [(c.key, f"{c.name} ({c.code.value})") for c in CATEGORIES.values()]


def agreement_text(metrics: dict) -> str:
    """The agreement metrics as lines for the UI ('not computed' when the study has no map file)."""
    if not metrics:
        return "Agreement: not computed (the study holds no map file for this case and method)."
    lines = []
    for key, label in METRIC_NAMES.items():
        value = metrics.get(key)
        lines.append(f"{label}: {'n/a' if value is None or value != value else f'{value:.3f}'}")
    return "\n".join(lines)


def reader_agreement_text(pairs: list[dict]) -> str:
    """Dice between readers as lines ('' with fewer than two readers)."""
    return "\n".join(f"Dice {p['reader_a']} vs {p['reader_b']}: {p['dice']:.3f}" for p in pairs)


def editor_node(scene, tag: str = "XAIMedSlicer"):
    """The module's own vtkMRMLSegmentEditorNode (a singleton, made once per scene)."""
    node = scene.GetSingletonNode(tag, "vtkMRMLSegmentEditorNode")
    if node is None:
        node = scene.CreateNodeByClass("vtkMRMLSegmentEditorNode")
        node.UnRegister(None)
        node.SetSingletonTag(tag)
        node = scene.AddNode(node)
    return node


class AnnotationController:
    """One reader annotating in one scene against one study database."""

    def __init__(self, ss=None) -> None:
        self._ss = ss
        self.study: Study | None = None

    @property
    def ss(self):
        if self._ss is None:
            from ..scene import current_scene

            self._ss = current_scene()
        return self._ss

    # ---- the study ----------------------------------------------------------------------------
    def open_study(self, path: str | os.PathLike, *, methods: list[str] | None = None) -> Study:
        """Open the study database at ``path``; with ``methods`` a missing one is created."""
        if not str(path or "").strip() or Path(path).is_dir():
            raise XAIError("no study database file chosen", "choose a .sqlite file (a new name creates one)")
        if self.study is not None and Path(self.study.path) == Path(path):
            return self.study
        self.close()
        if not Path(path).is_file() and methods:
            self.study = Study.create(path, name=Path(path).stem, methods=list(methods))
        else:
            self.study = open_study(path)
        return self.study

    def close(self) -> None:
        if self.study is not None:
            self.study.close()
            self.study = None

    def _study(self) -> Study:
        if self.study is None:
            raise XAIError("no study database is open", "choose a study database (.sqlite) first")
        return self.study

    def case_ids(self) -> list[str]:
        """Cases of the open study in reading order."""
        return [c["case_id"] for c in self._study().cases()]

    # ---- drawing ------------------------------------------------------------------------------
    def new_drawing(self, reference_node, name: str = "Disagreement"):
        """A new, empty segmentation node on ``reference_node``'s grid for the Segment Editor."""
        from ..scene.volumes import unique_node_name

        if reference_node is None:
            raise XAIError("no scan to draw on", "select the input volume first")
        scene = self.ss.scene
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", unique_node_name(scene, name))
        node.CreateDefaultDisplayNodes()
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
        node.SetAttribute("XAIMed.role", ROLE)
        return node

    @staticmethod
    def add_region(node, code: str) -> str:
        """An empty segment coded ``code`` (its name, colour and terminology); returns its ID."""
        cat = category(code)
        segmentation = node.GetSegmentation()
        segment_id = segmentation.AddEmptySegment("", cat.name, [c / 255.0 for c in cat.color])
        AnnotationController.set_code(node, segment_id, cat.key)
        return segment_id

    @staticmethod
    def set_code(node, segment_id: str, code: str) -> None:
        """(Re)code one segment: tag, colour and terminology entry follow the code."""
        cat = category(code)
        segment = node.GetSegmentation().GetSegment(segment_id)
        if segment is None:
            raise XAIError(f"no segment {segment_id} in {node.GetName()}", "select a segment of the drawing")
        segment.SetTag(CODE_TAG, cat.key)
        segment.SetColor(*[c / 255.0 for c in cat.color])
        if hasattr(segment, "SetTerminology"):
            segment.SetTerminology(terminology_entry(cat.key))
        else:
            segment.SetTag("TerminologyEntry", terminology_entry(cat.key))

    @staticmethod
    def code_of(node, segment_id: str, default: str | None = None) -> str:
        """A segment's code (its tag), else ``default`` (the combo's code)."""
        from ..scene.segmentation import segment_tag

        tag = segment_tag(node.GetSegmentation().GetSegment(segment_id), CODE_TAG)
        if tag is None and default is None:
            raise XAIError(f"segment {segment_id} has no disagreement code", "choose a code and save again")
        return category(tag or default).key

    def annotation_of(self, node, reference_node, provenance: Provenance, note: str = "", default_code=None):
        """The drawing as a DisagreementAnnotation on the reference grid (one coded segment per segment)."""
        from ..scene.segmentation import segment_ids
        from ..scene.volumes import volume_from_node

        reference = volume_from_node(reference_node)
        annotation = DisagreementAnnotation.empty(reference, provenance, note)
        for segment_id in segment_ids(node):
            mask = region_mask_of(self.ss, node, segment_id, reference_node)
            if mask.any():
                code = self.code_of(node, segment_id, default_code)
                name = node.GetSegmentation().GetSegment(segment_id).GetName()
                annotation.add(mask, code, comment=note, name=name)
        if not annotation.segments:
            raise XAIError("nothing is painted in the drawing", "paint a region with the Segment Editor")
        return annotation

    # ---- saving -------------------------------------------------------------------------------
    def ensure_case(self, case_id: str, method: str, reference_node, attribution_node=None) -> None:
        """Add ``case_id`` to the study when it is missing, with the map written next to the database."""
        from ..io.volumes import write_volume
        from ..scene.volumes import volume_from_node

        study = self._study()
        if case_id in self.case_ids():
            return
        if method not in study.methods:
            raise XAIError(f"method {method} is not in the study", f"use one of {study.methods}")
        maps = {}
        if attribution_node is not None:
            folder = study.path.with_name(f"{study.path.stem}_maps")
            path = folder / f"{_safe(case_id)}__{_safe(method)}.nrrd"
            if path.exists():
                raise XAIError(f"{path} already exists", "give the case a new ID")
            maps[method] = str(write_volume(volume_from_node(attribution_node), path))
        node_name = reference_node.GetName() if reference_node is not None else ""
        storage = reference_node.GetStorageNode() if reference_node is not None else None
        image_ref = storage.GetFileName() if storage is not None and storage.GetFileName() else node_name
        provenance = _node_provenance(attribution_node)
        study.add_cases(
            [
                CaseSpec(
                    case_id, image_ref, provenance.get("model_hash", ""), provenance.get("target", {}), maps
                )
            ]
        )

    def save(
        self,
        node,
        reference_node,
        *,
        case_id: str,
        method: str,
        reader: str,
        note: str = "",
        code: str | None = None,
        attribution_node=None,
        k_percent: float = 5.0,
    ) -> SavedAnnotation:
        """Save the drawing as a new annotation version; the agreement is stored with it."""
        study = self._study()
        if not case_id.strip():
            raise XAIError("a case ID is required", "type the case ID")
        if not reader.strip():
            raise XAIError("a reader ID is required", "give the reader's ID or initials")
        self.ensure_case(case_id, method, reference_node, attribution_node)
        provenance = case_provenance(study, case_id, reader, method)
        annotation = self.annotation_of(node, reference_node, provenance, note, code)
        attribution = self._attribution(provenance.attribution_ref, attribution_node, annotation)
        annotation_id = study.save_annotation(annotation, attribution=attribution, k_percent=k_percent)
        row = next(r for r in study.annotations() if r["id"] == annotation_id)
        keys = (*METRIC_NAMES, "k_percent")
        return SavedAnnotation(annotation_id, {k: row[k] for k in keys} if attribution is not None else {})

    @staticmethod
    def _attribution(ref: str, attribution_node, annotation):
        from ..io.volumes import read_volume
        from ..scene.volumes import volume_from_node

        if ref and Path(ref).is_file():
            return read_volume(ref)
        if attribution_node is not None:
            volume = volume_from_node(attribution_node)
            if volume.same_grid(annotation.labels):
                return volume
        return None

    def save_and_describe(
        self, study_path, node, reference_node, map_node, *, case_id: str, method: str, **fields
    ) -> tuple[SavedAnnotation, str]:
        """What the module's Save button does: open (or create) the study, save, describe the agreement.

        The method is the map node's (``XAIMed.method``) when it has one, else ``method``; ``case_id``
        defaults to the scan node's name; ``fields``: ``reader``, ``note``, ``code``.
        """
        if node is None:
            raise XAIError("there is no drawing to save", "click New coded region and paint with the editor")
        method = (map_node.GetAttribute("XAIMed.method") if map_node is not None else None) or method
        self.open_study(study_path, methods=[method])
        case_id = case_id.strip() or (reference_node.GetName() if reference_node is not None else "")
        saved = self.save(
            node, reference_node, case_id=case_id, method=method, attribution_node=map_node, **fields
        )
        pairs = reader_agreement_text(self.reader_agreement(case_id, method))
        text = f"Saved annotation {saved.annotation_id} ({case_id}, {method}).\n"
        return saved, text + agreement_text(saved.agreement) + (f"\n{pairs}" if pairs else "")

    def reader_agreement(self, case_id: str, method: str) -> list[dict]:
        """Dice between each pair of readers (latest versions) of one case and map."""
        return reader_agreement(self._study(), case_id, method)

    def export_seg(self, annotation_id: int, source_series, out) -> Path:
        """DICOM SEG of a saved annotation (refuses to overwrite ``out``)."""
        if not source_series or not Path(source_series).is_dir():
            raise XAIError(f"no DICOM series folder at '{source_series}'", "choose the case's DICOM folder")
        return export_seg(self._study(), annotation_id, source_series, out)


def region_mask_of(ss, node, segment_id: str, reference_node) -> np.ndarray:
    """One segment rasterised onto the reference grid (bool [k, j, i])."""
    from ..scene.masking import segments_mask

    return segments_mask(ss, node, [segment_id], reference_node)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text)[:60] or "x"


def _node_provenance(node) -> dict:
    """Model hash and target of an attribution node made by the module ({} for other nodes)."""
    if node is None:
        return {}
    import json

    from ..scene.provenance import get_provenance, summarize

    short = summarize(get_provenance(node))
    target = short.get("target", "{}")
    try:
        target = json.loads(target)
    except ValueError:
        target = {"target": target}
    return {
        "model_hash": short.get("model_sha256", ""),
        "target": target if isinstance(target, dict) else {"target": target},
    }


__all__ = [
    "AnnotationController",
    "CODE_TAG",
    "agreement_text",
    "code_choices",
    "editor_node",
    "reader_agreement_text",
    "region_mask",
    "region_mask_of",
]
