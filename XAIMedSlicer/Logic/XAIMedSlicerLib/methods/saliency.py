"""Saliency (Simonyan et al. 2014) and gradient x input: one forward and one backward pass.

``saliency`` is the largest absolute input gradient over channels (Captum's ``Saliency(abs=True)``
per channel, MONAI's ``VanillaGrad`` in magnitude). ``input_x_gradient`` is the signed channel sum of
input times gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .gradient_method import run_kernel
from .kernels import get_kernel, reduce_channels
from .params import MethodParams, param
from .precision import PRECISIONS
from .registry import Attribution, register
from .targets import Target


def _single(name: str, model, x: torch.Tensor, target, *, precision: str, budget, progress) -> Attribution:
    attr, _scores, info = run_kernel(
        name, model, x, target, {}, precision=precision, budget=budget, progress=progress
    )
    kernel = get_kernel(name)
    return Attribution(
        reduce_channels(attr, kernel.reduce).cpu(),
        signed=kernel.signed,
        method=name,
        params={"precision": precision},
        info=info,
    )


@dataclass(frozen=True)
class GradientParams(MethodParams):
    """Saliency / input x gradient parameters."""

    precision: str = param("fp32", "arithmetic precision", choices=PRECISIONS)


@register(
    "saliency",
    signed=False,
    params=GradientParams,
    description="absolute input gradient (one forward and backward pass)",
)
def saliency(
    model: nn.Module, x: torch.Tensor, target: Target, *, precision: str = "fp32", budget=None, progress=None
) -> Attribution:
    """``max_c |d target / d x_c|``."""
    return _single("saliency", model, x, target, precision=precision, budget=budget, progress=progress)


@register(
    "input_x_gradient",
    signed=True,
    params=GradientParams,
    description="input times gradient, summed over channels",
)
def input_x_gradient(
    model: nn.Module, x: torch.Tensor, target: Target, *, precision: str = "fp32", budget=None, progress=None
) -> Attribution:
    """``sum_c x_c * d target / d x_c``."""
    return _single(
        "input_x_gradient", model, x, target, precision=precision, budget=budget, progress=progress
    )
