"""Typed facts of one explanation: what the rules read and what every sentence of the text states.

Each fact is a frozen dataclass with a reference id (``ref``): the prediction (``P1``), the structures
holding the evidence in decreasing share (``S1``, ``S2``, ...; the rest summed in ``SR1``), the share
outside the labelled anatomy (``O1``), its laterality (``L1``), the randomisation and deletion checks
(``C1``, ``C2``), the anatomy-masking check (``M1``), and, once the rules ran, the fired rules (``R1``...)
and the decision (``D1``). "Evidence" is the positive part of the attribution map (``anatomy.stats``).

Numbers are stored exactly as the text writes them (percent with one decimal, attribution values with
four significant digits, millimetres with one decimal), so the text read back gives equal facts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..explanation import Explanation

FACT_VERSION = 1
MAX_STRUCTURES = 8  # structures stated one by one; the others are summed in one fact
PERCENT, VALUE, MM, SCORE = ".1f", ".4g", ".1f", ".2f"


def q(value: float | None, spec: str) -> float | None:
    """``value`` as the text writes it (so that parsing the text gives the same float)."""
    return None if value is None else float(format(float(value), spec))


@dataclass(frozen=True)
class PredictionFact:
    ref: str
    task: str  # "classification" or "segmentation"
    predicted_class: str
    target_class: str  # the class the map explains
    confidence_percent: float | None  # softmax probability of the predicted class (classification only)
    kind: ClassVar[str] = "prediction"


@dataclass(frozen=True)
class StructureFact:
    ref: str
    rank: int
    evidence_for: str  # the explained class
    label: int
    name: str  # the label name as given
    share_percent: float  # of the map's positive attribution
    mean: float  # mean positive attribution per voxel (attribution units)
    peak: float  # highest attribution inside (attribution units)
    peak_ras: tuple[float, float, float]  # mm
    volume_ml: float | None  # of a 3D structure; None on a radiograph (a projection has no volume)
    snomed_code: str | None  # SNOMED CT type code when the terminology table knows the structure
    snomed_meaning: str | None
    side: str | None  # "left"/"right" from the structure name
    area_cm2: float | None = None  # of a structure on a radiograph (one-slice image), in the image plane
    kind: ClassVar[str] = "structure"


@dataclass(frozen=True)
class OtherStructuresFact:
    ref: str
    count: int
    share_percent: float
    kind: ClassVar[str] = "other_structures"


@dataclass(frozen=True)
class OutsideFact:
    ref: str
    labelled: bool  # False: no label map was given
    share_percent: float | None  # evidence outside every labelled structure
    kind: ClassVar[str] = "outside"


@dataclass(frozen=True)
class LateralityFact:
    ref: str
    left_percent: float
    right_percent: float
    midline_r_mm: float  # R coordinate of the midline used
    basis: str  # "labelled anatomy" (centre of its R extent) or "image" (centre of the image's R extent)
    kind: ClassVar[str] = "laterality"


@dataclass(frozen=True)
class CheckFact:
    ref: str
    check: str  # "randomisation" or "deletion"
    status: str  # "passed", "failed" or "not checked"
    value: float | None  # mean Spearman of the cascade / normalised deletion AUC
    reference: float | None  # the Spearman threshold / the random order's normalised deletion AUC
    kind: ClassVar[str] = "check"


@dataclass(frozen=True)
class MaskingFact:
    ref: str
    status: str  # "checked", "not checked" or "not applicable"
    predicted_class: str
    masked_percent: float | None  # probability of the predicted class with the anatomy masked out
    masked_class: str | None  # the class predicted then
    reason: str | None = None  # why it was not checked
    kind: ClassVar[str] = "masking"


@dataclass(frozen=True)
class RuleFact:
    ref: str
    rule: str
    severity: str
    action: str
    message: str
    kind: ClassVar[str] = "rule"


@dataclass(frozen=True)
class DecisionFact:
    ref: str
    decision: str  # "keep", "downgrade" or "abstain"
    network_class: str
    final_class: str | None  # None when abstaining
    changed_by: tuple[str, ...]
    kind: ClassVar[str] = "decision"


Fact = (
    PredictionFact
    | StructureFact
    | OtherStructuresFact
    | OutsideFact
    | LateralityFact
    | CheckFact
    | MaskingFact
    | RuleFact
    | DecisionFact
)
KINDS = {
    cls.kind: cls
    for cls in (
        PredictionFact,
        StructureFact,
        OtherStructuresFact,
        OutsideFact,
        LateralityFact,
        CheckFact,
        MaskingFact,
        RuleFact,
        DecisionFact,
    )
}


def fact_to_dict(fact) -> dict:
    """JSON form: ``{"kind": ..., field: value}`` (tuples become lists)."""
    return {"kind": fact.kind, **dataclasses.asdict(fact)}


def fact_from_dict(data: dict):
    """Inverse of :func:`fact_to_dict`."""
    cls = KINDS[data["kind"]]
    values = {k: v for k, v in data.items() if k != "kind"}
    for key in ("peak_ras", "changed_by"):
        if key in values and values[key] is not None:
            values[key] = tuple(values[key])
    return cls(**values)


def build_facts(
    explanation: Explanation, *, validation: dict | None = None, masking: dict | None = None
) -> tuple:
    """The facts of ``explanation``; ``validation`` is ``metrics.validate``'s result and ``masking``
    :func:`reasoning.masking.anatomy_masking`'s (each None when not run)."""
    prediction = prediction_fact(explanation)
    facts: list = [prediction]
    facts += structure_facts(explanation, prediction.target_class)
    facts.append(outside_fact(explanation))
    facts.append(laterality_fact(explanation))
    facts += check_facts(validation)
    facts.append(masking_fact(prediction, masking))
    return tuple(facts)


def prediction_fact(explanation: Explanation) -> PredictionFact:
    pred, target = explanation.prediction, explanation.target
    name = target.get("class_name")
    target_class = str(name if name is not None else target.get("class_index", "?"))
    if pred.get("task") == "classification":
        best = int(pred["predicted_index"])
        return PredictionFact(
            "P1", "classification", str(pred["predicted_class"]), target_class,
            q(100.0 * pred["probabilities"][best], PERCENT),
        )  # fmt: skip
    return PredictionFact("P1", str(pred.get("task", "segmentation")), target_class, target_class, None)


def structure_facts(explanation: Explanation, target_class: str) -> list:
    """The first :data:`MAX_STRUCTURES` structures by share, then one fact for the rest."""
    from ..scene.terminology import normalise, terminology_entry

    rows = explanation.structures
    flat = explanation.attribution.array.shape[0] == 1  # a radiograph: areas, not volumes
    pixel_mm2 = float(explanation.attribution.spacing[0]) * float(explanation.attribution.spacing[1])
    facts: list = []
    for rank, row in enumerate(rows[:MAX_STRUCTURES], start=1):
        entry = terminology_entry(row["name"])
        code = None if entry["generic"] else entry["type"]
        side = normalise(row["name"])[1]
        facts.append(
            StructureFact(
                ref=f"S{rank}",
                rank=rank,
                evidence_for=target_class,
                label=int(row["label"]),
                name=str(row["name"]),
                share_percent=q(100.0 * row["positive_share"], PERCENT),
                mean=q(row["positive_mean"], VALUE),
                peak=q(row["peak"], VALUE),
                peak_ras=tuple(q(row[f"peak_{c}"], MM) for c in "ras"),
                volume_ml=None if flat else q(row["volume_ml"], VALUE),
                snomed_code=None if code is None else code[0],
                snomed_meaning=None if code is None else code[1],
                side=None if side is None else side[1].lower(),
                area_cm2=q(row["voxels"] * pixel_mm2 / 100.0, VALUE) if flat else None,
            )
        )
    rest = rows[MAX_STRUCTURES:]
    if rest:
        share = sum(r["positive_share"] for r in rest)
        facts.append(OtherStructuresFact("SR1", len(rest), q(100.0 * share, PERCENT)))
    return facts


NOT_ANATOMY = ("outside body", "background", "air")  # labelled, but not anatomy (radiograph labels)


def anatomy_mask(explanation: Explanation) -> np.ndarray | None:
    """Voxels inside the labelled anatomy: labelled, and not a structure named in ``NOT_ANATOMY``."""
    if explanation.labels is None:
        return None
    labels = np.asarray(explanation.labels.array)
    outside = [k for k, name in (explanation.label_names or {}).items() if str(name).lower() in NOT_ANATOMY]
    return (labels != 0) & ~np.isin(labels, outside)


def outside_fact(explanation: Explanation) -> OutsideFact:
    if explanation.labels is None:
        return OutsideFact("O1", False, None)
    positive = np.maximum(np.asarray(explanation.attribution.array, dtype=np.float64), 0.0)
    total = float(positive.sum())
    inside = float(positive[anatomy_mask(explanation)].sum())
    share = (total - inside) / total if total > 0 else 0.0
    return OutsideFact("O1", True, q(100.0 * max(share, 0.0), PERCENT))


def laterality_fact(explanation: Explanation) -> LateralityFact:
    """Shares of the evidence left and right of the midline (the centre of the labelled anatomy's R
    extent, else of the image's); voxels on the midline count for neither side."""
    attribution = explanation.attribution
    affine = attribution.ijk_to_ras()
    nk, nj, ni = attribution.array.shape
    base = affine[0, 0] * np.arange(ni)[None, :] + affine[0, 1] * np.arange(nj)[:, None] + affine[0, 3]
    labels = anatomy_mask(explanation)
    if labels is not None and labels.any():
        lo, hi = np.inf, -np.inf
        for k in range(nk):
            if labels[k].any():
                r = base[labels[k]] + affine[0, 2] * k
                lo, hi = min(lo, float(r.min())), max(hi, float(r.max()))
        basis = "labelled anatomy"
    else:
        corners = [affine[0, 3] + affine[0, 0] * i + affine[0, 1] * j + affine[0, 2] * k
                   for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)]  # fmt: skip
        lo, hi, basis = float(min(corners)), float(max(corners)), "image"
    midline = 0.5 * (lo + hi)
    left = right = 0.0
    for k in range(nk):
        positive = np.maximum(np.asarray(attribution.array[k], dtype=np.float64), 0.0)
        r = base + affine[0, 2] * k
        right += float(positive[r > midline].sum())
        left += float(positive[r < midline].sum())
    total = float(np.maximum(np.asarray(attribution.array, dtype=np.float64), 0.0).sum())
    scale = 100.0 / total if total > 0 else 0.0
    return LateralityFact("L1", q(left * scale, PERCENT), q(right * scale, PERCENT), q(midline, MM), basis)


def check_facts(validation: dict | None) -> list[CheckFact]:
    """Randomisation and deletion from ``metrics.validate.validate_explanation``'s result."""
    rnd = (validation or {}).get("randomisation")
    if rnd:
        status = "passed" if rnd["passed"] else "failed"
        randomisation = CheckFact(
            "C1", "randomisation", status, q(rnd["mean_spearman"], SCORE), q(rnd["threshold"], SCORE)
        )
    else:
        randomisation = CheckFact("C1", "randomisation", "not checked", None, None)
    dele = (validation or {}).get("deletion")
    if dele and dele.get("normalised_auc") is not None and dele.get("random_normalised_auc") is not None:
        d, r = dele["normalised_auc"], dele["random_normalised_auc"]
        deletion = CheckFact("C2", "deletion", "passed" if d < r else "failed", q(d, SCORE), q(r, SCORE))
    else:
        deletion = CheckFact("C2", "deletion", "not checked", None, None)
    return [randomisation, deletion]


def masking_fact(prediction: PredictionFact, masking: dict | None) -> MaskingFact:
    if prediction.task != "classification":
        return MaskingFact("M1", "not applicable", prediction.predicted_class, None, None, "not a classifier")
    if not masking or masking.get("status") != "checked":
        reason = (masking or {}).get("reason") or "no model given"
        return MaskingFact("M1", "not checked", prediction.predicted_class, None, None, reason)
    return MaskingFact(
        "M1", "checked", prediction.predicted_class,
        q(100.0 * masking["probability"], PERCENT), str(masking["masked_class"]),
    )  # fmt: skip


def facts_of(facts, cls) -> list:
    """The facts of one type, in order."""
    return [f for f in facts if isinstance(f, cls)]
