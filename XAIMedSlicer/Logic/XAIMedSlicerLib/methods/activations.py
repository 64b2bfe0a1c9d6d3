"""Capture a layer's activation (with its gradient graph) in eager and TorchScript models.

Eager modules use a forward hook. TorchScript modules do not accept hooks, so the forward graph is
copied and the chosen convolution's output is added as a second graph output.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import XAIError

_CONV_KINDS = ("aten::conv3d", "aten::_convolution", "aten::convolution", "aten::conv2d")


def is_torchscript(model: nn.Module) -> bool:
    """True for scripted or traced modules."""
    return isinstance(model, torch.jit.ScriptModule)


def default_layer(model: nn.Module) -> str:
    """Name of the last convolution (eager), or ``"conv:-1"`` (TorchScript)."""
    if is_torchscript(model):
        return "conv:-1"
    names = [name for name, mod in model.named_modules() if isinstance(mod, (nn.Conv3d, nn.Conv2d))]
    if not names:
        raise XAIError(
            "the network has no convolution layer for Grad-CAM", "choose a gradient method such as ig"
        )
    return names[-1]


def resolve_module(model: nn.Module, layer: str) -> nn.Module:
    """The submodule called ``layer`` (dotted name), with a one-line error listing close names."""
    modules = dict(model.named_modules())
    if layer in modules and layer != "":
        return modules[layer]
    convs = [n for n, m in modules.items() if isinstance(m, (nn.Conv3d, nn.Conv2d))]
    hint = ", ".join(convs[-4:]) if convs else "none"
    raise XAIError(f"layer '{layer}' not found in the network", f"use a module name such as {hint}")


def forward_with_activation(
    model: nn.Module, x: torch.Tensor, layer: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model(x)`` and return ``(output, activation of layer)``; both stay in the autograd graph."""
    if is_torchscript(model):
        return _script_forward(model, x, layer)
    module = resolve_module(model, layer)
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        output = model(x)
    finally:
        handle.remove()
    if not captured:
        raise XAIError(f"layer '{layer}' was not used in the forward pass", "choose a layer the network runs")
    act = captured[-1]
    if isinstance(act, (tuple, list)):
        act = act[0]
    return output, act


def _script_forward(model: torch.jit.ScriptModule, x: torch.Tensor, layer: str):
    if not layer.startswith("conv:"):
        raise XAIError(
            f"layer '{layer}' cannot be addressed in a TorchScript model",
            "use 'conv:-1' (last convolution) or 'conv:N' (N-th convolution)",
        )
    try:
        index = int(layer.split(":", 1)[1])
    except ValueError:
        raise XAIError(f"bad TorchScript layer '{layer}'", "use 'conv:-1' or 'conv:N'") from None
    graph = model.inlined_graph
    convs = [n for n in graph.nodes() if n.kind() in _CONV_KINDS]
    if not convs:
        raise XAIError("the TorchScript model has no convolution for Grad-CAM", "use --method ig")
    try:
        node = convs[index]
    except IndexError:
        raise XAIError(
            f"TorchScript layer {layer} out of range", f"the model has {len(convs)} convolutions"
        ) from None
    out = next(iter(graph.outputs()))
    act = node.output()
    pair = graph.create("prim::TupleConstruct", [out, act])
    graph.appendNode(pair)
    pair.output().setType(torch._C.TupleType([out.type(), act.type()]))
    graph.eraseOutput(0)
    graph.registerOutput(pair.output())
    fn = torch._C._create_function_from_graph("forward_with_activation", graph)
    output, activation = fn(model._c, x)
    return output, activation
