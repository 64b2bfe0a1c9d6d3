"""3D Grad-CAM (Selvaraju et al. 2017): gradient-weighted class activation of a convolution layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .activations import default_layer, forward_with_activation
from .registry import Attribution, register


def upsample_to(cam: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Resize a (1, 1, ...) map to ``size`` (trilinear, as MONAI's default upsampler)."""
    mode = "trilinear" if cam.ndim == 5 else "bilinear"
    return F.interpolate(cam, size=size, mode=mode, align_corners=False)


def layer_activation_and_grad(model, x, target, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Activation of ``layer`` and the gradient of the target score with respect to it."""
    with torch.enable_grad():
        # the input carries the graph, so frozen weights still give layer gradients
        output, act = forward_with_activation(model, x.detach().requires_grad_(True), layer)
        score = target(output).sum()
        (grad,) = torch.autograd.grad(score, act)
    return act.detach(), grad.detach()


@register("gradcam", signed=False, needs_layer=True, description="Grad-CAM on a 3D convolution layer")
def gradcam(model, x: torch.Tensor, target, *, layer: str | None = None, progress=None, **_) -> Attribution:
    """ReLU of the channel sum of activations weighted by their spatially averaged gradients."""
    layer = layer or default_layer(model)
    if progress:
        progress(0.1, "Grad-CAM: forward and backward pass")
    act, grad = layer_activation_and_grad(model, x, target, layer)
    weights = grad.mean(dim=tuple(range(2, grad.ndim)), keepdim=True)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))
    cam = upsample_to(cam.float(), tuple(x.shape[2:]))[0, 0]
    if progress:
        progress(1.0, "Grad-CAM done")
    return Attribution(cam.cpu(), signed=False, method="gradcam", params={"layer": layer})
