"""The demo classifier: its MONAI network, its preprocessing, its model card and committed weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import XAIError
from ..geometry.volume import Volume
from .cases import CLASSES

ASSETS = Path(__file__).resolve().parent / "assets"
CARD_NAME = "demo_lesion_classifier.json"
WEIGHTS_NAME = "demo_lesion_classifier.safetensors"
CARD_PATH = ASSETS / CARD_NAME
CARD_FORMAT = "xaimed-model-card/1"

# A small DenseNet: 7^3 stride-2 stem and max-pool (64^3 -> 16^3), one dense block at 16^3 (12 mm cells,
# which keeps Grad-CAM sharp enough to find lesions of a few mm), then global average pooling.
NETWORK = {
    "name": "DenseNet",
    "args": {
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": len(CLASSES),
        "init_features": 16,
        "growth_rate": 8,
        "block_config": [6],
        "bn_size": 2,
        "act": ["relu", {"inplace": False}],
    },
}
GRADCAM_LAYER = "class_layers.relu"  # the final feature map (16^3), before global average pooling
PREPROCESSING = {
    "orientation": "RAS",
    "spacing": [3.0, 3.0, 3.0],
    "intensity": {
        "type": "percentile",
        "lower": 0.0,
        "upper": 99.9,
        "b_min": 0.0,
        "b_max": 1.0,
        "clip": False,
    },
    "spatial_size": [64, 64, 64],
}


def build_network(spec: dict | None = None) -> nn.Module:
    """Instantiate the class named in ``spec`` (default: the demo network) from monai.networks.nets."""
    import monai.networks.nets as nets

    spec = spec or NETWORK
    cls = getattr(nets, spec["name"], None)
    if cls is None:
        raise XAIError(f"unknown network '{spec['name']}'", "use a class name from monai.networks.nets")
    return cls(**spec["args"])


def model_input(image: Volume, preprocessing: dict | None = None) -> torch.Tensor:
    """The network input (1, 1, X, Y, Z) for ``image``: the package's own MONAI preprocessing pipeline."""
    from ..model.card import Preprocessing
    from ..preprocess.pipeline import prepare_input

    return prepare_input(image, Preprocessing.from_dict(preprocessing or PREPROCESSING)).tensor


def model_card(sha256: str, training: dict) -> dict:
    """The card in the format the package's loader reads (``xaimed-model-card/1``)."""
    return {
        "format": CARD_FORMAT,
        "name": "demo-lesion-classifier",
        "task": "classification",
        "classes": list(CLASSES),
        "network": NETWORK,
        "weights": WEIGHTS_NAME,
        "weights_key_prefix": "",
        "sha256": sha256,
        "preprocessing": PREPROCESSING,
        "gradcam_layer": GRADCAM_LAYER,
        "training": training,
    }


def read_card(path: str | Path = CARD_PATH) -> dict:
    """The card as a dictionary."""
    path = Path(path)
    if not path.exists():
        raise XAIError(
            f"demo model card not found: {path}", "train it with python -m XAIMedSlicerLib.demo.train"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def load_network(card_path: str | Path = CARD_PATH) -> tuple[nn.Module, dict]:
    """The network named by the card with its safetensors weights loaded strictly, in eval mode."""
    from safetensors.torch import load_file

    card = read_card(card_path)
    network = build_network(card["network"])
    state = load_file(str(Path(card_path).parent / card["weights"]))
    network.load_state_dict(state, strict=True)
    return network.eval(), card


@torch.no_grad()
def predict(network: nn.Module, inputs: torch.Tensor, batch: int = 8) -> np.ndarray:
    """Class probabilities (N, classes) for a stack of inputs (N, 1, X, Y, Z)."""
    network.eval()
    out = [torch.softmax(network(inputs[i : i + batch].float()), dim=1) for i in range(0, len(inputs), batch)]
    return torch.cat(out).numpy()
