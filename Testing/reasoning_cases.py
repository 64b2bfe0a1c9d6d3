"""Constructed fact sets for the reasoning tests: one clean case, and changes that trip each shipped rule."""

from __future__ import annotations

import ast
import dataclasses

from XAIMedSlicerLib.reasoning.facts import (
    CheckFact,
    LateralityFact,
    MaskingFact,
    OutsideFact,
    PredictionFact,
    StructureFact,
)


def structure(rank: int, name: str, share: float, label: int) -> StructureFact:
    return StructureFact(
        f"S{rank}",
        rank,
        "lesion",
        label,
        name,
        share,
        0.0012,
        0.034,
        (10.0, -4.0, 22.0),
        512.3,
        None,
        None,
        None,
    )


def clean_facts() -> tuple:
    """A confident lesion prediction whose evidence lies in white matter, all checks passed."""
    return (
        PredictionFact("P1", "classification", "lesion", "lesion", 97.5),
        structure(1, "white matter", 60.0, 2),
        structure(2, "grey matter", 30.0, 1),
        structure(3, "csf", 4.0, 3),
        OutsideFact("O1", True, 6.0),
        LateralityFact("L1", 48.0, 52.0, 0.0, "labelled anatomy"),
        CheckFact("C1", "randomisation", "passed", 0.12, 0.5),
        CheckFact("C2", "deletion", "passed", 0.21, 0.48),
        MaskingFact("M1", "checked", "lesion", 8.0, "no lesion"),
    )


def threshold(condition: str) -> float:
    """The one numeric threshold in a rule condition."""
    numbers = [
        n.value
        for n in ast.walk(ast.parse(condition, mode="eval"))
        if isinstance(n, ast.Constant) and isinstance(n.value, float | int) and not isinstance(n.value, bool)
    ]
    assert len(numbers) == 1, f"expected one threshold in {condition!r}"
    return float(numbers[0])


def replace(facts: tuple, ref: str, **changes) -> tuple:
    return tuple(dataclasses.replace(f, **changes) if f.ref == ref else f for f in facts)


def tripping(rule) -> tuple:
    """``clean_facts()`` changed just past the rule's threshold (or into its failing state)."""
    facts = clean_facts()
    name = rule.name
    if name == "evidence_outside_anatomy":
        return replace(facts, "O1", share_percent=round(100 * threshold(rule.condition) + 1.0, 1))
    if name == "evidence_in_structure_that_cannot_hold":
        share = round(100 * threshold(rule.condition) + 1.0, 1)
        return replace(facts, "S3", share_percent=share)
    if name == "lateralised_evidence":
        t = threshold(rule.condition) + 0.02  # (R - L) / (R + L) with L + R = 100
        return replace(facts, "L1", left_percent=round(50 * (1 - t), 1), right_percent=round(50 * (1 + t), 1))
    if name == "randomisation_failed":
        return replace(facts, "C1", status="failed", value=0.81)
    if name == "randomisation_not_run":
        return replace(facts, "C1", status="not checked", value=None, reference=None)
    if name == "deletion_failed":
        return replace(facts, "C2", status="failed", value=0.52)
    if name == "low_confidence":
        return replace(facts, "P1", confidence_percent=round(100 * threshold(rule.condition) - 1.0, 1))
    if name == "prediction_survives_anatomy_masking":
        share = round(100 * threshold(rule.condition) + 1.0, 1)
        return replace(facts, "M1", masked_percent=share, masked_class="lesion")
    raise AssertionError(f"no constructed case for rule '{name}': add one to Testing/reasoning_cases.py")


def just_short(rule) -> tuple:
    """``clean_facts()`` changed to just inside the rule's threshold (silent)."""
    facts = clean_facts()
    name = rule.name
    if name == "evidence_outside_anatomy":
        return replace(facts, "O1", share_percent=round(100 * threshold(rule.condition) - 1.0, 1))
    if name == "evidence_in_structure_that_cannot_hold":
        return replace(facts, "S3", share_percent=round(100 * threshold(rule.condition) - 1.0, 1))
    if name == "lateralised_evidence":
        t = threshold(rule.condition) - 0.02
        return replace(facts, "L1", left_percent=round(50 * (1 - t), 1), right_percent=round(50 * (1 + t), 1))
    if name == "low_confidence":
        return replace(facts, "P1", confidence_percent=round(100 * threshold(rule.condition) + 1.0, 1))
    if name == "prediction_survives_anatomy_masking":
        share = round(100 * threshold(rule.condition) - 1.0, 1)
        return replace(facts, "M1", masked_percent=share, masked_class="lesion")
    return facts
