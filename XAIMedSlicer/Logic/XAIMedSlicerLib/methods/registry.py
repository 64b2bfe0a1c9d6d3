"""The method registry: every attribution method has the same call signature.

A method is a function ``fn(model, x, target, *, progress=None, **params) -> Attribution`` where

* ``model`` is a ``torch.nn.Module`` in eval mode on the device of ``x``;
* ``x`` is the preprocessed input tensor of shape ``(1, C, X, Y, Z)`` (MONAI's channel-first,
  spatial order i, j, k);
* ``target`` is a :class:`~XAIMedSlicerLib.methods.targets.Target`, mapping the network output
  ``(B, K, ...)`` to one score per batch element ``(B,)``;
* ``progress(fraction, message)`` is an optional callback;
* ``params`` are the method's own keyword parameters (``layer``, ``steps``, ``seed``, ...).

It returns the attribution on the spatial grid of ``x`` (shape ``(X, Y, Z)``, float32, on the CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import XAIError

Progress = Callable[[float, str], None]


@dataclass
class Attribution:
    """An attribution map on the model-input grid, with what produced it."""

    map: torch.Tensor
    signed: bool
    method: str
    params: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its function and what the user needs to know about it."""

    name: str
    fn: Callable[..., Attribution]
    signed: bool
    needs_layer: bool = False
    description: str = ""
    warning: str = ""


_REGISTRY: dict[str, MethodSpec] = {}


def register(name: str, *, signed: bool, needs_layer: bool = False, description: str = "", warning: str = ""):
    """Decorator that adds a method to the registry under ``name``."""

    def wrap(fn: Callable[..., Attribution]) -> Callable[..., Attribution]:
        _REGISTRY[name] = MethodSpec(name, fn, signed, needs_layer, description, warning)
        return fn

    return wrap


def get_method(name: str) -> MethodSpec:
    """Look up a method by name, with a one-line error listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise XAIError(
            f"unknown attribution method '{name}'", f"choose one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def available_methods() -> list[str]:
    """Names of all registered methods."""
    return sorted(_REGISTRY)
