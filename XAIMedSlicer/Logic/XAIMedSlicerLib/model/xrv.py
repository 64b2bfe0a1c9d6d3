"""torchxrayvision's chest X-ray architectures, built without downloads, weights from a local file.

torchxrayvision imports torchvision at module level, but its DenseNet (and the other classes built
from plain ``torch.nn``) need nothing from it. PyPI's torchvision wheels are CUDA builds whose
compiled ops do not load beside a CPU-only torch ("operator torchvision::nms does not exist"). When
the real torchvision imports, it is used; otherwise torchxrayvision is imported with placeholder
``torchvision`` modules that raise a one-line ``XAIError`` as soon as anything from them is used
(so ``xrv.ResNet``, built on ``torchvision.models.resnet50``, fails clearly). Weights are never
fetched: the card names a local state dict (safetensors or ``torch.save(model.state_dict())``),
checked against the card's sha256.
"""

from __future__ import annotations

import importlib
import sys
import types

from torch import nn

from ..errors import XAIError

PREFIX = "xrv."
_TORCHVISION_MODULES = ("torchvision", "torchvision.models", "torchvision.transforms")


class _Missing(types.ModuleType):
    """Stands in for torchvision; any use raises a clear error."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise XAIError(
            f"torchvision is not usable here ({self.__name__}.{name} needed)",
            "use xrv.DenseNet, or install a torchvision build that matches the installed torch",
        )


def import_xrv():
    """``torchxrayvision``, imported with placeholder torchvision modules where the real one fails."""
    if "torchxrayvision" in sys.modules:
        return sys.modules["torchxrayvision"]
    try:
        import torchvision  # noqa: F401
    except ImportError as exc:
        if exc.name == "torchxrayvision":
            raise
        _install_placeholders()
    except RuntimeError:  # CUDA wheel beside CPU torch: its compiled ops are missing
        _install_placeholders()
    try:
        return importlib.import_module("torchxrayvision")
    except ImportError:
        raise XAIError(
            "torchxrayvision is not installed", "pip install torchxrayvision==1.5.7 (it ships no weights)"
        ) from None


def _install_placeholders() -> None:
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    mods = {name: _Missing(name) for name in _TORCHVISION_MODULES}
    for name, mod in mods.items():
        sys.modules[name] = mod
    root = mods["torchvision"]
    object.__setattr__(root, "models", mods["torchvision.models"])
    object.__setattr__(root, "transforms", mods["torchvision.transforms"])


def is_xrv(spec: dict) -> bool:
    """True when a card's network names a torchxrayvision class (``"xrv.DenseNet"``)."""
    return str(spec.get("name", "")).startswith(PREFIX)


def build_xrv(spec: dict) -> nn.Module:
    """Instantiate ``{"name": "xrv.DenseNet", "args": {...}}`` with no pretrained weights."""
    xrv = import_xrv()
    name = spec["name"][len(PREFIX) :]
    cls = getattr(xrv.models, name, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise XAIError(f"unknown torchxrayvision network '{name}'", "use xrv.DenseNet")
    args = dict(spec.get("args") or {})
    if args.get("weights"):
        raise XAIError(
            "torchxrayvision weights are not downloaded at run time",
            'remove network.args.weights and give a local file in the card\'s "weights"',
        )
    args["weights"] = None
    try:
        net = cls(**args)
    except TypeError as exc:
        raise XAIError(f"{spec['name']} rejected its arguments ({exc})", "fix network.args") from None
    # torchxrayvision resizes inputs itself and warns on intensity ranges; the adapter and card do that
    for attr, value in (("apply_sigmoid", False),):
        if hasattr(net, attr):
            setattr(net, attr, value)
    _no_inplace(net)
    return net


def _no_inplace(net: nn.Module) -> None:
    """In-place ReLUs overwrite tensors that forward hooks and guided backprop still need."""
    for module in net.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
