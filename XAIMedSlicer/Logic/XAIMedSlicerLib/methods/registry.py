"""The method registry: every attribution method has the same call signature.

A method is a function ``fn(model, x, target, *, progress=None, **params) -> Attribution`` registered with
its parameter class (:mod:`.params`), where

* ``model`` is a ``torch.nn.Module`` in eval mode on the device of ``x``;
* ``x`` is the preprocessed input tensor of shape ``(1, C, X, Y, Z)`` (MONAI's channel-first,
  spatial order i, j, k);
* ``target`` is a :class:`~XAIMedSlicerLib.methods.targets.Target`, mapping the network output
  ``(B, K, ...)`` to one score per batch element ``(B,)``;
* ``progress(fraction, message)`` is an optional callback;
* ``params`` are the method's own keyword parameters (``layer``, ``steps``, ``seed``, ...), declared once
  in a frozen dataclass (the schema the CLI, worker, module and provenance read).

It returns the attribution on the spatial grid of ``x`` (shape ``(X, Y, Z)``, float32, on the CPU).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import XAIError
from .params import RUNTIME, MethodParams, check_signature

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
    params: type[MethodParams] = MethodParams

    def validate(self, given: dict | None) -> MethodParams:
        """``given`` checked against the method's schema (names, types, choices, ranges)."""
        return self.params.validate(self.name, dict(given or {}))

    def accepts(self, name: str) -> bool:
        """Whether the method takes keyword ``name`` (a schema field or a runtime one such as ``budget``)."""
        return name in self.params.names() or name in inspect.signature(self.fn).parameters


_REGISTRY: dict[str, MethodSpec] = {}


def register(
    name: str,
    *,
    signed: bool,
    params: type[MethodParams] = MethodParams,
    needs_layer: bool = False,
    description: str = "",
    warning: str = "",
):
    """Decorator that adds a method to the registry under ``name`` with its parameter class ``params``.

    The registered function rejects a keyword that is neither in ``params`` nor a runtime one with a
    one-line :class:`XAIError` naming the valid parameters.
    """

    def wrap(fn: Callable[..., Attribution]) -> Callable[..., Attribution]:
        check_signature(name, fn, params)

        @functools.wraps(fn)
        def checked(model, x, target=None, **kwargs) -> Attribution:
            params.check_names(name, [k for k in kwargs if k not in RUNTIME])
            return fn(model, x, target, **kwargs)

        _REGISTRY[name] = MethodSpec(name, checked, signed, needs_layer, description, warning, params)
        return checked

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
