"""The synthetic-lesion benchmark: lesions inside named structures, seeded data and training, the tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.methods import available_methods
from XAIMedSlicerLib.study.benchmark import SETTINGS, run_benchmark, with_overrides
from XAIMedSlicerLib.study.benchmark_data import DATASETS, load_scan, make_cases, to_input
from XAIMedSlicerLib.study.tiny_classifier import train_classifier


@pytest.fixture(scope="module")
def ct_scan(shared_data):
    return load_scan(DATASETS["ct"], 24, shared_data("ct").parent)


def test_lesions_lie_inside_the_named_structures(ct_scan):
    cases = make_cases(ct_scan, 12, seed=5)
    assert {c.label for c in cases} == {0, 1}
    inside = ct_scan.structures.array > 0
    for c in cases:
        assert c.image.same_grid(ct_scan.image)
        lesion = c.lesion.array > 0
        assert lesion.any() == bool(c.label)
        assert not (lesion & ~inside).any()  # ground truth by construction: only inside liver/spleen/kidneys
        if c.label:  # the lesion stands out from noise and gain changes
            deviation = np.abs(c.image.array - ct_scan.image.array)
            assert deviation[lesion].mean() > 2 * deviation[inside & ~lesion].mean()


def test_cases_and_training_are_seeded(ct_scan):
    a, b = make_cases(ct_scan, 6, seed=3), make_cases(ct_scan, 6, seed=3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image.array, y.image.array)
        np.testing.assert_array_equal(x.lesion.array, y.lesion.array)
    assert not np.array_equal(make_cases(ct_scan, 6, seed=4)[0].image.array, a[0].image.array)
    m1, _ = train_classifier(a, ct_scan.image, epochs=1, seed=7)
    m2, _ = train_classifier(a, ct_scan.image, epochs=1, seed=7)
    for p, q in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    with torch.no_grad():
        torch.testing.assert_close(m1(to_input(a[0].image)), m2(to_input(a[0].image)))


def test_ci_benchmark_scores_every_method(tmp_path, shared_data):
    settings = with_overrides(SETTINGS["ci"], datasets=("ct",))
    result = run_benchmark(tmp_path, settings, data_root=shared_data("ct").parent)
    data = json.loads((tmp_path / "benchmark.json").read_text())
    md = (tmp_path / "benchmark.md").read_text()
    expected = list(dict.fromkeys([*available_methods(), "guided_backprop"]))
    assert [s["method"] for s in data["scores"]] == expected
    assert data["datasets"]["ct"]["structures"] == ["liver", "spleen", "kidney_left", "kidney_right"]
    assert 0.0 <= data["datasets"]["ct"]["test_accuracy"] <= 1.0
    applicable = [s for s in result.scores if not s.error]
    assert {"gradcam", "saliency", "input_x_gradient", "ig"} <= {s.method for s in applicable}
    for s in result.scores:  # methods for other architectures (attention on this CNN) are marked n/a
        assert s.error == "" or s.error.startswith("not applicable: "), s.error
    for s in applicable:
        assert 0.0 <= s.pointing_game <= 1.0 and s.n_cases == settings.n_eval
        for v in (s.energy_inside, s.deletion_auc, s.deletion_auc_random):
            assert np.isnan(v) or 0.0 <= v <= 1.0
    for title in ("Pointing game", "Energy inside the lesion", "Deletion AUC", "Sanity"):
        assert f"## {title}" in md
    assert all(f"| {m} |" in md for m in expected)


def test_benchmark_bad_input(tmp_path):
    with pytest.raises(XAIError, match="unknown benchmark setting"):
        run_benchmark(tmp_path, "huge")
    with pytest.raises(XAIError, match="unknown benchmark datasets"):
        run_benchmark(tmp_path, with_overrides(SETTINGS["ci"], datasets=("xray",)))
    with pytest.raises(XAIError, match="real data folder"):
        load_scan(DATASETS["mr"], 16, tmp_path / "nowhere")
