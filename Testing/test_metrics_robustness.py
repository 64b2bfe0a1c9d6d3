"""Max-sensitivity against values computed by hand for a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.metrics import max_sensitivity

saliency = get_method("saliency").fn
gradient_x_input = get_method("input_x_gradient").fn


class WeightedSum(nn.Module):
    def __init__(self, w: np.ndarray) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.from_numpy(w)[None])

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True)


def first(out):
    return out[:, 0]


def test_max_sensitivity_hand_values():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 1.0, size=(1, 5, 6, 4)).astype(np.float32)
    w = rng.normal(size=x.shape).astype(np.float32)
    model = WeightedSum(w).eval()
    xt = torch.from_numpy(x)[None]
    # the gradient of a linear model does not depend on the input: sensitivity 0
    assert max_sensitivity(
        model, xt, first, saliency, radius=0.1, n_samples=3
    ).max_sensitivity == pytest.approx(0.0)
    # gradient x input = w * x, so the change is w * d: |w d| / |w x|
    res = max_sensitivity(model, xt, first, gradient_x_input, radius=0.1, n_samples=5, seed=7)
    noise = np.random.default_rng(7)
    expected = [
        np.linalg.norm(w[0] * noise.uniform(-0.1, 0.1, size=(1, *x.shape)).astype(np.float32)[0, 0])
        / np.linalg.norm(w[0] * x[0])
        for _ in range(5)
    ]
    np.testing.assert_allclose(res.sensitivities, expected, rtol=1e-4)
    assert res.max_sensitivity == pytest.approx(max(expected), rel=1e-4)
    again = max_sensitivity(model, xt, first, gradient_x_input, radius=0.1, n_samples=5, seed=7)
    assert again.sensitivities == res.sensitivities  # seeded
    assert res.to_dict()["n_samples"] == 5


def test_max_sensitivity_errors():
    model = WeightedSum(np.zeros((1, 3, 3, 3), np.float32))
    x = torch.ones(1, 1, 3, 3, 3)
    with pytest.raises(XAIError, match="zero everywhere"):
        max_sensitivity(model, x, first, saliency, n_samples=1)
    with pytest.raises(XAIError, match="radius"):
        max_sensitivity(model, x, first, saliency, radius=0.0)
