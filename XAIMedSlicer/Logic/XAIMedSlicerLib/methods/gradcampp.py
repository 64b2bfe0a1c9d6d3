"""3D Grad-CAM++ (Chattopadhyay et al. 2018): higher-order gradient weights of a convolution layer."""

from __future__ import annotations

import torch
from torch import nn

from .gradcam import CamParams, run_cam
from .registry import Attribution, register
from .targets import Target


@register(
    "gradcampp",
    signed=False,
    params=CamParams,
    needs_layer=True,
    description="Grad-CAM++ on a 3D convolution layer",
)
def gradcampp(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    layer: str | None = None,
    precision: str = "fp32",
    progress=None,
) -> Attribution:
    """ReLU of activations weighted by Grad-CAM++ coefficients, upsampled to the input grid."""
    return run_cam("gradcampp", model, x, target, layer, True, precision, progress)
