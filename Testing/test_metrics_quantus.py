"""Our metrics agree with Quantus 0.6.0 where Quantus runs on the same 3D input.

Quantus only accepts volumes with ``channel_first=True`` (its shape inference stops at 2D images);
even then Focus, RegionPerturbation, Selectivity, IROF, Infidelity and Continuity fail on volumes
(``test_quantus_metrics_that_fail_on_volumes``). Where it runs, the numbers must match ours.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import quantus  # a test extra pinned in pyproject (quantus==0.6.0)
import torch
from torch import nn

from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.metrics import (
    cascading_randomisation,
    energy_pointing_game,
    max_sensitivity,
    pointing_game,
    relevance_rank_accuracy,
    top_k_overlap,
)
from XAIMedSlicerLib.metrics.faithfulness import perturbation_curve
from XAIMedSlicerLib.metrics.perturbation import attribution_order, replacement_input
from XAIMedSlicerLib.metrics.robustness import uniform_perturbations

SHAPE = (10, 12, 8)
gradient_x_input = get_method("input_x_gradient").fn


class SmallNet(nn.Module):
    """A real (randomly initialised) 3D classifier: conv, ReLU, global average pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.conv(x)).mean(dim=(2, 3, 4)))


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 1, *SHAPE)).astype(np.float32)
    a = rng.normal(size=(3, 1, *SHAPE)).astype(np.float32)
    s = np.zeros_like(x)
    s[0, :, 2:6, 3:8, 1:5] = 1
    s[1, :, 5:9, 0:4, 4:8] = 1
    s[2, :, 0:3, 0:12, 0:2] = 1
    torch.manual_seed(0)
    return x, a, s, np.array([0, 1, 2]), SmallNet().eval()


def run_quantus(metric, x, a, s, y, model=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(
            metric(
                model=model,
                x_batch=x,
                y_batch=y,
                a_batch=None if a is None else a.copy(),
                s_batch=s,
                channel_first=True,
                device="cpu",
                **kw,
            ),
            dtype=float,
        )


def test_localisation_agrees_with_quantus(batch):
    x, a, s, y, _ = batch
    q = dict(disable_warnings=True)
    np.testing.assert_array_equal(
        run_quantus(quantus.PointingGame(**q), x, a, s, y), pointing_game(a[:, 0], s[:, 0], batched=True)
    )
    energy = quantus.AttributionLocalisation(abs=False, positive_attributions=True, normalise=False, **q)
    np.testing.assert_allclose(
        run_quantus(energy, x, a, s, y), energy_pointing_game(a[:, 0], s[:, 0], batched=True), rtol=1e-6
    )
    np.testing.assert_allclose(
        run_quantus(quantus.RelevanceRankAccuracy(**q), x, a, s, y),
        relevance_rank_accuracy(a[:, 0], s[:, 0], batched=True),
        rtol=1e-12,
    )
    k = 48
    ours = top_k_overlap(a[:, 0], s[:, 0], 100.0 * k / np.prod(SHAPE), batched=True)
    np.testing.assert_allclose(
        run_quantus(quantus.TopKIntersection(k=k, **q), x, a, s, y), ours["precision"], rtol=1e-12
    )


def test_deletion_curve_agrees_with_pixel_flipping(batch):
    x, a, s, y, model = batch
    steps = 16
    n = int(np.prod(SHAPE))
    pf = quantus.PixelFlipping(features_in_step=n // steps, perturb_baseline="black", disable_warnings=True)
    q = run_quantus(pf, x, a, s, y, model=model)  # softmax probabilities after each step
    for b in range(len(x)):
        xb = torch.from_numpy(x[b : b + 1])
        order = attribution_order(a[b, 0], SHAPE)
        black = replacement_input(xb, "baseline", baseline=float(x[b].min()))
        curve = perturbation_curve(
            model,
            xb,
            lambda o, b=b: torch.softmax(o, 1)[:, b],
            order,
            kind="deletion",
            replacement=black,
            steps=steps,
        )
        np.testing.assert_allclose(curve.scores[1:], q[b], rtol=1e-5, atol=1e-7)


def quantus_explain(model, inputs, targets, **_):
    maps = []
    for i in range(len(inputs)):
        xi, t = torch.as_tensor(inputs[i : i + 1]), int(targets[i])
        maps.append(gradient_x_input(model, xi, lambda o, t=t: o[:, t]).map.numpy()[None])
    return np.stack(maps)


def test_max_sensitivity_agrees_with_fixed_perturbations(batch):
    x, _, _, y, model = batch
    xb = torch.from_numpy(x[:1])
    noise = uniform_perturbations(xb, 0.1, 4, seed=3)
    feed = iter(noise)

    def fixed(arr, indices, **_):
        return arr + next(feed).numpy().reshape(arr.shape)

    metric = quantus.MaxSensitivity(nr_samples=4, perturb_func=fixed, disable_warnings=True)
    q = run_quantus(metric, x[:1], None, None, y[:1], model=model, explain_func=quantus_explain)
    ours = max_sensitivity(model, xb, lambda o: o[:, 0], gradient_x_input, perturbations=noise)
    assert ours.max_sensitivity == pytest.approx(float(q[0]), rel=1e-6)


def test_cascading_randomisation_agrees_with_mprt(batch):
    x, _, _, y, model = batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = quantus.MPRT(disable_warnings=True)(
            model=model,
            x_batch=x,
            y_batch=y,
            a_batch=None,
            explain_func=quantus_explain,
            channel_first=True,
            device="cpu",
        )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for b in range(len(x)):
        ours = cascading_randomisation(
            model, torch.from_numpy(x[b : b + 1]), lambda o, b=b: o[:, b], gradient_x_input
        )
        assert [s.layer for s in ours.layers] == ["fc", "conv"]
        for s in ours.layers:
            assert s.spearman == pytest.approx(q[s.layer][b], abs=1e-9)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])  # the caller's model is untouched


FAILING_ON_VOLUMES = {
    "Focus": lambda: quantus.Focus(disable_warnings=True),
    "RegionPerturbation": lambda: quantus.RegionPerturbation(
        patch_size=2, regions_evaluation=3, disable_warnings=True
    ),
    "Selectivity": lambda: quantus.Selectivity(patch_size=2, disable_warnings=True),
    "IROF": lambda: quantus.IROF(disable_warnings=True),
    "Infidelity": lambda: quantus.Infidelity(
        perturb_patch_sizes=[2], n_perturb_samples=2, disable_warnings=True
    ),
    "Continuity": lambda: quantus.Continuity(nr_steps=2, disable_warnings=True),
}


@pytest.mark.parametrize("name", sorted(FAILING_ON_VOLUMES))
def test_quantus_metrics_that_fail_on_volumes(batch, name):
    """Documents which Quantus 0.6.0 metrics cannot take 3D input (our metrics cover the same ground)."""
    x, a, s, y, model = batch
    with pytest.raises((ValueError, AssertionError, TypeError)):
        run_quantus(FAILING_ON_VOLUMES[name](), x, a, s, y, model=model, explain_func=quantus_explain)


def test_quantus_needs_channel_first_for_volumes(batch):
    x, a, s, y, _ = batch
    with pytest.raises(ValueError, match="Only batched 1D and 2D"):
        quantus.PointingGame(disable_warnings=True)(model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s)
