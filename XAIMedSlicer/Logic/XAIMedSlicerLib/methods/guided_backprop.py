"""Guided backpropagation (Springenberg et al. 2015), offered with a warning.

ReLU modules pass back only positive gradients where their input was positive. The maps look sharp
but hardly depend on the network's weights: they fail the model-randomisation sanity check
(Adebayo et al. 2018), so they must not be read as what the model relies on.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from ..errors import XAIError
from .gradient_method import run_kernel
from .registry import Attribution, register
from .targets import Target

WARNING = (
    "guided backpropagation fails the model-randomisation sanity check (Adebayo et al. 2018): "
    "its maps barely change when the weights are randomised; do not read it as model evidence"
)


class _GuidedReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        out = x.clamp_min(0)
        ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp_min(0) * (x > 0).to(grad.dtype)


class GuidedReLU(nn.Module):
    """ReLU whose backward pass keeps positive gradients at positive inputs only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GuidedReLUFunction.apply(x)


@contextmanager
def guided_relus(model: nn.Module):
    """Swap every ``nn.ReLU`` of ``model`` for :class:`GuidedReLU` while the block runs."""
    swapped = []
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, GuidedReLU())
                swapped.append((parent, name, child))
    try:
        yield len(swapped)
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


@register(
    "guided_backprop",
    signed=True,
    description="guided backpropagation (fails sanity checks; see warning)",
    warning=WARNING,
)
def guided_backprop(model: nn.Module, x: torch.Tensor, target: Target, *, progress=None) -> Attribution:
    """Input gradient with guided ReLUs, summed over channels."""
    with guided_relus(model) as count:
        if count == 0:
            raise XAIError(
                "guided backpropagation found no nn.ReLU modules to guide (TorchScript or functional ReLUs)",
                "use saliency or ig for this network",
            )
        attr, _scores, info = run_kernel(
            "gradient", model, x, target, {}, precision="fp32", progress=progress
        )
    info.update({"guided_relus": count, "warning": WARNING})
    return Attribution(attr.sum(0).cpu(), signed=True, method="guided_backprop", params={}, info=info)
