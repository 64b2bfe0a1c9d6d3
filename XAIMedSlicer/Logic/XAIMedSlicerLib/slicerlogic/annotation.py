"""Disagreement annotation, Qt-free: shared by the Slicer module, the web viewer and ``xaimed study``.

API (small on purpose):

* ``region_mask(region, reference, ss=None)``: bool array [k, j, i] on ``reference``'s grid from a label
  ``Volume`` (any non-zero voxel, resampled nearest when the grid differs) or a
  ``vtkMRMLSegmentationNode`` (all its segments, rasterised by slicer-core; ``ss`` is the scene session
  and ``reference`` then the reference volume node).
* ``save_disagreement(study, case_id, reference, mask, code, reader, note, method, attribution)``: a new
  annotation version in the study database with the map's provenance, exact geometry and the agreement;
  returns ``SavedAnnotation(annotation_id, agreement dict)``.
* ``case_provenance(study, case_id, reader, method)``: the provenance a new annotation of a case gets.
* ``reader_agreement(study, case_id, method)``: Dice between every pair of readers' latest annotations.
* ``export_seg(study, annotation_id, source_series, out)``: DICOM SEG (never overwrites ``out``).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import XAIError
from ..geometry.resample import resample_to
from ..geometry.volume import Volume
from ..study.annotation import DisagreementAnnotation, Provenance
from ..study.coding import category
from ..study.dicom_seg import export_dicom_seg
from ..study.store import Study


@dataclass(frozen=True)
class SavedAnnotation:
    """What a save returns: the database row ID and the agreement metrics against the map (or {})."""

    annotation_id: int
    agreement: dict


def region_mask(region, reference, ss=None) -> np.ndarray:
    """The drawn region as a bool array [k, j, i] on the reference grid (see the module docstring)."""
    if isinstance(region, Volume):
        if not isinstance(reference, Volume):
            raise XAIError("a label Volume needs a reference Volume", "pass the case image as a Volume")
        if not region.same_grid(reference):
            region = resample_to(region, reference, "nearest")
        return np.asarray(region.array) != 0
    if hasattr(region, "GetSegmentation"):
        if ss is None:
            raise XAIError("a segmentation node needs the scene session", "pass ss=the SceneSession")
        from ..scene.masking import segments_mask
        from ..scene.segmentation import segment_ids

        return segments_mask(ss, region, segment_ids(region), reference)
    raise XAIError(
        f"cannot read a drawn region from {type(region).__name__}",
        "pass a label Volume or a vtkMRMLSegmentationNode",
    )


def open_study(study: Study | str | os.PathLike) -> Study:
    """An open study (a ``Study`` is passed through)."""
    if isinstance(study, Study):
        return study
    if not Path(study).is_file():
        raise XAIError(f"no study database at {study}", "create it with `xaimed study init`")
    return Study.open(study)


def case_provenance(study: Study, case_id: str, reader: str, method: str) -> Provenance:
    """The provenance of a new annotation of ``case_id`` by ``reader`` on the map of ``method``."""
    case = study.case(case_id)
    return Provenance(
        case_id=case_id,
        reader=reader.strip(),
        method=method,
        model_hash=case["model_hash"],
        target=case["target"],
        attribution_ref=study.attribution_ref(case_id, method),
    )


def save_disagreement(
    study: Study,
    *,
    case_id: str,
    reference: Volume,
    mask: np.ndarray,
    code: str,
    reader: str,
    note: str = "",
    method: str,
    attribution: Volume | None = None,
    k_percent: float = 5.0,
) -> SavedAnnotation:
    """Save one coded region as a new annotation version; the agreement is stored in the same transaction."""
    if not reader.strip():
        raise XAIError("a reader ID is required", "give the reader's ID or initials")
    category(code)  # one-line error for an unknown code
    if method not in study.methods:
        raise XAIError(f"method {method} is not in the study", f"use one of {study.methods}")
    provenance = case_provenance(study, case_id, reader, method)
    ref = provenance.attribution_ref
    annotation = DisagreementAnnotation.empty(reference, provenance, note)
    annotation.add(mask, code, comment=note)
    if attribution is None and ref and Path(ref).is_file():
        from ..io.volumes import read_volume

        attribution = read_volume(ref)
    annotation_id = study.save_annotation(annotation, attribution=attribution, k_percent=k_percent)
    rows = [r for r in study.annotations() if r["id"] == annotation_id]
    keys = ("irrelevant_mass_share", "missed_share", "missed_mass_share", "dice_irrelevant", "dice_missed")
    metrics = {k: rows[0][k] for k in keys + ("dice_agree",)} if attribution is not None else {}
    return SavedAnnotation(annotation_id, metrics)


def reader_agreement(study: Study, case_id: str, method: str) -> list[dict]:
    """Dice of the annotated regions between each pair of readers (latest versions) of one case and map."""
    rows = [r for r in study.annotations() if r["case_id"] == case_id and r["method"] == method]
    masks = {r["reader"]: study.load_annotation(r["id"]).mask() for r in rows}
    out = []
    for a, b in itertools.combinations(sorted(masks), 2):
        total = masks[a].sum() + masks[b].sum()
        dice = float(2.0 * (masks[a] & masks[b]).sum() / total) if total else float("nan")
        out.append({"case_id": case_id, "method": method, "reader_a": a, "reader_b": b, "dice": dice})
    return out


def export_seg(
    study: Study, annotation_id: int, source_series: str | os.PathLike, out: str | os.PathLike
) -> Path:
    """Export one stored annotation as DICOM SEG; refuses to overwrite an existing file."""
    if Path(out).exists():
        raise XAIError(f"{out} already exists", "choose a new output file name")
    return export_dicom_seg(study.load_annotation(annotation_id), source_series, out)
