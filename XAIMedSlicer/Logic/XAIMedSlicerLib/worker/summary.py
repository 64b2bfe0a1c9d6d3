"""What the GUI shows about a model before any worker runs: its kind, task and class names.

Reads only small files (card JSON, MeshNet ``model.json``/``colormap*.json``, bundle metadata), so that
3D Slicer never imports PyTorch just to fill a combo box.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from ..errors import XAIError


def model_summary(path: str | os.PathLike) -> dict:
    """``{"kind", "task", "classes", "name"}`` of a model path; raises XAIError for what is no model."""
    path = Path(path)
    if not path.exists():
        raise XAIError(
            f"model not found: {path}", "give a model card (.json), a bundle folder or a TorchScript file"
        )
    if path.is_dir():
        if (path / "model.json").is_file() and (path / "model.pth").is_file():
            return _meshnet(path)
        if (path / "configs").is_dir() and (path / "models").is_dir():
            return _bundle(path)
        raise XAIError(
            f"{path} is a folder but neither a MONAI bundle nor a MeshNet model", "choose a model folder"
        )
    if path.suffix.lower() == ".json":
        from ..model.card import ModelCard

        card = ModelCard.read(path)
        return {"kind": "card", "task": card.task, "classes": list(card.classes), "name": card.name}
    if zipfile.is_zipfile(path):
        return {"kind": "torchscript", "task": "auto", "classes": [], "name": path.stem}
    raise XAIError(f"{path.name} is not a model card, bundle or TorchScript file", "choose another file")


def _meshnet(folder: Path) -> dict:
    config = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    n_classes = int(config["layers"][-1]["out_channels"])
    classes = [f"class {i}" for i in range(n_classes)]
    for colormap in sorted(folder.glob("colormap*.json")):
        labels = json.loads(colormap.read_text(encoding="utf-8")).get("labels", [])
        if len(labels) == n_classes:
            classes = [str(n) for n in labels]
            break
    return {"kind": "meshnet", "task": "segmentation", "classes": classes, "name": folder.name}


def _bundle(folder: Path) -> dict:
    meta_path = folder / "configs" / "metadata.json"
    classes: list[str] = []
    task = "auto"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        outputs = (meta.get("network_data_format") or {}).get("outputs", {}).get("pred", {})
        channels = outputs.get("channel_def") or {}
        classes = [str(channels[k]) for k in sorted(channels, key=lambda k: int(k))] if channels else []
        task = "segmentation" if outputs.get("type") == "image" else "classification" if outputs else "auto"
    return {"kind": "bundle", "task": task, "classes": classes, "name": folder.name}
