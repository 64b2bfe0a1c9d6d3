"""Cascading randomisation separates a gradient method from guided backpropagation on a real network.

Adebayo et al. (2018) found that guided backpropagation barely changes when a trained network's
layers are re-initialised from the top down, while the plain gradient does. Here the real pretrained
MeshNet (brainchop, 21 channels, 18 subcortical classes) explains the thalamus region of its own
prediction on a 32^3 crop of the real T1 scan.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from XAIMedSlicerLib.io.volumes import read_volume
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.targets import RegionTarget
from XAIMedSlicerLib.metrics import cascading_randomisation
from XAIMedSlicerLib.metrics.reference_methods import guided_backprop

saliency = get_method("saliency").fn

THALAMUS = 7  # "Thalamus" in models/meshnet/model18cls/colormap.json
CROP = 32


def load_meshnet(folder) -> nn.Module:
    """The project's loader when present, else the plain stack the data README describes."""
    try:
        from XAIMedSlicerLib.model import load_model

        return load_model(folder, device="cpu").network.eval()
    except ImportError:
        config = json.loads((folder / "model.json").read_text())
        layers: list[nn.Module] = []
        for n, spec in enumerate(config["layers"]):
            layers.append(
                nn.Conv3d(
                    spec["in_channels"],
                    spec["out_channels"],
                    spec["kernel_size"],
                    padding=spec["padding"],
                    dilation=spec["dilation"],
                )
            )
            if n < len(config["layers"]) - 1:
                layers.append(nn.ELU() if config.get("elu") else nn.ReLU())
        net = nn.Sequential(*layers)
        weights = load_file(str(folder / "model.pth"))
        net.load_state_dict({k.removeprefix("model."): v for k, v in weights.items()})
        return net.eval()


def brain_crop(shared_data, label_file: str, label: int, size: int = CROP):
    """Input (1, 1, X, Y, Z) scaled by the 99.9th percentile, and the label's region, around its centroid."""
    t1 = read_volume(shared_data("brain/t1_crop.nii.gz"))
    labels = read_volume(shared_data(f"brain/{label_file}"))
    assert t1.same_grid(labels)
    centre = np.round(np.argwhere(labels.array == label).mean(axis=0)).astype(int)
    box = tuple(slice(c - size // 2, c + size // 2) for c in centre)
    scale = float(np.percentile(t1.array, 99.9))
    image = np.clip(t1.array[box].astype(np.float32) / scale, 0, 1)
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 1, 0)))[None, None]  # [k,j,i] -> (i,j,k)
    region = torch.from_numpy(np.ascontiguousarray(labels.array[box].transpose(2, 1, 0) == label))
    return x, region


@pytest.fixture(scope="module")
def thalamus_case(shared_data):
    torch.set_num_threads(2)
    net = load_meshnet(shared_data("models/meshnet/model18cls"))
    x, region = brain_crop(shared_data, "t1_crop_subcortical18_pred_model18cls.nii.gz", THALAMUS)
    assert region.sum() > 1000
    return net, x, RegionTarget(THALAMUS, region, name="Thalamus")


def test_randomisation_separates_gradient_from_guided_backprop(thalamus_case):
    net, x, target = thalamus_case
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grad = cascading_randomisation(net, x, target, saliency, method="saliency")
    guided = cascading_randomisation(net, x, target, guided_backprop, method="guided_backprop")
    convs = [name for name, m in net.named_modules() if isinstance(m, nn.Conv3d)]
    assert [s.layer for s in grad.layers] == convs[::-1]  # top (classifier) down to the first conv
    print(json.dumps({r.method: [round(s.spearman, 3) for s in r.layers] for r in (grad, guided)}))
    assert grad.passed and not guided.passed
    assert guided.mean_spearman > grad.mean_spearman + 0.2
    # the top layer alone hardly changes guided backprop but already changes the gradient
    assert guided.layers[0].spearman > 0.9 > grad.layers[0].spearman
    assert guided.mean_ssim > grad.mean_ssim
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])  # randomisation ran on a deep copy
    assert json.loads(grad.to_json())["passed"] is True
    assert "passes randomisation check" in grad.flag() and "FAILS" in guided.flag()


def test_guided_backprop_equals_captum_on_relu_meshnet(shared_data):
    from captum.attr import GuidedBackprop

    net = load_meshnet(shared_data("models/meshnet/model5_gw_ae"))
    x, region = brain_crop(shared_data, "t1_crop_tissue3_pred_model5_gw_ae.nii.gz", 1, size=16)
    target = RegionTarget(1, region)

    class Scored(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, inp):
            return target(self.net(inp))[:, None]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum announces its ReLU hooks
        ref = GuidedBackprop(Scored()).attribute(x.clone(), target=0)[0, 0]
    ours = guided_backprop(net, x, target).map
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(ours, saliency(net, x, target).map)
