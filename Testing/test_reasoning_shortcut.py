"""A planted marker outside the brain: the demo classifier takes it for a lesion, and the rules catch it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_hybrid_shortcut import MARKER_VALUE, TEST_SEED, add_marker  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setting():
    from XAIMedSlicerLib.demo.cases import make_case
    from XAIMedSlicerLib.demo.model import CARD_PATH
    from XAIMedSlicerLib.model.loader import load_model

    return load_model(CARD_PATH, "cpu"), make_case(TEST_SEED, lesion=False)


def explain_and_reason(model, case, image):
    from XAIMedSlicerLib.explain import explain
    from XAIMedSlicerLib.reasoning.writer import reason

    expl = explain(image, model, "gradcam", None, labels=case.labels, label_names=case.label_names)
    facts, results, decision = reason(expl, model=model)
    return expl, {r.rule.name for r in results if r.fired}, decision, facts


def test_marker_outside_the_anatomy_is_caught(setting):
    model, case = setting
    marked = add_marker(case.image)
    changed = np.asarray(marked.array) != np.asarray(case.image.array)
    assert changed.sum() > 0 and not np.any(np.asarray(case.labels.array)[changed])  # outside the brain
    assert np.all(np.asarray(marked.array)[changed] == MARKER_VALUE)

    expl, fired, decision, facts = explain_and_reason(model, case, case.image)
    assert expl.prediction["predicted_class"] == "no lesion"
    assert "prediction_survives_anatomy_masking" not in fired and decision.decision != "abstain"

    expl, fired, decision, facts = explain_and_reason(model, case, marked)
    assert expl.prediction["predicted_class"] == "lesion"  # the marker alone makes the network see a lesion
    masking = next(f for f in facts if f.ref == "M1")
    assert masking.status == "checked" and masking.masked_class == "lesion"
    assert "prediction_survives_anatomy_masking" in fired
    assert decision.decision == "abstain" and decision.final_class is None
    assert "prediction_survives_anatomy_masking" in [s.rule for s in decision.trace]
    # the evidence sits on the marker's side (right) and largely outside the brain
    side = next(f for f in facts if f.ref == "L1")
    assert side.right_percent > side.left_percent
    positive = np.maximum(expl.attribution.array.astype(np.float64), 0.0)
    outside = positive[np.asarray(case.labels.array) == 0].sum() / positive.sum()
    assert next(f for f in facts if f.ref == "O1").share_percent == pytest.approx(100 * outside, abs=0.05)
