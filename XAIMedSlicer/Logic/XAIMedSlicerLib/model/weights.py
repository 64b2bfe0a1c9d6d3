"""Loading weights (safetensors or torch state dicts) with clear errors and a content hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from ..errors import XAIError


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file or, for a folder, of its files in sorted order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a safetensors file (whatever its suffix) or a torch checkpoint."""
    if not path.exists():
        raise XAIError(f"weights file not found: {path}", "check the 'weights' entry of the model card")
    with open(path, "rb") as fh:
        head = fh.read(8)
    is_zip = head[:2] == b"PK"
    if not is_zip and len(head) == 8:
        try:
            from safetensors.torch import load_file

            return load_file(str(path))
        except Exception:  # noqa: BLE001 - not safetensors: try torch below
            pass
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise XAIError(
            f"cannot read weights {path.name} ({type(exc).__name__})",
            "give a safetensors file or a torch state dict",
        ) from None
    for key in ("state_dict", "model", "network"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise XAIError(
            f"{path.name} holds no state dict", "save the weights with torch.save(model.state_dict(), ...)"
        )
    return obj


def load_weights(network: nn.Module, path: Path, prefix: str = "") -> None:
    """Load a state dict strictly, with a one-line error naming the first mismatches."""
    state = read_state_dict(path)
    if prefix:
        state = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            k = shapes[0]
            parts.append(
                f"{len(shapes)} shape mismatches (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})"
            )
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise XAIError(
            f"weights {path.name} do not fit the network: {'; '.join(parts)}",
            "check network name/args and weights_key_prefix in the model card",
        )
    network.load_state_dict(state, strict=True)
