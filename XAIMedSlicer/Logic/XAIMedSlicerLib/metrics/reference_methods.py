"""Guided backpropagation for the sanity checks, while the methods package registers none.

The randomisation test contrasts a plain gradient method with a guided one (Adebayo et al. 2018).
``resolve(name)`` returns the registered method (or an alias of it); for ``guided_backprop`` it falls
back to this module's version, which has the registry's signature and hooks every rectifying
activation module (ReLU, ELU, ...).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import XAIError
from ..methods.registry import Attribution, get_method

ALIASES = {
    "saliency": ("saliency", "gradient", "vanilla_gradient"),
    "gradient_x_input": ("input_x_gradient", "gradient_x_input", "gxi"),
    "guided_backprop": ("guided_backprop", "guided-backprop", "gbp"),
}


def _gradient(model, x, target) -> torch.Tensor:
    inp = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(target(model(inp)).sum(), inp)
    return grad


RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.PReLU)


def guided_backprop(model, x, target, *, progress=None, **_) -> Attribution:
    """Guided backpropagation (Springenberg et al. 2015), summed over channels.

    At every rectifying activation module only positive gradients flow back:
    ``R_in = act'(z) * max(R_out, 0)``. For ``nn.ReLU`` this is exactly Captum's ``GuidedBackprop``;
    for ELU-type activations it is the same guidance rule. Functional activations (``F.relu``) are
    not seen, so a network without activation modules is refused.
    """
    acts = [m for m in model.modules() if isinstance(m, RECTIFIERS)]
    if not acts:
        raise XAIError(
            "guided backpropagation needs activation modules (nn.ReLU, nn.ELU, ...)", "choose another method"
        )
    inplace = [(m, m.inplace) for m in acts if getattr(m, "inplace", False)]
    for m, _flag in inplace:
        m.inplace = False  # backward hooks cannot see in-place activations; restored below
    hooks = [m.register_full_backward_hook(_positive_gradient) for m in acts]
    try:
        grad = _gradient(model, x, target)
    finally:
        for h in hooks:
            h.remove()
        for m, flag in inplace:
            m.inplace = flag
    info = {"guided_modules": len(acts)}
    return Attribution(grad[0].sum(dim=0).float().cpu(), signed=True, method="guided_backprop", info=info)


def _positive_gradient(module, grad_input, grad_output):
    return tuple(None if g is None else g.clamp(min=0) for g in grad_input)


_FALLBACKS: dict[str, Callable[..., Attribution]] = {"guided_backprop": guided_backprop}


def resolve(name: str) -> Callable[..., Attribution]:
    """The registered method called ``name`` (or an alias), else this module's stand-in, else the registry error."""
    for alias in ALIASES.get(name, (name,)):
        try:
            return get_method(alias).fn
        except XAIError:
            continue
    if name in _FALLBACKS:
        return _FALLBACKS[name]
    return get_method(name).fn
