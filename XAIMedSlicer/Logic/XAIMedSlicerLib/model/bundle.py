"""MONAI bundles: ``configs/inference.json`` plus ``models/model.pt`` (state dict) or ``model.ts``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..errors import XAIError
from .card import ModelCard, Preprocessing
from .weights import load_weights


def is_bundle(path: Path) -> bool:
    """True for a folder holding a MONAI bundle inference config."""
    return path.is_dir() and (path / "configs" / "inference.json").exists()


def load_bundle(path: Path) -> tuple[nn.Module, ModelCard]:
    """The bundle's network with its weights, and a card derived from its configs and metadata."""
    from monai.bundle import ConfigParser

    config_file = path / "configs" / "inference.json"
    parser = ConfigParser()
    try:
        parser.read_config(str(config_file))
    except Exception as exc:  # noqa: BLE001
        raise XAIError(
            f"cannot read {config_file} ({type(exc).__name__})", "check the bundle's inference.json"
        ) from None
    parser["bundle_root"] = str(path)
    meta = _read_json(path / "configs" / "metadata.json")
    ts_file = path / "models" / "model.ts"
    pt_file = path / "models" / "model.pt"
    if pt_file.exists() and "network_def" in parser.config:
        try:
            network = parser.get_parsed_content("network_def")
        except Exception as exc:  # noqa: BLE001
            raise XAIError(
                f"bundle network_def cannot be built ({exc})", "check the bundle's inference.json"
            ) from None
        load_weights(network, pt_file)
    elif ts_file.exists():
        network = torch.jit.load(str(ts_file), map_location="cpu")
    else:
        raise XAIError(
            f"bundle {path.name} has neither models/model.pt nor models/model.ts", "add the weights file"
        )
    card = ModelCard(
        name=meta.get("name", path.name),
        task=_task_from_meta(meta),
        classes=_classes_from_meta(meta),
        network={"name": "bundle", "args": {}},
        weights=pt_file if pt_file.exists() else ts_file,
        preprocessing=_preprocessing_from_config(parser.config),
        gradcam_layer=None,
    )
    return network, card


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _output_spec(meta: dict) -> dict:
    outputs = meta.get("network_data_format", {}).get("outputs", {})
    return outputs.get("pred") or (next(iter(outputs.values())) if outputs else {})


def _task_from_meta(meta: dict) -> str:
    kind = str(_output_spec(meta).get("type", "image")).lower()
    return "segmentation" if kind in ("image", "segmentation") else "classification"


def _classes_from_meta(meta: dict) -> list[str]:
    channels = _output_spec(meta).get("channel_def", {})
    return [str(channels[k]) for k in sorted(channels, key=lambda k: int(k))] if channels else []


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _preprocessing_from_config(config: dict) -> Preprocessing:
    """Orientation, spacing and intensity scaling read from the bundle's transform list."""
    pre = Preprocessing(intensity={"type": "none"})
    for node in _walk(config.get("preprocessing", config)):
        target = str(node.get("_target_", "")).split(".")[-1]
        if target in ("Orientationd", "Orientation") and isinstance(node.get("axcodes"), str):
            pre.orientation = node["axcodes"]
        elif target in ("Spacingd", "Spacing") and isinstance(node.get("pixdim"), list):
            pre.spacing = tuple(float(v) for v in node["pixdim"])
        elif target in ("ScaleIntensityRanged", "ScaleIntensityRange"):
            keys = ("a_min", "a_max", "b_min", "b_max")
            if all(isinstance(node.get(k), (int, float)) for k in keys):
                pre.intensity = {
                    "type": "window",
                    "min": node["a_min"],
                    "max": node["a_max"],
                    "b_min": node["b_min"],
                    "b_max": node["b_max"],
                    "clip": bool(node.get("clip", False)),
                }
        elif target in ("NormalizeIntensityd", "NormalizeIntensity"):
            pre.intensity = {"type": "zscore", "nonzero": bool(node.get("nonzero", False))}
    return pre
