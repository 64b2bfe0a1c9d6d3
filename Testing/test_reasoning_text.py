"""Facts of a real explanation equal direct numpy computations, and the text reads back into the same facts."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from reasoning_cases import clean_facts, replace
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explanation import Explanation
from XAIMedSlicerLib.reasoning.facts import (
    MAX_STRUCTURES,
    CheckFact,
    DecisionFact,
    LateralityFact,
    MaskingFact,
    OtherStructuresFact,
    OutsideFact,
    PredictionFact,
    RuleFact,
    StructureFact,
    build_facts,
    fact_from_dict,
    fact_to_dict,
    facts_of,
)
from XAIMedSlicerLib.reasoning.masking import anatomy_masking, masked_input
from XAIMedSlicerLib.reasoning.text import parse_text, render_text, sentence
from XAIMedSlicerLib.reasoning.writer import reason

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demo():
    """A lesion case of the demo (MNI152 template) explained by the committed demo classifier."""
    from XAIMedSlicerLib.demo.cases import make_case
    from XAIMedSlicerLib.demo.model import CARD_PATH
    from XAIMedSlicerLib.explain import explain
    from XAIMedSlicerLib.model.loader import load_model

    model = load_model(CARD_PATH, "cpu")
    case = make_case(6_100_001, lesion=True)
    expl = explain(case.image, model, "gradcam", None, labels=case.labels, label_names=case.label_names)
    return model, expl


def ras_r(volume) -> np.ndarray:
    """R coordinate of every voxel, [k, j, i], straight from the 4x4 matrix."""
    nk, nj, ni = volume.array.shape
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    ijk1 = np.stack([i, j, k, np.ones_like(i)], axis=-1).reshape(-1, 4).astype(float)
    return (ijk1 @ volume.ijk_to_ras().T)[:, 0].reshape(volume.array.shape)


def test_demo_text_reads_back_into_the_same_facts(demo):
    model, expl = demo
    facts, results, decision = reason(expl, model=model)
    text = render_text(facts)
    lines = text.splitlines()
    assert len(lines) == len(facts)
    for line, fact in zip(lines, facts, strict=True):
        assert line.endswith(f" [{fact.ref}]")  # every sentence comes from one fact and names it
    assert parse_text(text) == facts
    assert [fact_from_dict(fact_to_dict(f)) for f in facts] == list(facts)
    first = facts_of(facts, StructureFact)[0]
    assert (
        first.snomed_code
        == {"white matter": "389080008", "grey matter": "389081007", "csf": "280371009"}[first.name]
    )
    assert facts[-1].decision == decision.decision


def test_demo_facts_equal_numpy(demo):
    model, expl = demo
    facts = build_facts(expl, masking=anatomy_masking(expl, model))
    positive = np.maximum(expl.attribution.array.astype(np.float64), 0.0)
    inside = expl.labels.array != 0
    outside = facts_of(facts, OutsideFact)[0]
    assert outside.share_percent == pytest.approx(100 * positive[~inside].sum() / positive.sum(), abs=0.05)
    r = ras_r(expl.attribution)
    midline = 0.5 * (r[inside].min() + r[inside].max())
    side = facts_of(facts, LateralityFact)[0]
    assert side.midline_r_mm == pytest.approx(midline, abs=0.05)
    assert side.left_percent == pytest.approx(100 * positive[r < midline].sum() / positive.sum(), abs=0.05)
    assert side.right_percent == pytest.approx(100 * positive[r > midline].sum() / positive.sum(), abs=0.05)
    for fact, row in zip(facts_of(facts, StructureFact), expl.structures, strict=True):
        assert fact.name == row["name"] and fact.label == row["label"]
        assert fact.share_percent == pytest.approx(
            100 * positive[expl.labels.array == row["label"]].sum() / positive.sum(), abs=0.05
        )
        assert fact.peak == pytest.approx(
            expl.attribution.array[expl.labels.array == row["label"]].max(), rel=1e-3
        )
    pred = facts_of(facts, PredictionFact)[0]
    assert pred.confidence_percent == pytest.approx(100 * max(expl.prediction["probabilities"]), abs=0.05)


def test_masking_check_on_the_demo(demo):
    from XAIMedSlicerLib.preprocess import prepare_input
    from XAIMedSlicerLib.preprocess.pipeline import map_to_model_grid

    model, expl = demo
    x = prepare_input(expl.image, model.card.preprocessing).tensor
    labels = map_to_model_grid(expl.labels, prepare_input(expl.image, model.card.preprocessing).grid).array
    anatomy = np.ascontiguousarray(labels.transpose(2, 1, 0)) != 0
    masked, fill = masked_input(x, anatomy.astype(np.uint8))
    assert fill == pytest.approx(float(np.median(x[0, 0].numpy()[~anatomy])))
    assert torch.equal(masked[0, 0][torch.from_numpy(~anatomy)], x[0, 0][torch.from_numpy(~anatomy)])
    assert torch.all(masked[0, 0][torch.from_numpy(anatomy)] == fill)
    with torch.no_grad():
        probs = torch.softmax(model.network(masked), 1)[0].numpy()
    result = anatomy_masking(expl, model)
    index = expl.prediction["predicted_index"]
    assert result["status"] == "checked" and result["probability"] == pytest.approx(
        float(probs[index]), abs=1e-6
    )
    assert result["masked_class"] == expl.prediction["classes"][int(np.argmax(probs))]


def small_explanation(volume, names: dict[int, str], with_labels: bool = True) -> Explanation:
    """An explanation on the oblique test volume with a known attribution and a label map of 10 structures."""
    from XAIMedSlicerLib.anatomy.stats import structure_statistics

    rng = np.random.default_rng(3)
    attribution = volume.with_array(rng.normal(0.2, 1.0, size=volume.array.shape).astype(np.float32))
    labels = np.zeros(volume.array.shape, np.int16)
    for n, value in enumerate(names):
        labels[:, 2 * n : 2 * n + 2, 3:20] = value
    label_volume = volume.with_array(labels)
    boost = {1: 2.0, 3: 1.0}  # the first and third structures rank first and second
    attribution = attribution.with_array(
        attribution.array + np.vectorize(lambda v: boost.get(v, 0.0))(labels).astype(np.float32)
    )
    return Explanation(
        image=volume, attribution=attribution, signed=True, method="saliency",
        prediction={"task": "classification", "classes": ["normal", "nodule"], "probabilities": [0.3, 0.7],
                    "predicted_index": 1, "predicted_class": "nodule"},
        target={"kind": "class_logit", "class_index": 1, "class_name": "nodule"},
        labels=label_volume if with_labels else None, label_names=names,
        structures=structure_statistics(attribution, label_volume, names) if with_labels else [],
    )  # fmt: skip


NAMES = {1: "Left-Thalamus", 2: "kidney_right", 3: "mystery blob", 4: "lung_upper_lobe_left", 5: "liver",
         6: "spleen", 7: "rh_putamen", 8: "aorta", 9: "brain_stem", 10: "vertebrae_L3"}  # fmt: skip


def test_terminology_sides_and_other_structures(oblique_volume):
    from XAIMedSlicerLib.scene.terminology import terminology_entry

    expl = small_explanation(oblique_volume, NAMES)
    facts = build_facts(expl)
    structures = facts_of(facts, StructureFact)
    assert len(structures) == MAX_STRUCTURES
    (other,) = facts_of(facts, OtherStructuresFact)
    assert other.count == len(NAMES) - MAX_STRUCTURES
    assert all(re.fullmatch(r"[A-Z]+\d+", f.ref) for f in facts)  # the report links sentences by these ids
    assert other.share_percent == pytest.approx(
        100 * sum(r["positive_share"] for r in expl.structures[MAX_STRUCTURES:]), abs=0.05
    )
    for fact in structures:
        entry = terminology_entry(fact.name)
        assert fact.snomed_code == (None if entry["generic"] else entry["type"][0])
    first, second = structures[:2]
    assert (first.name, first.snomed_code, first.snomed_meaning, first.side) == (
        "Left-Thalamus",
        "42695009",
        "Thalamus",
        "left",
    )
    assert (second.name, second.snomed_code, second.side) == ("mystery blob", None, None)
    # laterality on the oblique grid against the matrix
    positive = np.maximum(expl.attribution.array.astype(np.float64), 0.0)
    r = ras_r(expl.attribution)
    inside = expl.labels.array != 0
    midline = 0.5 * (r[inside].min() + r[inside].max())
    side = facts_of(facts, LateralityFact)[0]
    assert side.left_percent == pytest.approx(100 * positive[r < midline].sum() / positive.sum(), abs=0.05)
    assert parse_text(render_text(facts)) == facts


def test_every_kind_of_sentence_reads_back(oblique_volume):
    no_labels = build_facts(small_explanation(oblique_volume, {1: "a"}, with_labels=False))
    assert facts_of(no_labels, OutsideFact)[0] == OutsideFact("O1", False, None)
    assert facts_of(no_labels, LateralityFact)[0].basis == "image"
    variants = [
        *no_labels,
        PredictionFact("P1", "segmentation", "liver", "liver", None),
        MaskingFact("M1", "not applicable", "liver", None, None, "not a classifier"),
        MaskingFact("M1", "not checked", "lesion", None, None, "could not run: the model (v2) failed"),
        CheckFact("C1", "randomisation", "failed", 0.81, 0.5),
        CheckFact("C2", "deletion", "failed", 0.52, 0.48),
        StructureFact(
            "S1",
            1,
            "nodule",
            7,
            "lung_upper_lobe_left",
            71.3,
            1.2e-05,
            -0.0034,
            (-10.0, 0.0, 3.5),
            1234.0,
            "45653009",
            "Upper lobe of lung",
            "left",
        ),  # fmt: skip
        StructureFact(
            "S2", 2, "nodule", 9, "x (y)", 1.0, 2.0, 3.0, (0.0, 0.0, 0.0), 0.008, None, None, "right"
        ),
        RuleFact(
            "R1", "low_confidence", "warning", "downgrade", "The confidence is low (55.0%): look again."
        ),
        DecisionFact("D1", "keep", "lesion", "lesion", ()),
        DecisionFact("D1", "downgrade", "lesion", "lesion", ("low_confidence",)),
        DecisionFact("D1", "abstain", "no lesion", None, ("a", "b")),
    ]
    for fact in variants:
        assert parse_text(sentence(fact)) == (fact,), sentence(fact)
    facts = replace(clean_facts(), "C1", status="not checked", value=None, reference=None)
    assert parse_text(render_text(facts)) == facts


def test_unknown_sentence_is_a_one_line_error():
    text = render_text(clean_facts()) + "The network is certainly right. [P9]\n"
    with pytest.raises(XAIError, match="line 10 of the explanation text"):
        parse_text(text)
    changed = render_text(clean_facts()).replace("97.5%", "97.6%")
    assert parse_text(changed) != clean_facts()
    assert dataclasses.replace(clean_facts()[0], confidence_percent=97.6) == parse_text(changed)[0]
