"""3D Grad-CAM (Selvaraju et al. 2017): gradient-weighted class activation of a convolution layer."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from .activations import default_layer
from .budget import PeakMemory
from .cam import cam_batch
from .params import MethodParams, param
from .precision import PRECISIONS, checked_dtype
from .registry import Attribution, register
from .targets import Target


def run_cam(
    name: str, model, x: torch.Tensor, target, layer: str | None, plus: bool, precision: str, progress
):
    """Grad-CAM or Grad-CAM++ of one input (or window by window for a sliding-window model)."""
    from .sliding import SlidingWindowModel

    start = time.perf_counter()
    inner = model.model if isinstance(model, SlidingWindowModel) else model
    layer = layer or default_layer(inner)
    if progress:
        progress(0.1, f"{name}: forward and backward pass")
    if isinstance(model, SlidingWindowModel):
        cam, info = model.run_cam(x, target, layer, plus, precision=precision, progress=progress)
    else:
        dtype, info = checked_dtype(model, x, target, precision, gradient=True)
        with PeakMemory(x.device) as peak:
            cam = cam_batch(model, x, target, layer, plus=plus, dtype=dtype)[0]
        info.update(peak.as_dict())
    if progress:
        progress(1.0, f"{name} done")
    info["seconds"] = time.perf_counter() - start
    return Attribution(cam.cpu(), signed=False, method=name, params={"layer": layer}, info=info)


@dataclass(frozen=True)
class CamParams(MethodParams):
    """Grad-CAM / Grad-CAM++ parameters."""

    layer: str | None = param(
        None, "convolution layer (module name); default: the model card's or the last 3D conv"
    )
    precision: str = param("fp32", "arithmetic precision", choices=PRECISIONS)


@register(
    "gradcam",
    signed=False,
    params=CamParams,
    needs_layer=True,
    description="Grad-CAM on a 3D convolution layer",
)
def gradcam(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    layer: str | None = None,
    precision: str = "fp32",
    progress=None,
) -> Attribution:
    """ReLU of the channel sum of activations weighted by their spatially averaged gradients."""
    return run_cam("gradcam", model, x, target, layer, False, precision, progress)
