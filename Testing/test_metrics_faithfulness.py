"""Deletion and insertion curves against curves computed by hand for a linear model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.metrics import evaluate_faithfulness
from XAIMedSlicerLib.metrics.faithfulness import auc


class WeightedSum(nn.Module):
    """score = sum over channels and voxels of w * x: every voxel's contribution is known exactly."""

    def __init__(self, w: np.ndarray) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.from_numpy(w.astype(np.float32))[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1, keepdim=True)


def first(output: torch.Tensor) -> torch.Tensor:
    return output[:, 0]


def expected_curve(x, w, fill, order, counts):
    """Score after the first counts[t] voxels of ``order`` take ``fill``'s values (all channels)."""
    c_x = (w * x).reshape(x.shape[0], -1).sum(0)  # per-voxel contribution, summed over channels
    c_f = (w * fill).reshape(x.shape[0], -1).sum(0)
    return np.array([c_x.sum() - c_x[order[:n]].sum() + c_f[order[:n]].sum() for n in counts])


@pytest.fixture
def linear_case():
    rng = np.random.default_rng(11)
    x = rng.normal(1.0, 1.0, size=(1, 6, 5, 4)).astype(np.float32)  # (C, X, Y, Z)
    w = rng.normal(0.0, 1.0, size=x.shape).astype(np.float32)
    return x, w, WeightedSum(w).eval()


def test_deletion_and_insertion_match_hand_computation(linear_case):
    x, w, model = linear_case
    attribution = (w * x)[0]
    steps = 12
    res = evaluate_faithfulness(
        model,
        torch.from_numpy(x)[None],
        first,
        attribution,
        steps=steps,
        baseline=0.5,
        blur_sigma=1.5,
        n_random=2,
        seed=4,
    )
    n = attribution.size
    counts = np.round(np.linspace(0, n, steps + 1)).astype(int)
    order = np.argsort(-attribution.ravel(), kind="stable")
    deletion = expected_curve(x, w, np.full_like(x, 0.5), order, counts)
    np.testing.assert_allclose(res.deletion.scores, deletion, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(res.deletion.fractions, counts / n)
    assert res.deletion.auc == pytest.approx(np.trapezoid(deletion, counts / n), rel=1e-4)
    normalised = (deletion - deletion[-1]) / (deletion[0] - deletion[-1])
    assert res.deletion.normalised_auc == pytest.approx(np.trapezoid(normalised, counts / n), rel=1e-4)

    blurred = ndimage.gaussian_filter(x, sigma=(0, 1.5, 1.5, 1.5), mode="nearest")
    # insertion: start from the blurred copy and put the original voxels back, most relevant first
    insertion = expected_curve(blurred, w, x, order, counts)
    np.testing.assert_allclose(res.insertion.scores, insertion, rtol=1e-4, atol=1e-4)

    rng = np.random.default_rng(4)
    randoms = [rng.permutation(n) for _ in range(2)]
    random_deletion = np.mean(
        [expected_curve(x, w, np.full_like(x, 0.5), o, counts) for o in randoms], axis=0
    )
    np.testing.assert_allclose(res.deletion_random.scores, random_deletion, rtol=1e-4, atol=1e-4)
    assert res.passes  # exact contributions beat random orders
    assert json.loads(res.to_json())["deletion"]["kind"] == "deletion"


def test_batching_and_reverse_order(linear_case):
    x, w, model = linear_case
    xt = torch.from_numpy(x)[None]
    a = (w * x)[0]
    one = evaluate_faithfulness(model, xt, first, a, steps=10, batch_size=1, n_random=1)
    many = evaluate_faithfulness(model, xt, first, a, steps=10, batch_size=7, n_random=1)
    np.testing.assert_allclose(one.deletion.scores, many.deletion.scores, rtol=1e-6)
    np.testing.assert_allclose(one.insertion_random.scores, many.insertion_random.scores, rtol=1e-6)
    worst = evaluate_faithfulness(model, xt, first, -a, steps=10, n_random=3, deletion_replacement="baseline")
    assert not worst.passes
    assert worst.deletion.normalised_auc > worst.deletion_random.normalised_auc


def test_2d_multichannel_image():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 9, 7)).astype(np.float32)  # two channels, 2D
    w = rng.normal(size=x.shape).astype(np.float32)
    model = WeightedSum(w).eval()
    a = (w * x).sum(0)
    res = evaluate_faithfulness(
        model, torch.from_numpy(x)[None], first, a, steps=9, n_random=1, insertion_replacement="mean"
    )
    counts = np.round(np.linspace(0, a.size, 10)).astype(int)
    order = np.argsort(-a.ravel(), kind="stable")
    expected = expected_curve(x, w, np.zeros_like(x), order, counts)
    np.testing.assert_allclose(res.deletion.scores, expected, rtol=1e-4, atol=1e-4)
    means = np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape)
    np.testing.assert_allclose(
        res.insertion.scores, expected_curve(means, w, x, order, counts), rtol=1e-4, atol=1e-4
    )


def test_auc_and_errors(linear_case):
    assert auc([0, 0.5, 1], [1, 0.5, 0]) == pytest.approx(0.5)
    x, w, model = linear_case
    with pytest.raises(XAIError, match="attribution shape"):
        evaluate_faithfulness(model, torch.from_numpy(x)[None], first, np.zeros((2, 2, 2)))
    with pytest.raises(XAIError, match="input tensor"):
        evaluate_faithfulness(model, torch.from_numpy(x)[None, None], first, x[0])
    with pytest.raises(XAIError, match="unknown replacement"):
        evaluate_faithfulness(model, torch.from_numpy(x)[None], first, x[0], deletion_replacement="noise")


def test_given_replacement_and_flags(linear_case):
    from XAIMedSlicerLib.metrics import map_flags

    x, w, model = linear_case
    healthy = np.full_like(x, 0.25)
    a = (w * x)[0]
    res = evaluate_faithfulness(
        model, torch.from_numpy(x)[None], first, a, steps=6, n_random=1,
        deletion_replacement=torch.from_numpy(healthy)[None], insertion_replacement=torch.from_numpy(healthy)[None],
    )  # fmt: skip
    counts = np.round(np.linspace(0, a.size, 7)).astype(int)
    order = np.argsort(-a.ravel(), kind="stable")
    np.testing.assert_allclose(
        res.deletion.scores, expected_curve(x, w, healthy, order, counts), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        res.insertion.scores, expected_curve(healthy, w, x, order, counts), rtol=1e-4, atol=1e-4
    )
    assert res.replacement["deletion"] == "given input"
    flags = map_flags(faithfulness=res)
    assert flags.trustworthy and flags.text.startswith(
        f"deletion AUC {res.deletion.normalised_auc:.2f} against"
    )
    worse = evaluate_faithfulness(model, torch.from_numpy(x)[None], first, -a, steps=6, n_random=1)
    assert (
        not map_flags(faithfulness=worse).trustworthy
        and "not trustworthy" in map_flags(faithfulness=worse).text
    )
    flat = evaluate_faithfulness(
        WeightedSum(np.zeros_like(w)).eval(), torch.from_numpy(x)[None], first, a, steps=4
    )
    assert np.isnan(flat.deletion.normalised_auc) and "not measurable" in map_flags(faithfulness=flat).text
