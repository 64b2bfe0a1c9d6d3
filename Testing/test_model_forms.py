"""The three model forms (card, MONAI bundle, TorchScript) load the same network and explain alike."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tinynets import small_densenet
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explain import explain
from XAIMedSlicerLib.model.loader import load_model

ARGS = {
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 2,
    "init_features": 8,
    "growth_rate": 4,
    "block_config": [2, 2],
}


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forms")
    net = small_densenet(seed=4)
    save_file(net.state_dict(), str(tmp / "w.safetensors"))
    torch.save(net.state_dict(), tmp / "w.pt")
    pre = {"orientation": "RAS", "spacing": [2.0, 2.0, 2.0], "intensity": {"type": "zscore"}}
    card = {"name": "dense", "task": "classification", "classes": ["normal", "lesion"],
            "network": {"name": "DenseNet", "args": ARGS}, "weights": "w.safetensors", "preprocessing": pre}  # fmt: skip
    (tmp / "card.json").write_text(json.dumps(card))
    (tmp / "card_pt.json").write_text(json.dumps({**card, "weights": "w.pt"}))
    # a MONAI bundle with a state dict, and one with TorchScript only
    for name, ts in (("bundle_pt", False), ("bundle_ts", True)):
        (tmp / name / "configs").mkdir(parents=True)
        (tmp / name / "models").mkdir()
        inference = {
            "network_def": {"_target_": "DenseNet", **ARGS},
            "preprocessing": {"_target_": "Compose", "transforms": [
                {"_target_": "LoadImaged", "keys": "image"},
                {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                {"_target_": "Spacingd", "keys": "image", "pixdim": [2.0, 2.0, 2.0]},
                {"_target_": "NormalizeIntensityd", "keys": "image"}]},
        }  # fmt: skip
        meta = {
            "name": name,
            "network_data_format": {
                "outputs": {"pred": {"type": "probabilities", "channel_def": {"0": "normal", "1": "lesion"}}}
            },
        }
        (tmp / name / "configs" / "inference.json").write_text(json.dumps(inference))
        (tmp / name / "configs" / "metadata.json").write_text(json.dumps(meta))
        if ts:
            torch.jit.script(net).save(str(tmp / name / "models" / "model.ts"))
        else:
            torch.save(net.state_dict(), tmp / name / "models" / "model.pt")
    torch.jit.script(net).save(str(tmp / "net.ts"))
    return tmp, net


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    from XAIMedSlicerLib.geometry.volume import Volume

    rng = np.random.default_rng(5)
    arr = rng.normal(0, 1, (20, 34, 30)).astype(np.float32)
    arr[8:13, 12:20, 10:16] += 3
    direction = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)  # permuted axes
    return Volume(arr, (1.0, 1.2, 2.0), (10.0, -20.0, 5.0), direction)


def test_card_bundle_and_torchscript_agree(forms, scan):
    tmp, net = forms
    results = {}
    for name in ("card.json", "card_pt.json", "bundle_pt", "bundle_ts"):
        model = load_model(tmp / name, device="cpu")
        assert model.card.classes == ["normal", "lesion"]
        assert model.card.preprocessing.spacing == (2.0, 2.0, 2.0)
        assert model.card.preprocessing.orientation == "RAS"
        results[name] = explain(scan, model, "gradcam", target="lesion", method_params={"layer": None})
    ref = results["card.json"]
    for name, expl in results.items():
        assert expl.attribution.same_grid(scan)
        np.testing.assert_allclose(expl.prediction["logits"], ref.prediction["logits"], rtol=1e-5, atol=1e-6)
        assert np.corrcoef(expl.attribution.array.ravel(), ref.attribution.array.ravel())[0, 1] > 0.999, name
    # the TorchScript file alone: defaults (no resampling, z-score) and the last convolution
    ts = explain(scan, tmp / "net.ts", "gradcam", target=1)
    assert ts.provenance["preprocessing"]["transforms"] == ["NormalizeIntensity"]
    assert ts.provenance["method"]["params"]["layer"] == "conv:-1"
    assert ts.provenance["model"]["task"] == "classification"


def test_weights_hash_is_checked(forms, tmp_path):
    tmp, _ = forms
    card = json.loads((tmp / "card.json").read_text())
    card["weights"] = str(tmp / "w.safetensors")
    card["sha256"] = "0" * 64
    (tmp_path / "bad.json").write_text(json.dumps(card))
    with pytest.raises(XAIError, match="sha256"):
        load_model(tmp_path / "bad.json")


def test_unknown_target_class(forms, scan):
    tmp, _ = forms
    with pytest.raises(XAIError, match="unknown target class 'tumour'"):
        explain(scan, tmp / "card.json", "gradcam", target="tumour")
