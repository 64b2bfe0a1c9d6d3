"""Every registered method on 2D networks through the slice adapter, and the maps equal Captum's / MONAI's
on the same 2D network (the resize inside the graph included) to 1e-5."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explain import explain
from XAIMedSlicerLib.io.radiograph import read_radiograph
from XAIMedSlicerLib.methods import available_methods, get_method
from XAIMedSlicerLib.methods.targets import ClassTarget
from XAIMedSlicerLib.model.loader import load_model
from XAIMedSlicerLib.model.slice2d import SliceAdapter, resize_2d
from XAIMedSlicerLib.model.weights import sha256_of
from XAIMedSlicerLib.model.xrv import import_xrv

torch.set_num_threads(1)
ATTENTION = ("attention_rollout", "attention_relevance")
XRV_ARGS = {"growth_rate": 8, "block_config": [2, 2], "num_init_features": 16, "num_classes": 3}
INPUT_SIZE = (48, 40)  # rows, columns of the 2D network input
LAYER = "features.denseblock2"
# small settings so that every method runs in about a second on a 128 x 128 radiograph grid
FAST = {
    "ig": {"steps": 8},
    "smoothgrad": {"samples": 3},
    "occlusion": {"window": [16, 16, 1], "stride": [16, 16, 1]},
}


def _xrv_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = import_xrv().models.DenseNet(**XRV_ARGS)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    for m in net.modules():  # the loader does the same (guided backprop and hooks need it)
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return net.eval()


class Composite(nn.Module):
    """The reference: the same 2D network on (B, C, rows, columns), after the same resize."""

    def __init__(self, net: nn.Module, size) -> None:
        super().__init__()
        self.net, self.size = net, size

    def forward(self, x2):
        return self.net(resize_2d(x2, self.size))


def _card(tmp_path, network, weights, **extra):
    card = {
        "format": "xaimed-model-card/1",
        "name": "cxr-methods",
        "classes": ["a", "b", "c"],
        "network": network,
        "weights": weights,
        "sha256": sha256_of(tmp_path / weights),
        "preprocessing": {"spacing": [4.0, 4.0], "intensity": {"type": "zscore"}},
        **extra,
    }
    path = tmp_path / f"{weights}.json"
    path.write_text(json.dumps(card))
    return path


@pytest.fixture(scope="module")
def xrv_card(tmp_path_factory):
    from safetensors.torch import save_file

    tmp = tmp_path_factory.mktemp("xrv")
    save_file({k: v.contiguous() for k, v in _xrv_net().state_dict().items()}, str(tmp / "xrv.safetensors"))
    return _card(
        tmp, {"name": "xrv.DenseNet", "args": XRV_ARGS}, "xrv.safetensors", input_size=list(INPUT_SIZE)
    )


@pytest.fixture(scope="module")
def vit_card(tmp_path_factory):
    from monai.networks.nets import ViT
    from safetensors.torch import save_file

    args = {"in_channels": 1, "img_size": [32, 32], "patch_size": [8, 8], "hidden_size": 32}
    args.update({"mlp_dim": 64, "num_layers": 2, "num_heads": 4, "classification": True, "num_classes": 3})
    args.update({"spatial_dims": 2})
    torch.manual_seed(4)
    net = ViT(**args).eval()
    tmp = tmp_path_factory.mktemp("vit")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / "vit.safetensors"))
    return _card(tmp, {"name": "ViT", "args": args}, "vit.safetensors", input_size=[32, 32])


@pytest.fixture(scope="module")
def radiograph(shared_data):
    return read_radiograph(shared_data("cxr/00000001_000.png"))[0]  # 512 x 512 at 1 mm -> 128 x 128 grid


def _explain_all(radiograph, loaded, methods):
    for method in methods:
        expl = explain(radiograph, loaded, method, "b", method_params=FAST.get(method), device="cpu")
        attr = expl.attribution
        assert attr.same_grid(radiograph), method
        arr = np.asarray(attr.array)
        assert arr.shape == (1, 512, 512) and np.isfinite(arr).all(), method
        assert float(np.abs(arr).max()) > 0, method
        assert expl.signed == get_method(method).signed, method
        assert expl.provenance["preprocessing"]["model_grid"]["size"][2] == 1, method


def test_every_registered_method_runs_in_2d(xrv_card, radiograph):
    model = load_model(xrv_card, device="cpu")
    methods = [m for m in available_methods() if m not in ATTENTION]
    assert {"gradcam", "gradcampp", "saliency", "ig", "smoothgrad", "occlusion"} <= set(methods)
    _explain_all(radiograph, model, methods)
    # attention maps need attention: on the CNN they are a one-line error
    for method in ATTENTION:
        with pytest.raises(XAIError) as err:
            explain(radiograph, model, method, "b", device="cpu")
        assert "\n" not in str(err.value)


def test_attention_methods_on_a_2d_vit(vit_card, radiograph):
    _explain_all(radiograph, load_model(vit_card, device="cpu"), ATTENTION)


@pytest.fixture(scope="module")
def pair():
    """The adapted network on a one-slice input and the reference on the same image as rows x columns."""
    net = _xrv_net(seed=5)
    adapted = SliceAdapter(net, LAYER, INPUT_SIZE).eval()
    torch.manual_seed(6)
    x = torch.randn(1, 1, 72, 60, 1)  # X = 72 columns, Y = 60 rows
    x[:, :, 30:44, 20:30] += 2.0
    return adapted, Composite(net, INPUT_SIZE).eval(), x, x[..., 0].transpose(-1, -2).contiguous()


def _as_rows_columns(ours: torch.Tensor) -> np.ndarray:
    return ours[..., 0].T.numpy()


def _close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    assert float(np.abs(ref).max()) > 0
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


@pytest.mark.parametrize("cls", [0, 2])
def test_saliency_equals_captum(pair, cls):
    from captum.attr import Saliency

    adapted, ref_net, x, x2 = pair
    ours = get_method("saliency").fn(adapted, x, ClassTarget(cls)).map
    ref = Saliency(ref_net).attribute(x2.clone().requires_grad_(True), target=cls, abs=True)
    _close(_as_rows_columns(ours), ref[0, 0].detach().numpy())


def test_input_x_gradient_equals_captum(pair):
    from captum.attr import InputXGradient

    adapted, ref_net, x, x2 = pair
    ours = get_method("input_x_gradient").fn(adapted, x, ClassTarget(1)).map
    ref = InputXGradient(ref_net).attribute(x2.clone().requires_grad_(True), target=1)
    _close(_as_rows_columns(ours), ref[0, 0].detach().numpy())


def test_ig_equals_captum(pair):
    from captum.attr import IntegratedGradients

    adapted, ref_net, x, x2 = pair
    ours = get_method("ig").fn(adapted, x, ClassTarget(1), steps=10, rule="gausslegendre", batch_size=5).map
    ref = IntegratedGradients(ref_net).attribute(
        x2, baselines=torch.zeros_like(x2), target=1, n_steps=10, method="gausslegendre"
    )
    _close(_as_rows_columns(ours), ref[0, 0].detach().numpy())


@pytest.mark.parametrize("cls", [0, 1])
def test_gradcam_equals_monai(pair, cls):
    from monai.visualize import GradCAM

    adapted, ref_net, x, x2 = pair
    ours = get_method("gradcam").fn(adapted, x, ClassTarget(cls), layer=SliceAdapter.TAP).map
    ref = GradCAM(nn_module=ref_net, target_layers=f"net.{LAYER}", postprocessing=lambda m: m)
    _close(_as_rows_columns(ours), ref(x2, class_idx=cls)[0, 0].detach().numpy())


def test_gradcam_equals_captum_layer_gradcam(pair):
    from captum.attr import LayerAttribution, LayerGradCam

    adapted, ref_net, x, x2 = pair
    ours = get_method("gradcam").fn(adapted, x, ClassTarget(1), layer=SliceAdapter.TAP).map
    layer = dict(ref_net.named_modules())[f"net.{LAYER}"]
    cam = LayerGradCam(ref_net, layer).attribute(x2, target=1, relu_attributions=True)
    ref = LayerAttribution.interpolate(cam, tuple(x2.shape[2:]), interpolate_mode="bilinear")
    _close(_as_rows_columns(ours), ref[0, 0].detach().numpy())


def test_guided_backprop_equals_captum(pair):
    from captum.attr import GuidedBackprop

    adapted, ref_net, x, x2 = pair
    ours = get_method("guided_backprop").fn(adapted, x, ClassTarget(1)).map
    ref = GuidedBackprop(ref_net).attribute(x2.clone().requires_grad_(True), target=1)
    _close(_as_rows_columns(ours), ref[0, 0].detach().numpy())


def test_gradcampp_proportional_to_monai(pair):
    """Ours is MONAI's GradCAMpp without its exp(score) factor, which only scales the map."""
    from monai.visualize import GradCAMpp

    adapted, ref_net, x, x2 = pair
    ours = _as_rows_columns(
        get_method("gradcampp").fn(adapted, x, ClassTarget(0), layer=SliceAdapter.TAP).map
    )
    ref = GradCAMpp(nn_module=ref_net, target_layers=f"net.{LAYER}", postprocessing=lambda m: m)
    ref = ref(x2, class_idx=0)[0, 0].detach().numpy()
    _close(ours / ours.max(), ref / ref.max())


def test_occlusion_equals_captum(pair):
    from captum.attr import Occlusion

    adapted, ref_net, x, x2 = pair
    ours = get_method("occlusion").fn(adapted, x, ClassTarget(1), window=[12, 10, 1], stride=[6, 5, 1]).map
    ref = Occlusion(ref_net).attribute(
        x2, sliding_window_shapes=(1, 10, 12), strides=(1, 5, 6), baselines=0.0, target=1
    )
    _close(_as_rows_columns(ours), ref[0, 0].detach().numpy())


def test_occlusion_window_on_a_one_slice_axis_is_one_voxel(pair):
    """The default window (one number) fits a radiograph: the one-slice axis gets a one-voxel box."""
    adapted, _ref_net, x, _x2 = pair
    occlusion = get_method("occlusion").fn
    plain = occlusion(adapted, x, ClassTarget(1), window=12, stride=6)
    explicit = occlusion(adapted, x, ClassTarget(1), window=[12, 12, 1], stride=[6, 6, 1])
    np.testing.assert_array_equal(plain.map.numpy(), explicit.map.numpy())
    assert plain.params["window"] == [12, 12, 1]
