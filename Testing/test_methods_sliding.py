"""Sliding-window attribution equals differentiating the whole sliding-window inference at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference

from test_methods_support import one_thread  # noqa: F401  (autouse fixture)
from tinynets import small_densenet
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.integrated_gradients import quadrature
from XAIMedSlicerLib.methods.sliding import SlidingWindowModel
from XAIMedSlicerLib.methods.targets import ClassTarget, RegionTarget


def whole_volume(method: str, model, x, target, steps: int = 4) -> torch.Tensor:
    """The attribution with one autograd graph through the whole (small) volume."""
    alphas, weights = quadrature(steps) if method == "ig" else ([1.0], [1.0])
    total = torch.zeros_like(x)
    for a, w in zip(alphas, weights, strict=True):
        point = (float(a) * x).requires_grad_(True)
        (grad,) = torch.autograd.grad(target(model(point)).sum(), point)
        total += float(w) * grad
    if method == "saliency":
        return total.abs()[0].amax(0)
    return (x * total)[0].sum(0)


@pytest.fixture(scope="module")
def unet():
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    return UNet(3, 1, 3, (4, 8, 16), (2, 2), num_res_units=1, norm="batch").eval()


@pytest.mark.parametrize(
    ("method", "mode"), [("saliency", "gaussian"), ("ig", "gaussian"), ("input_x_gradient", "constant")]
)
def test_segmentation_region_through_sliding_windows(unet, method, mode):
    torch.manual_seed(1)
    x = torch.randn(1, 1, 36, 28, 20)
    mask = torch.zeros(36, 28, 20, dtype=torch.bool)
    mask[4:14, 5:15, 3:12] = True
    target = RegionTarget(1, mask)
    wrapped = SlidingWindowModel(unet, (16, 16, 16), overlap=0.5, mode=mode)
    ours = get_method(method).fn(wrapped, x, target, **({"steps": 4} if method == "ig" else {}))
    ref = whole_volume(
        method, lambda v: sliding_window_inference(v, (16, 16, 16), 1, unet, 0.5, mode), x, target
    )
    torch.testing.assert_close(ours.map, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()))
    assert ours.info["windows"] < ours.info["windows_total"]  # windows away from the region are skipped
    with torch.no_grad():
        whole = float(target(wrapped(x)))
    assert abs(wrapped.target_score(x, target) - whole) <= 1e-5 * abs(whole)  # from the region's windows


@pytest.mark.parametrize("shape", [(30, 26, 20), (12, 20, 10)])  # the second needs padding
def test_classifier_through_sliding_windows(shape):
    torch.manual_seed(2)
    net = small_densenet()
    x = torch.randn(1, 1, *shape)
    wrapped = SlidingWindowModel(net, (16, 16, 16), task="classification", overlap=0.25)
    ours = get_method("ig").fn(wrapped, x, ClassTarget(1), steps=3)
    ref = whole_volume("ig", wrapped, x, ClassTarget(1), steps=3)
    torch.testing.assert_close(ours.map, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()))
    assert ours.map.shape == tuple(shape)
    assert ours.info["completeness_error"] < 1.0  # f(x) and f(baseline) come from the wrapped model


def test_one_window_covering_the_volume_equals_the_plain_network(unet):
    torch.manual_seed(3)
    x = torch.randn(1, 1, 16, 16, 16)
    mask = torch.zeros(16, 16, 16, dtype=torch.bool)
    mask[3:9, 4:12, 6:14] = True
    target = RegionTarget(2, mask)
    plain = get_method("saliency").fn(unet, x, target).map
    wrapped = get_method("saliency").fn(SlidingWindowModel(unet, (16, 16, 16)), x, target).map
    torch.testing.assert_close(wrapped, plain, rtol=1e-5, atol=1e-9)
    assert np.isfinite(wrapped.numpy()).all()


def test_smoothgrad_through_sliding_windows_matches_the_whole_volume(unet):
    torch.manual_seed(4)
    x = torch.randn(1, 1, 24, 20, 16)
    mask = torch.zeros(24, 20, 16, dtype=torch.bool)
    mask[8:16, 6:14, 4:12] = True
    target = RegionTarget(1, mask)
    wrapped = SlidingWindowModel(unet, (16, 16, 16), overlap=0.25)
    ours = get_method("smoothgrad").fn(wrapped, x, target, samples=2, stdev=0.1, seed=9)
    gen = torch.Generator().manual_seed(9)
    ref = torch.zeros(x.shape[2:])
    for _ in range(2):
        noisy = x + torch.normal(0.0, 0.1, size=tuple(x.shape[1:]), generator=gen)
        ref += whole_volume("saliency", wrapped, noisy, target) / 2
    torch.testing.assert_close(ours.map, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()))


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
def test_cam_through_sliding_windows(unet, method):
    torch.manual_seed(5)
    layer = "model.1.submodule.0.conv.unit0.conv"
    mask = torch.zeros(16, 16, 16, dtype=torch.bool)
    mask[4:12, 4:12, 4:12] = True
    x = torch.randn(1, 1, 16, 16, 16)
    plain = get_method(method).fn(unet, x, RegionTarget(1, mask), layer=layer).map
    one = get_method(method).fn(SlidingWindowModel(unet, (16, 16, 16)), x, RegionTarget(1, mask), layer=layer)
    torch.testing.assert_close(one.map, plain, rtol=1e-5, atol=1e-8)  # one window: the plain CAM
    big = torch.randn(1, 1, 40, 24, 16)
    mask = torch.zeros(40, 24, 16, dtype=torch.bool)
    mask[20:30, 8:16, 4:12] = True
    blended = get_method(method).fn(
        SlidingWindowModel(unet, (16, 16, 16)), big, RegionTarget(1, mask), layer=layer
    )
    assert blended.map.shape == (40, 24, 16) and float(blended.map.min()) >= 0
    assert 0 < blended.info["windows"] < blended.info["windows_total"]
