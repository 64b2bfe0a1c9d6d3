"""Grad-CAM and Integrated Gradients agree with MONAI and Captum, and IG is complete."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinynets import small_densenet
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.targets import ClassTarget


def corr(a, b) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module")
def net_and_input():
    torch.manual_seed(1)
    net = small_densenet()
    x = torch.randn(1, 1, 24, 28, 20)
    x[..., 8:14, 10:16, 6:12] += 2.0
    return net, x


@pytest.mark.parametrize(
    "layer", ["features.denseblock2.denselayer2.layers.conv2", "features.transition1.conv"]
)
@pytest.mark.parametrize("cls", [0, 1])
def test_gradcam_matches_monai(net_and_input, layer, cls):
    from monai.visualize import GradCAM

    net, x = net_and_input
    ours = get_method("gradcam").fn(net, x, ClassTarget(cls), layer=layer).map.numpy()
    # MONAI's default normaliser maps (min, max) to (1, 0), flipping the map; compare raw maps
    ref = GradCAM(nn_module=net, target_layers=layer, postprocessing=lambda m: m)(x, class_idx=cls)
    ref = ref[0, 0].detach().numpy()
    assert ours.shape == ref.shape == tuple(x.shape[2:])
    assert corr(ours, ref) >= 0.99


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_trapezoid"])
def test_ig_matches_captum(net_and_input, rule):
    from captum.attr import IntegratedGradients

    net, x = net_and_input
    ours = get_method("ig").fn(net, x, ClassTarget(1), steps=12, rule=rule, batch_size=5)
    ref = IntegratedGradients(net).attribute(
        x, baselines=torch.zeros_like(x), target=1, n_steps=12, method=rule
    )
    ref = ref[0].sum(0).detach().numpy()
    if rule == "riemann_trapezoid":
        # Captum's trapezoid weights are 1/n (ends 1/2n) and sum to (n-1)/n; ours are the exact
        # trapezoid rule on n points, 1/(n-1) (ends 1/(2(n-1))), so the maps differ by n/(n-1)
        ref = ref * 12 / 11
    np.testing.assert_allclose(ours.map.numpy(), ref, rtol=1e-4, atol=1e-6)


def test_ig_completeness(net_and_input):
    net, x = net_and_input
    result = get_method("ig").fn(net, x, ClassTarget(1), steps=32, batch_size=8)
    with torch.no_grad():
        delta = float(net(x)[0, 1] - net(torch.zeros_like(x))[0, 1])
    assert abs(result.map.sum().item() - delta) <= 0.05 * abs(delta)
    assert result.info["completeness_error"] <= 0.05


def test_ig_batch_size_does_not_change_the_map(net_and_input):
    net, x = net_and_input
    a = get_method("ig").fn(net, x, ClassTarget(0), steps=8, batch_size=1).map
    b = get_method("ig").fn(net, x, ClassTarget(0), steps=8, batch_size=8).map
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
