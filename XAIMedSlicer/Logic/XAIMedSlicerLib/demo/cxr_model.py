"""The demo chest X-ray classifier: its MONAI 2D network, preprocessing, model card and committed files."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..model.slice2d import SliceAdapter
from .cxr_cases import CLASSES

ASSETS = Path(__file__).resolve().parent / "assets"
CARD_NAME = "demo_cxr_classifier.json"
WEIGHTS_NAME = "demo_cxr_classifier.safetensors"
ACCURACY_NAME = "demo_cxr_classifier_accuracy.json"
CARD_PATH = ASSETS / CARD_NAME
INPUT_SIZE = (64, 64)  # the adapter resizes any radiograph to this inside the graph

# A tiny 2D DenseNet (10k parameters): 7x7 stride-2 stem and max-pool (64 -> 16), two dense blocks with a
# transition (-> 8 x 8 cells of 8 input pixels), then global average pooling.
NETWORK = {
    "name": "DenseNet",
    "args": {
        "spatial_dims": 2,
        "in_channels": 1,
        "out_channels": len(CLASSES),
        "init_features": 8,
        "growth_rate": 8,
        "block_config": [3, 3],
        "bn_size": 2,
        "act": ["relu", {"inplace": False}],
    },
}
GRADCAM_LAYER = "class_layers.relu"  # the final 8 x 8 feature map, before global average pooling
PREPROCESSING = {
    "intensity": {"type": "percentile", "lower": 0.5, "upper": 99.5, "b_min": 0.0, "b_max": 1.0, "clip": True}
}


def build_network() -> nn.Module:
    """The plain MONAI network of the card (random weights)."""
    from ..model.networks import build_network as build

    return build(NETWORK)


def adapted(net: nn.Module) -> SliceAdapter:
    """The network as the pipeline runs it on one-slice volumes."""
    return SliceAdapter(net, GRADCAM_LAYER, INPUT_SIZE)


def model_card(sha256: str, training: dict) -> dict:
    return {
        "format": "xaimed-model-card/1",
        "name": "demo-cxr-classifier",
        "task": "classification",
        "classes": CLASSES,
        "network": NETWORK,
        "spatial_dims": 2,
        "input_size": list(INPUT_SIZE),
        "weights": WEIGHTS_NAME,
        "sha256": sha256,
        "preprocessing": PREPROCESSING,
        "gradcam_layer": GRADCAM_LAYER,
        "training": training,
    }


def read_accuracy(folder: Path = ASSETS) -> dict:
    """The held-aside accuracy written by the training script."""
    return json.loads((folder / ACCURACY_NAME).read_text(encoding="utf-8"))


@torch.no_grad()
def predict(model: nn.Module, xs: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Predicted class of each input ``(N, 1, X, Y, 1)``."""
    model.eval()
    return torch.cat([model(xs[i : i + batch].float()).argmax(1) for i in range(0, len(xs), batch)])
