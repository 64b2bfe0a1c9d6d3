"""Run a 2D network on the pipeline's one-slice volumes, so every 3D attribution method works unchanged.

A radiograph is a Volume with one slice, so the network input is ``(1, C, X, Y, 1)``.
``SliceAdapter`` drops the last axis, optionally resizes to the network's input size (bilinear,
inside the graph, so gradients and maps stay on the scan's pixel grid), runs the 2D network and
gives a segmentation output its slice axis back. For Grad-CAM the chosen 2D layer's output passes
through a named tap (``SliceAdapter.TAP``) as a 5D tensor ``(B, C, h, w, 1)``, so the methods'
forward hooks see the activation in the same layout as a 3D network's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import XAIError


class _Tap(nn.Identity):
    """Identity the CAM hooks attach to; it sees the 2D layer's activation with a slice axis."""


class SliceAdapter(nn.Module):
    """A 2D network seen as a 3D one over a single slice."""

    TAP = "tap"

    def __init__(
        self, net2d: nn.Module, layer: str | None = None, input_size: tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.net = net2d
        self.tap = _Tap()
        self.input_size = tuple(int(s) for s in input_size) if input_size else None
        self.layer = layer or _last_conv2d(net2d)
        self._handle = None
        if self.layer is not None and not isinstance(net2d, torch.jit.ScriptModule):
            module = dict(net2d.named_modules()).get(self.layer)
            if module is None or self.layer == "":
                raise XAIError(f"layer '{self.layer}' not found in the 2D network", "fix gradcam_layer")
            self._handle = module.register_forward_hook(self._through_tap)

    def _through_tap(self, _module, _inputs, out):
        if isinstance(out, torch.Tensor) and out.ndim == 4:
            return self.tap(out.unsqueeze(-1))[..., 0]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[-1] != 1:
            raise XAIError(
                f"a 2D network needs a one-slice volume, got input of shape {tuple(x.shape)}",
                "give a radiograph or a single 2D slice",
            )
        x2 = x[..., 0]
        if self.input_size and tuple(x2.shape[2:]) != self.input_size:
            x2 = F.interpolate(x2, size=self.input_size, mode="bilinear", align_corners=False)
        out = self.net(x2)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.unsqueeze(-1) if out.ndim == 4 else out


def _last_conv2d(net: nn.Module) -> str | None:
    if isinstance(net, torch.jit.ScriptModule):
        return None
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    return names[-1] if names else None
