"""Saliency, gradient x input, SmoothGrad, Grad-CAM++ and guided backprop agree with Captum and MONAI."""

from __future__ import annotations

import pytest
import torch

from test_methods_support import corr, one_thread  # noqa: F401  (one_thread: autouse fixture)
from tinynets import small_densenet
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.targets import ClassTarget

LAYER = "features.transition1.conv"


@pytest.fixture(scope="module")
def net_and_input():
    torch.manual_seed(1)
    net = small_densenet()
    x = torch.randn(1, 1, 20, 24, 16)
    x[..., 6:12, 8:14, 4:10] += 2.0
    return net, x


def test_saliency_equals_captum(net_and_input):
    from captum.attr import Saliency

    net, x = net_and_input
    ours = get_method("saliency").fn(net, x, ClassTarget(1)).map
    ref = Saliency(net).attribute(x, target=1, abs=True)[0].amax(0)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-9)


def test_input_x_gradient_equals_captum(net_and_input):
    from captum.attr import InputXGradient

    net, x = net_and_input
    ours = get_method("input_x_gradient").fn(net, x, ClassTarget(0)).map
    ref = InputXGradient(net).attribute(x.clone(), target=0)[0].sum(0).detach()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-9)


def test_smoothgrad_equals_monai_with_the_same_seed(net_and_input):
    from monai.visualize import SmoothGrad

    net, x = net_and_input
    torch.manual_seed(7)
    ref = SmoothGrad(net, n_samples=6, verbose=False)(x.clone(), index=1)[0, 0]
    ours = get_method("smoothgrad").fn(
        net, x, ClassTarget(1), base="gradient", samples=6, aggregate="rms", seed=7
    )
    torch.testing.assert_close(ours.map, ref, rtol=1e-4, atol=1e-9)


def test_smoothgrad_in_bf16_within_its_tolerance_tracks_monai_and_falls_back_outside_it(net_and_input):
    from monai.visualize import SmoothGrad

    net, x = net_and_input
    torch.manual_seed(7)
    ref = SmoothGrad(net, n_samples=6, verbose=False)(x.clone(), index=1)[0, 0]
    fn = get_method("smoothgrad").fn
    params = {"base": "gradient", "samples": 6, "aggregate": "rms", "seed": 7, "precision": "bf16"}
    low = fn(net, x, ClassTarget(1), tolerance=1.0, **params)
    assert low.info["precision"] == "bfloat16" and low.params["tolerance"] == 1.0
    assert 0 < low.info["gradient_relative_error"] < 1.0  # measured and recorded
    assert not torch.equal(low.map, ref)  # really ran in bf16
    r = torch.corrcoef(torch.stack([low.map.flatten(), ref.flatten()]))[0, 1]
    assert r >= 0.99
    with pytest.warns(RuntimeWarning, match="using fp32"):
        exact = fn(net, x, ClassTarget(1), tolerance=1e-9, **params)
    assert exact.info["precision"] == "fp32"
    torch.testing.assert_close(exact.map, ref, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize(("aggregate", "nt_type"), [("mean", "smoothgrad"), ("mean_square", "smoothgrad_sq")])
def test_smoothgrad_equals_captum_noise_tunnel(net_and_input, aggregate, nt_type):
    from captum.attr import NoiseTunnel, Saliency

    net, x = net_and_input
    torch.manual_seed(3)
    ref = NoiseTunnel(Saliency(net)).attribute(
        x, nt_type=nt_type, nt_samples=5, stdevs=0.4, target=1, nt_samples_batch_size=5
    )
    ours = get_method("smoothgrad").fn(
        net, x, ClassTarget(1), samples=5, stdev=0.4, aggregate=aggregate, seed=3
    )
    torch.testing.assert_close(ours.map, ref[0].amax(0), rtol=1e-4, atol=1e-9)


def test_smoothgrad_over_ig_is_the_mean_of_ig_on_the_same_noisy_inputs(net_and_input):
    from captum.attr import IntegratedGradients

    net, x = net_and_input
    ours = get_method("smoothgrad").fn(
        net, x, ClassTarget(1), base="ig", samples=3, stdev=0.3, seed=5, base_params={"steps": 4}, chunk=5
    )
    gen = torch.Generator().manual_seed(5)
    ig = IntegratedGradients(net)
    ref = torch.zeros(x.shape[2:])
    for _ in range(3):
        noisy = x + torch.normal(0.0, 0.3, size=tuple(x.shape[1:]), generator=gen)
        ref += ig.attribute(noisy, baselines=0.0, target=1, n_steps=4)[0].sum(0).detach() / 3
    torch.testing.assert_close(ours.map, ref, rtol=1e-4, atol=1e-7)


def test_smoothgrad_same_seed_same_map_other_seed_other_map(net_and_input):
    net, x = net_and_input
    fn = get_method("smoothgrad").fn
    a = fn(net, x, ClassTarget(1), samples=4, seed=11).map
    b = fn(net, x, ClassTarget(1), samples=4, seed=11, chunk=1).map
    c = fn(net, x, ClassTarget(1), samples=4, seed=12).map
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-10)
    assert not torch.allclose(a, c)


def test_smoothgrad_over_gradcampp_is_the_mean_of_gradcampp(net_and_input):
    net, x = net_and_input
    ours = get_method("smoothgrad").fn(
        net, x, ClassTarget(1), base="gradcampp", samples=3, stdev=0.2, seed=2, base_params={"layer": LAYER}
    )
    gen = torch.Generator().manual_seed(2)
    ref = torch.zeros(x.shape[2:])
    for _ in range(3):
        noisy = x + torch.normal(0.0, 0.2, size=tuple(x.shape[1:]), generator=gen)
        ref += get_method("gradcampp").fn(net, noisy, ClassTarget(1), layer=LAYER).map / 3
    torch.testing.assert_close(ours.map, ref, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("cls", [0, 1])
def test_gradcampp_matches_monai(net_and_input, cls):
    from monai.visualize import GradCAMpp

    net, x = net_and_input
    ours = get_method("gradcampp").fn(net, x, ClassTarget(cls), layer=LAYER).map
    ref = GradCAMpp(nn_module=net, target_layers=LAYER, postprocessing=lambda m: m)(x, class_idx=cls)
    assert corr(ours, ref[0, 0].detach()) >= 0.99


def test_guided_backprop_equals_captum_and_carries_a_warning(net_and_input):
    from captum.attr import GuidedBackprop

    net, x = net_and_input
    spec = get_method("guided_backprop")
    ours = spec.fn(net, x, ClassTarget(1))
    ref = GuidedBackprop(net).attribute(x.clone(), target=1)[0].sum(0).detach()
    torch.testing.assert_close(ours.map, ref, rtol=1e-5, atol=1e-9)
    assert "sanity check" in spec.warning and ours.info["warning"] == spec.warning
    assert all(type(m).__name__ != "GuidedReLU" for m in net.modules())


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("saliency", {}),
        ("ig", {"steps": 4}),
        ("smoothgrad", {"samples": 3, "seed": 1}),
        ("occlusion", {"window": 4, "stride": 4}),
        ("gradcampp", {"layer": "conv:-1"}),
    ],
)
def test_torchscript_models_give_the_eager_maps(name, params):
    from tinynets import BlobClassifier

    eager = BlobClassifier().eval()
    scripted = torch.jit.script(eager)
    x = torch.randn(1, 1, 12, 12, 12)
    x[..., 4:8, 4:8, 4:8] += 3.0
    got = get_method(name).fn(scripted, x, ClassTarget(0), **params).map
    eager_params = {**params, "layer": "conv2"} if "layer" in params else params
    ref = get_method(name).fn(eager, x, ClassTarget(0), **eager_params).map
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)


def test_guided_backprop_refuses_a_network_without_relu_modules():
    from tinynets import BlobClassifier
    from XAIMedSlicerLib.errors import XAIError

    with pytest.raises(XAIError, match="no nn.ReLU"):
        get_method("guided_backprop").fn(BlobClassifier().eval(), torch.randn(1, 1, 8, 8, 8), ClassTarget(0))
