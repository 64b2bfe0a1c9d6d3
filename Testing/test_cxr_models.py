"""2D networks on radiographs: torchxrayvision's real DenseNet from local weights (sha256-checked), MONAI 2D
networks by card and TorchScript, all run through the slice adapter on one-slice volumes."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.io.radiograph import read_radiograph
from XAIMedSlicerLib.model.loader import load_model
from XAIMedSlicerLib.model.slice2d import SliceAdapter
from XAIMedSlicerLib.model.weights import sha256_of
from XAIMedSlicerLib.model.xrv import build_xrv, import_xrv
from XAIMedSlicerLib.preprocess import prepare_input

torch.set_num_threads(1)
XRV_ARGS = {"growth_rate": 8, "block_config": [2, 2], "num_init_features": 16, "num_classes": 3}
WINDOW = {"type": "window", "min": 0, "max": 255, "b_min": -1024, "b_max": 1024}  # xrv's input range


def _xrv_net(seed: int = 0):
    torch.manual_seed(seed)
    net = import_xrv().models.DenseNet(**XRV_ARGS)
    with torch.no_grad():  # random but non-trivial batch-norm statistics, as trained weights have
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _card(tmp_path, network: dict, weights_name: str, **extra) -> dict:
    card = {
        "format": "xaimed-model-card/1",
        "name": "cxr-test",
        "task": extra.pop("task", "classification"),
        "classes": extra.pop("classes", ["a", "b", "c"]),
        "network": network,
        "weights": weights_name,
        "sha256": sha256_of(tmp_path / weights_name),
        "preprocessing": extra.pop("preprocessing", {"intensity": WINDOW}),
        **extra,
    }
    return card


def _write(tmp_path, card: dict, name: str = "card.json"):
    path = tmp_path / name
    path.write_text(json.dumps(card))
    return path


def _saved_xrv(tmp_path, fmt: str = "safetensors"):
    net = _xrv_net()
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "xrv.safetensors"))
        return net, "xrv.safetensors"
    torch.save(net.state_dict(), tmp_path / "xrv.pt")
    return net, "xrv.pt"


def _rows_columns(model_input) -> torch.Tensor:
    """The network input as the 2D network sees it: (1, C, rows, columns)."""
    return model_input.tensor[..., 0].transpose(-1, -2)


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_xrv_densenet_from_local_weights_matches_direct(shared_data, tmp_path, fmt):
    net, weights = _saved_xrv(tmp_path, fmt)
    card = _card(tmp_path, {"name": "xrv.DenseNet", "args": XRV_ARGS}, weights)
    loaded = load_model(_write(tmp_path, card), device="cpu")
    assert isinstance(loaded.network, SliceAdapter) and type(loaded.network.net).__name__ == "DenseNet"
    assert loaded.card.spatial_dims == 2 and loaded.card.gradcam_layer == SliceAdapter.TAP
    assert loaded.network.layer == "features.denseblock2"
    assert loaded.sha256 == card["sha256"]
    image = read_radiograph(shared_data("cxr/00000001_000.png"))[0]
    model_input = prepare_input(image, loaded.card.preprocessing)
    x2 = _rows_columns(model_input)
    # the 2D network sees the radiograph upright, in xrv's intensity range
    np.testing.assert_allclose(x2[0, 0].numpy(), image.array[0] / 255.0 * 2048 - 1024, atol=1e-3)
    with torch.no_grad():
        got = loaded.network(model_input.tensor)
        want = net(x2)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_xrv_without_torchvision_keeps_it_absent():
    import_xrv()
    if importlib.util.find_spec("torchvision") is None:
        # the placeholders lived only for torchxrayvision's own import
        assert "torchvision" not in sys.modules
        from monai.utils import optional_import

        assert optional_import("torchvision")[1] is False
    with pytest.raises(XAIError) as err:  # ResNet needs torchvision (or downloadable weights)
        build_xrv({"name": "xrv.ResNet", "args": {}})
    assert "\n" not in str(err.value)


def test_xrv_bad_weights_are_one_line_errors(tmp_path):
    _, weights = _saved_xrv(tmp_path)
    card = _card(tmp_path, {"name": "xrv.DenseNet", "args": XRV_ARGS}, weights)
    cases = {
        "weights file not found": {**card, "weights": "missing.safetensors"},
        "do not match the card's sha256": {**card, "sha256": "0" * 64},
        "not downloaded at run time": {
            **card,
            "network": {"name": "xrv.DenseNet", "args": {"weights": "densenet121-res224-all"}},
        },
        "unknown torchxrayvision network": {**card, "network": {"name": "xrv.NoSuchNet"}},
        "do not fit the network": {**card, "network": {"name": "xrv.DenseNet", "args": {"num_classes": 3}}},
        "spatial_dims 4 in the model card": {**card, "spatial_dims": 4},
    }
    for message, broken in cases.items():
        with pytest.raises(XAIError) as err:
            load_model(_write(tmp_path, broken), device="cpu")
        assert message in str(err.value) and "\n" not in str(err.value), message


def test_monai_2d_classifier_by_card_with_input_size(shared_data, tmp_path):
    from monai.networks.nets import DenseNet
    from safetensors.torch import save_file

    args = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "init_features": 8}
    args.update({"growth_rate": 4, "block_config": [2, 2]})
    torch.manual_seed(1)
    net = DenseNet(**args).eval()
    save_file(net.state_dict(), str(tmp_path / "d.safetensors"))
    pre = {"spacing": [2.0, 2.0], "intensity": {"type": "zscore"}}
    card = _card(
        tmp_path, {"name": "DenseNet", "args": args}, "d.safetensors", classes=["x", "y"], preprocessing=pre
    )
    card["input_size"] = [96, 80]
    loaded = load_model(_write(tmp_path, card), device="cpu")
    assert loaded.card.preprocessing.spacing == (2.0, 2.0, 0.0)
    image = read_radiograph(shared_data("cxr/pa_normal_cc0.jpg"), pixel_spacing=0.5)[0]
    model_input = prepare_input(image, loaded.card.preprocessing)
    assert model_input.tensor.shape[-1] == 1 and model_input.grid.array.shape[0] == 1
    np.testing.assert_allclose(model_input.grid.spacing, (2.0, 2.0, 1.0), atol=1e-6)
    # a one-slice CT-like volume keeps its single slice and its thickness
    from XAIMedSlicerLib.geometry.volume import Volume

    thick = Volume(
        np.random.default_rng(0).random((1, 40, 50), np.float32), (0.5, 0.5, 2.5), (0, 0, 0), np.eye(3)
    )
    thick_input = prepare_input(thick, loaded.card.preprocessing)
    assert thick_input.tensor.shape[-1] == 1
    np.testing.assert_allclose(thick_input.grid.spacing, (2.0, 2.0, 2.5), atol=1e-6)
    x2 = _rows_columns(model_input)
    x2 = F.interpolate(x2, size=(96, 80), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        np.testing.assert_allclose(
            loaded.network(model_input.tensor).numpy(), net(x2).numpy(), rtol=1e-5, atol=1e-6
        )


def test_monai_2d_segmenter_output_on_the_input_grid(tmp_path):
    from monai.networks.nets import UNet
    from safetensors.torch import save_file

    args = {"spatial_dims": 2, "in_channels": 1, "out_channels": 3, "channels": [4, 8], "strides": [2]}
    torch.manual_seed(2)
    net = UNet(**args).eval()
    save_file(net.state_dict(), str(tmp_path / "u.safetensors"))
    card = _card(tmp_path, {"name": "UNet", "args": args}, "u.safetensors", task="segmentation")
    loaded = load_model(_write(tmp_path, card), device="cpu")
    x = torch.randn(1, 1, 24, 16, 1)  # X = 24 columns, Y = 16 rows
    with torch.no_grad():
        out = loaded.network(x)
        want = net(x[..., 0].transpose(-1, -2)).transpose(-1, -2)[..., None]
    assert out.shape == (1, 3, 24, 16, 1)
    np.testing.assert_allclose(out.numpy(), want.numpy(), atol=1e-6)
    with pytest.raises(XAIError) as err:
        loaded.network(torch.randn(1, 1, 8, 8, 4))
    assert "one-slice volume" in str(err.value)


def test_torchscript_2d_by_card(tmp_path):
    from XAIMedSlicerLib.methods import get_method
    from XAIMedSlicerLib.methods.targets import ClassTarget

    net = _xrv_net(seed=3)
    torch.jit.trace(net, torch.randn(1, 1, 48, 40)).save(str(tmp_path / "xrv.ts"))  # (rows, columns)
    card = _card(tmp_path, {"name": "torchscript"}, "xrv.ts", spatial_dims=2)
    loaded = load_model(_write(tmp_path, card), device="cpu")
    assert isinstance(loaded.network.net, torch.jit.ScriptModule)
    eager = SliceAdapter(net).eval()
    x = torch.randn(1, 1, 40, 48, 1) * 300
    with torch.no_grad():
        np.testing.assert_allclose(loaded.network(x).numpy(), eager(x).numpy(), rtol=1e-5, atol=1e-5)
    saliency = get_method("saliency").fn
    got = saliency(loaded.network, x, ClassTarget(1)).map
    want = saliency(eager, x, ClassTarget(1)).map
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6 * float(want.abs().max()))
    with pytest.raises(XAIError) as err:
        get_method("gradcam").fn(loaded.network, x, ClassTarget(1), layer=SliceAdapter.TAP)
    assert "TorchScript" in str(err.value) and "\n" not in str(err.value)


def test_bundled_cxr_classifier_reproduces_its_held_aside_accuracy(shared_data):
    from XAIMedSlicerLib.demo.cxr_cases import BASE_FILES, DEMO_BASE, load_base, make_cxr_case
    from XAIMedSlicerLib.demo.cxr_model import CARD_PATH, read_accuracy
    from XAIMedSlicerLib.demo.cxr_run import demo_base
    from XAIMedSlicerLib.demo.cxr_train import HELD_OUT_SEED_BASE

    loaded = load_model(CARD_PATH, device="cpu")  # the card's sha256 is checked on load
    recorded = read_accuracy()
    assert recorded["weights_sha256"] == loaded.sha256
    bases = {name: load_base(shared_data(rel)) for name, rel in BASE_FILES.items() if name != DEMO_BASE}
    bases[DEMO_BASE] = demo_base()
    names, n = list(bases), recorded["held_out_cases"]
    right = []
    with torch.no_grad():  # the held-aside cases, regenerated and run through the pipeline's own path
        for i in range(n):
            name = names[i % len(names)]
            case = make_cxr_case(bases[name], HELD_OUT_SEED_BASE + i, base_name=name)
            x = prepare_input(case.volume(), loaded.card.preprocessing).tensor
            right.append(int(loaded.network(x).argmax(1).item() == case.label))
    # batched (training) and one-by-one (pipeline) passes may round a borderline case differently
    assert abs(np.mean(right) - recorded["held_out_accuracy"]) <= 1.0 / n + 1e-12
    assert recorded["held_out_accuracy"] >= 0.8


def test_cxr_demo_cli_end_to_end(tmp_path):
    from XAIMedSlicerLib.cli import main
    from XAIMedSlicerLib.io.volumes import read_volume

    out = tmp_path / "cxr-demo"
    assert main(["demo", "--cxr", "--seed", "7", "--out", str(out)]) == 0
    report = json.loads((out / "demo.json").read_text())
    image, attribution = read_volume(out / "image.nrrd"), read_volume(out / "attribution.nrrd")
    mask = read_volume(out / "lesion_mask.nrrd")
    assert attribution.same_grid(image) and mask.same_grid(image) and image.array.shape[0] == 1
    k, j, i = np.unravel_index(int(np.argmax(attribution.array)), attribution.array.shape)
    np.testing.assert_allclose(report["peak_ras"], attribution.index_to_ras((i, j, k)), atol=1e-4)
    assert report["peak_in_lesion"] == bool(mask.array[k, j, i])
    explanation = json.loads((out / "explanation.json").read_text())
    assert explanation["target"]["class_name"] == "nodule or opacity"
    assert (out / "report.html").exists()
    # a second run into the same folder is refused (exit 2) and leaves the first run's files as they were
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["demo", "--cxr", "--seed", "8", "--out", str(out)]) == 2
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_cxr_training_script_writes_a_loadable_card(shared_data, tmp_path):
    from XAIMedSlicerLib.demo.cxr_cases import BASE_SIZE, load_base, make_cxr_case
    from XAIMedSlicerLib.demo.cxr_model import ACCURACY_NAME, CARD_NAME, build_network
    from XAIMedSlicerLib.demo.cxr_train import lesion_coverage, main, off_lesion_share

    # the training aid equals a direct computation on a built feature map
    cases = [make_cxr_case(load_base(shared_data("cxr/00000001_000.png")), s, lesion=True) for s in (1, 2)]
    coverage = lesion_coverage(cases, 8)
    direct = np.stack([c.mask.reshape(8, BASE_SIZE // 8, 8, BASE_SIZE // 8).mean((1, 3)) for c in cases])
    np.testing.assert_allclose(coverage.numpy(), direct, atol=1e-6)
    net = build_network()
    feats = torch.rand(2, net.class_layers.out.in_features, 8, 8)
    w = net.class_layers.out.weight.detach().numpy()
    ev = np.maximum(np.einsum("bchw,c->bhw", feats.numpy(), w[1] - w[0]), 0)
    want = np.mean([(e * (c <= 0)).sum() / (e.sum() + 1e-6) for e, c in zip(ev, direct, strict=True)])
    assert float(off_lesion_share(net, feats, coverage)) == pytest.approx(want, rel=1e-5)
    # a short run writes weights, card and accuracy; the card loads with the weights' sha256
    out = tmp_path / "model"
    args = ["--data", str(shared_data("cxr").parent), "--cases", "48", "--held-out", "16", "--epochs", "2"]
    assert main([*args, "--out", str(out)]) == 0
    loaded = load_model(out / CARD_NAME, device="cpu")
    accuracy = json.loads((out / ACCURACY_NAME).read_text())
    assert accuracy["weights_sha256"] == loaded.sha256 == sha256_of(out / loaded.card.weights.name)
    assert accuracy["held_out_cases"] == 16 and 0.0 <= accuracy["held_out_accuracy"] <= 1.0


def test_adapter_net_input_and_map_back():
    net = _xrv_net(seed=7)
    adapter = SliceAdapter(net, input_size=(32, 24)).eval()
    x = torch.randn(1, 1, 50, 40, 1)  # 50 columns, 40 rows
    seen = []
    handle = net.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        adapter(x)
    handle.remove()
    np.testing.assert_array_equal(seen[0].numpy(), adapter.net_input(x).numpy())
    want = F.interpolate(x[..., 0].transpose(-1, -2), size=(32, 24), mode="bilinear", antialias=True)
    np.testing.assert_allclose(seen[0].numpy(), want.numpy(), atol=1e-6)
    # a map on the 2D network's input grid comes back on (X, Y, 1): one hot patch lands where it was
    patches = torch.zeros(4, 3)  # 4 x 3 patches of 8 x 8 on the 32 x 24 input
    patches[1, 2] = 1.0
    back = SliceAdapter.map_to_input(patches, x)
    assert back.shape == (50, 40, 1)
    col, row = np.unravel_index(int(back[..., 0].argmax()), (50, 40))
    assert 2 / 3 * 50 <= col < 50 and 1 / 4 * 40 <= row < 2 / 4 * 40
