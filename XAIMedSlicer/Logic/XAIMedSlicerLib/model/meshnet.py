"""MeshNet (Fedorov et al. 2017): dilated 3D convolutions, as shipped by brainchop (model.json)."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from ..errors import XAIError


class MeshNet(nn.Sequential):
    """A stack of 3x3x3 dilated ``Conv3d`` layers and a 1x1x1 classifier, from a brainchop config.

    Module indices match brainchop's ``model.N`` weight keys: conv, activation, conv, activation, ...
    """

    def __init__(self, layers: list[dict], elu: bool = False, bias: bool = True) -> None:
        modules: list[nn.Module] = []
        for n, spec in enumerate(layers):
            modules.append(
                nn.Conv3d(
                    spec["in_channels"],
                    spec["out_channels"],
                    kernel_size=spec["kernel_size"],
                    padding=spec["padding"],
                    stride=spec.get("stride", 1),
                    dilation=spec.get("dilation", 1),
                    bias=bias,
                )
            )
            if n < len(layers) - 1:
                modules.append(nn.ELU() if elu else nn.ReLU())
        super().__init__(*modules)

    @classmethod
    def from_config(cls, config: str | Path | dict) -> MeshNet:
        """Build from a brainchop ``model.json`` path or its parsed dictionary."""
        if not isinstance(config, dict):
            path = Path(config)
            if not path.exists():
                raise XAIError(f"MeshNet config not found: {path}", "point 'config' to the model.json")
            config = json.loads(path.read_text())
        if config.get("bnorm"):
            raise XAIError(
                "MeshNet with batch normalisation is not supported", "use a config with bnorm false"
            )
        return cls(config["layers"], elu=bool(config.get("elu", False)), bias=bool(config.get("bias", True)))


def meshnet_card(folder: str | Path) -> dict:
    """A model-card dictionary for a brainchop MeshNet folder (model.json, model.pth, colormap.json)."""
    folder = Path(folder)
    config = json.loads((folder / "model.json").read_text())
    n_classes = config["layers"][-1]["out_channels"]
    classes = None
    for colormap_file in sorted(folder.glob("colormap*.json")):
        labels = json.loads(colormap_file.read_text()).get("labels", [])
        if len(labels) == n_classes:
            classes = [str(name) for name in labels]
            break
    return {
        "format": "xaimed-model-card/1",
        "name": f"meshnet-{folder.name}",
        "task": "segmentation",
        "classes": classes or [f"class {i}" for i in range(n_classes)],
        "network": {"name": "MeshNet", "args": {"config": str(folder / "model.json")}},
        "weights": str(folder / "model.pth"),
        "weights_key_prefix": "model.",
        "preprocessing": {
            "orientation": None,
            "spacing": None,
            "intensity": {
                "type": "percentile",
                "lower": 0.0,
                "upper": 99.9,
                "b_min": 0.0,
                "b_max": 1.0,
                "clip": True,
            },
        },
        "gradcam_layer": str(2 * (len(config["layers"]) - 2)),
    }
