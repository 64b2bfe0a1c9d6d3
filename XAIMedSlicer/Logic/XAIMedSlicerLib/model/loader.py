"""One entry point for the three model forms: card (JSON), MONAI bundle folder, TorchScript file."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import XAIError
from .bundle import is_bundle, load_bundle
from .card import ModelCard, Preprocessing
from .device import choose_device
from .meshnet import meshnet_card
from .networks import build_network
from .slice2d import SliceAdapter
from .weights import load_weights, sha256_of
from .xrv import build_xrv, is_xrv


@dataclass
class LoadedModel:
    """A network in eval mode on its device, with its card and the hash of what was loaded."""

    network: nn.Module
    card: ModelCard
    kind: str  # "card", "bundle", "torchscript" or "meshnet"
    path: Path
    sha256: str
    device: torch.device

    def to(self, device: torch.device) -> LoadedModel:
        """Move the network (used for the CPU fallback after a GPU out-of-memory)."""
        self.network = self.network.to(device)
        self.device = device
        return self


def load_model(path: str | Path, device: str = "auto") -> LoadedModel:
    """Load ``path`` (card ``.json``, bundle folder, TorchScript file or brainchop MeshNet folder)."""
    path = Path(path)
    if not path.exists():
        raise XAIError(
            f"model not found: {path}",
            "give a model card (.json), a MONAI bundle folder or a TorchScript file",
        )
    dev = choose_device(device)
    if path.is_dir():
        if is_bundle(path):
            network, card = load_bundle(path)
            kind = "bundle"
            digest = sha256_of(path / "models")
        elif (path / "model.json").exists() and (path / "model.pth").exists():
            card = ModelCard.from_dict(meshnet_card(path), base=path)
            network = build_network(card.network, base=path)
            load_weights(network, card.weights, card.weights_key_prefix)
            kind, digest = "meshnet", sha256_of(card.weights)
        else:
            raise XAIError(
                f"{path} is a folder but not a MONAI bundle", "it needs configs/inference.json and models/"
            )
    elif path.suffix.lower() == ".json":
        card = ModelCard.read(path)
        network = _build_card_network(card, path)
        if card.weights is None:
            raise XAIError(
                f"model card {path.name} names no weights file", 'add "weights": "file.safetensors"'
            )
        if not card.weights.exists():
            raise XAIError(
                f"weights file not found: {card.weights}", "give the local weights file the card names"
            )
        digest = sha256_of(card.weights)
        if card.sha256 and card.sha256 != digest:
            raise XAIError(
                f"weights {card.weights.name} do not match the card's sha256",
                "re-download the weights or update the card",
            )
        if not isinstance(network, torch.jit.ScriptModule):
            load_weights(network, card.weights, card.weights_key_prefix)
        if card.spatial_dims == 2:
            network = SliceAdapter(network, card.gradcam_layer, card.input_size)
            card.gradcam_layer = SliceAdapter.TAP
        kind = "card"
    elif _is_torchscript(path):
        try:
            network = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001
            raise XAIError(
                f"cannot load TorchScript {path.name} ({type(exc).__name__})", "save it with torch.jit.save"
            ) from None
        card = ModelCard(
            name=path.stem,
            task="auto",
            classes=[],
            network={"name": "torchscript", "args": {}},
            weights=path,
            preprocessing=Preprocessing(intensity={"type": "zscore"}),
            gradcam_layer="conv:-1",
        )
        kind, digest = "torchscript", sha256_of(path)
    else:
        raise XAIError(
            f"{path.name} is not a model card, bundle or TorchScript file",
            "give a .json card, a bundle folder or a .ts/.pt TorchScript file",
        )
    card.path = path
    network = network.to(dev).eval()
    for param in network.parameters():
        param.requires_grad_(False)
    return LoadedModel(network, card, kind, path, digest, dev)


def _build_card_network(card: ModelCard, path: Path) -> nn.Module:
    """A card's network: MONAI/MeshNet by name, torchxrayvision (``xrv.*``) or a TorchScript file."""
    if is_xrv(card.network):
        return build_xrv(card.network)
    if card.network.get("name") == "torchscript":
        if card.weights is None or not card.weights.exists():
            raise XAIError(
                f"TorchScript file of card {path.name} not found: {card.weights}", "fix the card's weights"
            )
        return torch.jit.load(str(card.weights), map_location="cpu")
    return build_network(card.network, base=path.parent)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any("/code/" in n for n in names)
