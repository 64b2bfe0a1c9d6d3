"""Anatomy-aware evidence of a radiograph's attribution map: per-structure shares, an anatomy-weighted
map with its faithfulness against the plain map, and a shortcut flag.

* per structure (right/left lung, heart, mediastinum, outside the body): ``anatomy.stats`` rows
  (positive share, mean, peak and its position); the rest of the body (label 0: neck, shoulders,
  abdomen) is ``other_share``;
* ``chest_share``: the share of the positive attribution inside the chest structures (1-4);
  ``shortcut`` is set when ``1 - chest_share`` exceeds ``shortcut_share`` (0.5): most of the evidence
  lies outside the anatomy, on markers, text or devices (Zech et al. 2018; DeGrave et al. 2021);
* anatomy-weighted map: the attribution times the soft chest prior of the registered atlas
  (``CxrAnatomy.prior``), so evidence off the chest structures is damped, not cut;
* faithfulness: deletion and insertion (``metrics.faithfulness``) of both maps on the same model,
  input and target, so the weighted map is kept only where it is at least as faithful.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import XAIError
from ..geometry.axes import kji_to_xyz
from ..geometry.volume import Volume
from ..metrics.faithfulness import FaithfulnessResult, evaluate_faithfulness
from ..metrics.results import JSONResult
from .cxr_regions import CHEST_STRUCTURES, CxrAnatomy
from .stats import structure_statistics

SHORTCUT_SHARE = 0.5


@dataclass
class CxrEvidence(JSONResult):
    """Where the positive evidence of one map lies, and whether that looks like a shortcut."""

    structures: list[dict]  # anatomy.stats rows, labels 1-5
    chest_share: float  # positive share inside lungs, heart and mediastinum
    outside_share: float  # positive share outside them (outside body + other body)
    other_share: float  # positive share on body pixels that are no chest structure (label 0)
    peak_structure: str  # the structure holding the map's maximum
    shortcut: bool
    text: str
    shortcut_share: float = SHORTCUT_SHARE


def structure_evidence(
    attribution: Volume, anatomy: CxrAnatomy, *, shortcut_share: float = SHORTCUT_SHARE
) -> CxrEvidence:
    """Per-structure statistics of ``attribution`` (on the radiograph's grid) and the shortcut flag."""
    if not attribution.same_grid(anatomy.labels):
        raise XAIError(
            "the attribution and the chest anatomy are on different grids", "resample the map first"
        )
    rows = structure_statistics(attribution, anatomy.labels, anatomy.names)
    values = attribution.array.astype(np.float64)
    positive = np.maximum(values, 0.0)
    total = float(positive.sum())
    labels = anatomy.labels.array
    chest = float(positive[np.isin(labels, CHEST_STRUCTURES)].sum()) / total if total > 0 else 0.0
    other = float(positive[labels == 0].sum()) / total if total > 0 else 0.0
    peak_label = int(labels.reshape(-1)[int(np.argmax(values))])
    peak = anatomy.names.get(peak_label, "body, other") if peak_label else "body, other"
    outside = 1.0 - chest if total > 0 else 0.0
    shortcut = total > 0 and outside > shortcut_share
    return CxrEvidence(
        structures=rows,
        chest_share=chest,
        outside_share=outside,
        other_share=other,
        peak_structure=peak,
        shortcut=bool(shortcut),
        text=evidence_text(rows, chest, other, peak, shortcut, total > 0),
        shortcut_share=shortcut_share,
    )


def evidence_text(rows: list[dict], chest: float, other: float, peak: str, shortcut: bool, any_: bool) -> str:
    """One line, e.g. 'right lung 48%, heart 21%, ...; peak in right lung'."""
    if not any_:
        return "the map has no positive evidence"
    parts = [f"{r['name']} {r['positive_share']:.0%}" for r in rows if r["positive_share"] >= 0.005]
    if other >= 0.005:
        parts.append(f"body, other {other:.0%}")
    text = ", ".join(parts) + f"; peak in {peak}"
    if shortcut:
        text += (
            f"; SHORTCUT? {1 - chest:.0%} of the evidence lies outside the chest anatomy "
            "(markers, text, devices)"
        )
    return text


def anatomy_weighted(attribution: Volume, anatomy: CxrAnatomy) -> Volume:
    """The attribution times the soft chest prior (both on the radiograph's grid)."""
    if not attribution.same_grid(anatomy.prior):
        raise XAIError("the attribution and the chest prior are on different grids", "resample the map first")
    weighted = attribution.array.astype(np.float32) * anatomy.prior.array.astype(np.float32)
    return attribution.with_array(weighted)


@dataclass
class WeightedFaithfulness(JSONResult):
    """Deletion and insertion of the plain and the anatomy-weighted map on one model and input."""

    plain: FaithfulnessResult
    weighted: FaithfulnessResult
    summary: dict = field(default_factory=dict)


def compare_faithfulness(
    model, x, target, attribution: Volume, anatomy: CxrAnatomy, *, steps: int = 30, **kwargs
) -> WeightedFaithfulness:
    """Deletion/insertion of ``attribution`` and its anatomy-weighted version; ``x`` is the model input
    ``(1, C, X, Y, 1)`` on the radiograph's grid (i, j, k) and ``kwargs`` go to ``evaluate_faithfulness``.

    Both curves replace pixels by a blurred copy unless told otherwise (a constant baseline draws edges
    that a radiograph never has)."""
    kwargs.setdefault("deletion_replacement", "blur")
    kwargs.setdefault("insertion_replacement", "blur")
    weighted = anatomy_weighted(attribution, anatomy)
    plain = evaluate_faithfulness(model, x, target, kji_to_xyz(attribution.array), steps=steps, **kwargs)
    prior = evaluate_faithfulness(model, x, target, kji_to_xyz(weighted.array), steps=steps, **kwargs)
    summary = {
        "deletion_auc_plain": plain.deletion.normalised_auc,
        "deletion_auc_weighted": prior.deletion.normalised_auc,
        "deletion_auc_random": plain.deletion_random.normalised_auc,
    }
    if plain.insertion is not None and prior.insertion is not None:
        summary.update(
            insertion_auc_plain=plain.insertion.normalised_auc,
            insertion_auc_weighted=prior.insertion.normalised_auc,
            insertion_auc_random=plain.insertion_random.normalised_auc,
        )
    return WeightedFaithfulness(plain=plain, weighted=prior, summary=summary)
