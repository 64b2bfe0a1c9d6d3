"""3D Grad-CAM++ (Chattopadhyay et al. 2018): higher-order gradient weights of a convolution layer."""

from __future__ import annotations

import time

import torch

from .activations import default_layer
from .budget import PeakMemory
from .cam import cam_batch
from .precision import checked_dtype
from .registry import Attribution, register


@register("gradcampp", signed=False, needs_layer=True, description="Grad-CAM++ on a 3D convolution layer")
def gradcampp(
    model, x: torch.Tensor, target, *, layer: str | None = None, precision: str = "auto", progress=None, **_
) -> Attribution:
    """ReLU of activations weighted by Grad-CAM++ coefficients, upsampled to the input grid."""
    start = time.perf_counter()
    layer = layer or default_layer(model)
    if progress:
        progress(0.1, "Grad-CAM++: forward and backward pass")
    dtype, info = checked_dtype(model, x, target, precision, gradient=True)
    with PeakMemory(x.device) as peak:
        cam = cam_batch(model, x, target, layer, plus=True, dtype=dtype)[0]
    if progress:
        progress(1.0, "Grad-CAM++ done")
    info = {**info, **peak.as_dict(), "seconds": time.perf_counter() - start}
    return Attribution(cam.cpu(), signed=False, method="gradcampp", params={"layer": layer}, info=info)
