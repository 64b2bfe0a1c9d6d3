"""torchxrayvision's chest X-ray architectures, built without downloads, weights from a local file.

torchxrayvision 1.5.7 imports torchvision and pandas at module level (its datasets, ResNet and the
baseline models), but its DenseNet, built from plain ``torch.nn``, needs neither. PyPI's torchvision
wheels do not load beside the CPU torch used here, and pandas is only for its dataset classes. So
when one of those does not import, torchxrayvision is imported with a placeholder module in its place
*only for the duration of that import*: the placeholders are then removed from ``sys.modules`` (other
libraries, e.g. MONAI's optional imports, still see the module as missing), and any use of them from
inside torchxrayvision raises a one-line ``XAIError`` (``xrv.ResNet``, built on
``torchvision.models.resnet50``, fails clearly). Weights are never fetched: the card names a local
state dict (safetensors or ``torch.save(model.state_dict())``), checked against the card's sha256.
"""

from __future__ import annotations

import importlib
import sys
import types
from contextlib import contextmanager

from torch import nn

from ..errors import XAIError

PREFIX = "xrv."
VERSION = "1.5.7"
# modules torchxrayvision imports at module level that the DenseNet never uses
_OPTIONAL = {
    "torchvision": ("torchvision", "torchvision.models", "torchvision.transforms"),
    "pandas": ("pandas",),
}


class _Missing(types.ModuleType):
    """Stands in for a module that does not import; any use raises a clear error."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise XAIError(
            f"{self.__name__.split('.')[0]} is not usable here ({self.__name__}.{name} needed)",
            "use xrv.DenseNet, or install a build of it that matches the installed torch",
        )


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - ImportError, or a CUDA torchvision failing beside CPU torch
        for mod in [n for n in sys.modules if n == name or n.startswith(name + ".")]:
            del sys.modules[mod]
        return False
    return True


@contextmanager
def _placeholders(missing: list[str]):
    """Placeholder modules for ``missing`` packages while the block runs; removed afterwards."""
    installed: list[str] = []
    for package in missing:
        mods = {name: _Missing(name) for name in _OPTIONAL[package]}
        for name, mod in mods.items():
            sys.modules[name] = mod
            installed.append(name)
            parent, _, child = name.rpartition(".")
            if parent:
                object.__setattr__(mods[parent], child, mod)
    try:
        yield
    finally:
        for name in installed:
            sys.modules.pop(name, None)


def import_xrv():
    """``torchxrayvision``, imported with placeholders for torchvision/pandas where they do not import."""
    if "torchxrayvision" in sys.modules:
        return sys.modules["torchxrayvision"]
    missing = [package for package in _OPTIONAL if not _importable(package)]
    try:
        with _placeholders(missing):
            return importlib.import_module("torchxrayvision")
    except ImportError as exc:
        for mod in [n for n in sys.modules if n == "torchxrayvision" or n.startswith("torchxrayvision.")]:
            del sys.modules[mod]
        raise XAIError(
            f"torchxrayvision cannot be imported ({exc})",
            f"pip install --no-deps torchxrayvision=={VERSION} (it ships no weights)",
        ) from None


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
    except XAIError:
        raise
    except Exception as exc:  # noqa: BLE001 - torchxrayvision raises plain Exception on bad arguments
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise XAIError(f"{spec['name']} rejected its arguments ({first})", "fix network.args") from None
    # torchxrayvision resizes inputs itself and warns on intensity ranges; the adapter and card do that
    for attr, value in (("apply_sigmoid", False),):
        if hasattr(net, attr):
            setattr(net, attr, value)
    _no_inplace(net)
    return net


def default_xrv_layer(net: nn.Module) -> str | None:
    """Grad-CAM layer of a torchxrayvision network: the last dense block's output for a DenseNet.

    (Its last convolution only adds ``growth_rate`` channels to the concatenation, and ``norm5``'s
    output is overwritten by the in-place ReLU of ``DenseNet.features2``.)
    """
    names = [n for n, _ in net.named_modules() if n.startswith("features.denseblock") and n.count(".") == 1]
    return names[-1] if names else None


def _no_inplace(net: nn.Module) -> None:
    """In-place ReLUs overwrite tensors that forward hooks and guided backprop still need."""
    for module in net.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
