"""Batched class activation maps: Grad-CAM and Grad-CAM++ weights for many inputs at once.

Shared by ``gradcampp`` and by SmoothGrad over a CAM method. The layer is captured with the same hook
(or TorchScript graph output) as ``gradcam``. Grad-CAM++ follows MONAI's ``GradCAMpp``
(Chattopadhyay et al. 2018) without its ``exp(score)`` factor, which only scales the map and overflows
for large logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .activations import default_layer, forward_with_activation
from .budget import ChunkReport, MemoryBudget, model_on, run_chunks
from .gradients import gradient_bytes_per_point
from .precision import autocast


def cam_weights(act: torch.Tensor, grad: torch.Tensor, plus: bool) -> torch.Tensor:
    """Channel weights ``(B, C, 1, ...)``: mean gradient (Grad-CAM) or the Grad-CAM++ weighting."""
    spatial = tuple(range(2, grad.ndim))
    if not plus:
        return grad.mean(dim=spatial, keepdim=True)
    g2 = grad.pow(2)
    denom = g2.mul(2) + (act * grad.pow(3)).sum(dim=spatial, keepdim=True)
    denom = torch.where(denom != 0.0, denom, torch.ones_like(denom))
    alpha = g2 / (denom + 1e-7)
    return (alpha * F.relu(grad)).sum(dim=spatial, keepdim=True)


def cam_batch(
    model, xs: torch.Tensor, target, layer: str, plus: bool, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """CAMs of a batch ``(B, C, ...)`` upsampled (trilinear) to the input grid: ``(B, X, Y, Z)`` fp32."""
    with torch.enable_grad():
        with autocast(xs.device, dtype):
            output, act = forward_with_activation(model, xs.detach().requires_grad_(True), layer)
            score = target(output).float()
        (grad,) = torch.autograd.grad(score.sum(), act)
    act, grad = act.detach().float(), grad.float()
    cam = F.relu((cam_weights(act, grad, plus) * act).sum(dim=1, keepdim=True))
    mode = "trilinear" if cam.ndim == 5 else "bilinear"
    return F.interpolate(cam, size=tuple(xs.shape[2:]), mode=mode, align_corners=False)[:, 0]


def cam_over_inputs(
    model,
    target,
    get_input: Callable[[int, torch.device], torch.Tensor],
    n_inputs: int,
    finish: Callable[[int, torch.Tensor], None],
    *,
    x: torch.Tensor,
    plus: bool,
    layer: str | None = None,
    budget: MemoryBudget | None = None,
    chunk: int | None = None,
    dtype: torch.dtype | None = None,
    progress=None,
    report: ChunkReport | None = None,
) -> dict:
    """CAM of inputs ``0..n_inputs-1`` in memory-sized chunks; ``finish(i, cam (1, X, Y, Z))`` each."""
    layer = layer or default_layer(model)

    def fn(start: int, stop: int, dev: torch.device) -> None:
        xs = torch.stack([get_input(i, dev) for i in range(start, stop)])
        cams = cam_batch(model_on(model, dev), xs, target, layer, plus, dtype)
        for i in range(start, stop):
            finish(i, cams[i - start : i - start + 1])

    run_chunks(
        n_inputs,
        fn,
        per_item_bytes=gradient_bytes_per_point(model, x, n_inputs, budget),
        device=x.device,
        budget=budget,
        chunk=chunk,
        report=report,
        progress=progress,
        label="Grad-CAM++" if plus else "Grad-CAM",
    )
    return {"layer": layer}
