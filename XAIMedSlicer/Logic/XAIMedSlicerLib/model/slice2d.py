"""Run a 2D network on the pipeline's one-slice volumes, so every 3D attribution method works unchanged.

A radiograph is a Volume with one slice, so the network input is ``(1, C, X, Y, 1)`` with X along
the image rows (columns index i) and Y down the image (row index j). ``SliceAdapter`` drops the last
axis and hands the 2D network the image as it is displayed and stored, ``(B, C, rows, columns)``
(so weights trained on ordinary image arrays, e.g. torchxrayvision's, see upright radiographs),
optionally resizes it to the network's input size (bilinear, anti-aliased when shrinking, inside the graph, so gradients and maps
stay on the scan's pixel grid), and gives a segmentation output its (X, Y, 1) layout back. For
Grad-CAM the chosen 2D layer's output passes through a named tap (``SliceAdapter.TAP``) as a 5D
tensor ``(B, C, x, y, 1)``, so the methods' hooks see the activation in a 3D network's layout. A
TorchScript 2D network has no modules to hook: the gradient and perturbation methods run on it, and
a CAM method (anything hooked to the tap) is a one-line error.
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
        scripted = isinstance(net2d, torch.jit.ScriptModule)
        self.layer = None if scripted else layer or _default_layer(net2d)
        self._handle = None
        if self.layer is not None:
            module = dict(net2d.named_modules()).get(self.layer)
            if module is None or self.layer == "":
                raise XAIError(f"layer '{self.layer}' not found in the 2D network", "fix gradcam_layer")
            self._handle = module.register_forward_hook(self._through_tap)

    def _through_tap(self, _module, _inputs, out):
        if isinstance(out, torch.Tensor) and out.ndim == 4:
            return self.tap(out.transpose(-1, -2).unsqueeze(-1))[..., 0].transpose(-1, -2)
        return out

    def _run(self, x2: torch.Tensor):
        if self._handle is None and (self.tap._forward_hooks or self.tap._forward_pre_hooks):
            raise XAIError(
                "Grad-CAM needs a layer of the 2D network, and this one (TorchScript) has none to hook",
                "use saliency, ig, smoothgrad or occlusion, or give the network as a model card",
            )
        return self.net(x2)

    def net_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the 2D network receives for the one-slice input ``x``: ``(B, C, rows, columns)``, resized."""
        x2 = x[..., 0].transpose(-1, -2)
        return (
            resize_2d(x2, self.input_size)
            if self.input_size and tuple(x2.shape[2:]) != self.input_size
            else x2
        )

    @staticmethod
    def map_to_input(map2d: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """A map ``(h, w)`` on the 2D network's input (e.g. a ViT's patch grid) -> ``(X, Y, 1)`` on ``x``'s
        grid (bilinear), for methods that read the 2D network itself (attention maps)."""
        rows_columns = (x.shape[3], x.shape[2])
        up = F.interpolate(map2d[None, None].float(), size=rows_columns, mode="bilinear", align_corners=False)
        return up[0, 0].T[..., None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[-1] != 1:
            raise XAIError(
                f"a 2D network needs a one-slice volume, got input of shape {tuple(x.shape)}",
                "give a radiograph or a single 2D slice",
            )
        x2 = self.net_input(x)  # (B, C, rows, columns)
        out = self._run(x2)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.ndim == 4:  # a segmentation: back to (B, K, X, Y, 1) on the input's grid
            rows_columns = (x.shape[3], x.shape[2])
            if tuple(out.shape[2:]) != rows_columns:
                out = F.interpolate(out, size=rows_columns, mode="bilinear", align_corners=False)
            return out.transpose(-1, -2).unsqueeze(-1)
        return out


def resize_2d(x2: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B, C, rows, columns)``; anti-aliased when it shrinks (no aliasing of
    a 1024-pixel radiograph brought down to a small network's input)."""
    shrink = any(int(t) < int(s) for t, s in zip(size, x2.shape[2:], strict=True))
    return F.interpolate(x2, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrink)


def _default_layer(net: nn.Module) -> str | None:
    """A torchxrayvision DenseNet's last dense block, else the last ``Conv2d``."""
    from .xrv import default_xrv_layer

    if type(net).__module__.startswith("torchxrayvision"):
        layer = default_xrv_layer(net)
        if layer:
            return layer
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    return names[-1] if names else None
