"""Build a network by name: any class of ``monai.networks.nets``, or MeshNet."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..errors import XAIError
from .meshnet import MeshNet


def build_network(spec: dict, base: Path | None = None) -> nn.Module:
    """Instantiate ``spec = {"name": ..., "args": {...}}``."""
    import monai.networks.nets as nets

    name = spec["name"]
    args = dict(spec.get("args") or {})
    if name == "MeshNet":
        config = args.get("config")
        if config is None:
            raise XAIError("MeshNet needs 'config' (the brainchop model.json)", "add it to network.args")
        path = Path(config)
        if not path.is_absolute() and base is not None:
            path = base / path
        return MeshNet.from_config(path)
    cls = getattr(nets, name, None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise XAIError(
            f"unknown network '{name}'",
            "use a class name from monai.networks.nets (e.g. DenseNet121) or MeshNet",
        )
    try:
        return cls(**args)
    except TypeError as exc:
        raise XAIError(
            f"network {name} rejected its arguments ({exc})", "fix network.args in the model card"
        ) from None
