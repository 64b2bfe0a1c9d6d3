"""Attribution on full-size volumes through sliding-window inference.

:class:`SlidingWindowModel` wraps a network trained on patches. Its forward pass is MONAI's
``sliding_window_inference`` for segmentation networks, and the mean of the window logits for
classifiers, so a 512x512x300 CT needs no hand cropping.

The targets (a class logit, or a class's logits summed over a region) are linear in the blended
output, so the target splits into one weighted target per window: window ``w`` contributes its logits
times ``importance / count`` inside the region. Gradient methods run window by window with those
weights, add the raw gradients on the full grid and apply their final step once. This equals
differentiating through the whole sliding-window inference, without keeping every window's graph,
and windows that do not touch the region are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.data.utils import compute_importance_map, dense_patch_slices, get_valid_patch_size
from monai.inferers import sliding_window_inference
from monai.inferers.utils import _get_scan_interval
from torch import nn

from ..errors import XAIError
from .budget import ChunkReport, PeakMemory
from .gradients import gradient_bytes_per_point
from .kernels import GradientKernel, attribute_inputs
from .precision import checked_dtype
from .targets import ClassTarget, RegionTarget


@dataclass
class WindowRegionTarget:
    """Class ``index``'s logits of one window, weighted voxel by voxel (``weight`` on the window grid)."""

    index: int
    weight: torch.Tensor

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        weight = self.weight.to(device=output.device, dtype=output.dtype)
        return (output[:, self.index] * weight).flatten(1).sum(1)


@dataclass
class ScaledClassTarget:
    """Class ``index``'s logit times ``scale`` (one window's share of a window-averaged logit)."""

    index: int
    scale: float

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return output[:, self.index] * self.scale


@dataclass
class Layout:
    """Padding and windows of one input shape, exactly as MONAI's ``sliding_window_inference``."""

    pad: list[int]  # F.pad order (last dimension first)
    padded: tuple[int, ...]
    slices: list[tuple[slice, ...]]
    importance: torch.Tensor  # on the window grid
    count: torch.Tensor  # on the padded grid

    def crop(self, t: torch.Tensor) -> torch.Tensor:
        """Remove the padding from the last spatial dimensions of ``t``."""
        n = len(self.padded)
        index = [slice(None)] * (t.ndim - n)
        for d in range(n):
            lo, hi = self.pad[2 * (n - 1 - d)], self.pad[2 * (n - 1 - d) + 1]
            index.append(slice(lo, self.padded[d] - hi))
        return t[tuple(index)]


class SlidingWindowModel(nn.Module):
    """A patch network applied to a whole volume by sliding windows (see the module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        roi_size: Sequence[int],
        *,
        task: str = "segmentation",
        overlap: float = 0.25,
        mode: str = "constant",
        sigma_scale: float = 0.125,
        sw_batch_size: int = 1,
    ) -> None:
        super().__init__()
        if task not in ("segmentation", "classification"):
            raise XAIError(f"unknown sliding-window task '{task}'", "use segmentation or classification")
        self.model = model
        self.roi_size = tuple(int(r) for r in roi_size)
        self.task, self.overlap, self.mode = task, float(overlap), mode
        self.sigma_scale, self.sw_batch_size = sigma_scale, int(sw_batch_size)

    def layout(self, shape: Sequence[int], device: torch.device | str = "cpu") -> Layout:
        """Padding, window slices, importance map and count map for a spatial ``shape``."""
        shape = tuple(int(s) for s in shape)
        n = len(shape)
        pad: list[int] = []
        for k in range(n - 1, -1, -1):
            diff = max(self.roi_size[k] - shape[k], 0)
            pad.extend([diff // 2, diff - diff // 2])
        padded = tuple(max(s, r) for s, r in zip(shape, self.roi_size, strict=True))
        interval = _get_scan_interval(padded, self.roi_size, n, (self.overlap,) * n)
        slices = [tuple(s) for s in dense_patch_slices(padded, self.roi_size, interval)]
        valid = get_valid_patch_size(padded, self.roi_size)
        importance = compute_importance_map(
            valid, mode=self.mode, sigma_scale=self.sigma_scale, device=device
        )
        count = torch.zeros(padded, device=device)
        for sl in slices:
            count[sl] += importance
        return Layout(pad, padded, slices, importance, count)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.task == "segmentation":
            return sliding_window_inference(
                x, self.roi_size, self.sw_batch_size, self.model, self.overlap, self.mode, self.sigma_scale
            )
        lay = self.layout(x.shape[2:], x.device)
        xp = F.pad(x, lay.pad)
        outs = [self.model(xp[(slice(None), slice(None), *sl)]) for sl in lay.slices]
        return torch.stack(outs).mean(0)

    def window_targets(self, shape: Sequence[int], target, device) -> tuple[Layout, list]:
        """The layout and ``[(window slices, window target)]`` for the windows the target depends on."""
        lay = self.layout(shape, device)
        if self.task == "classification":
            if not isinstance(target, ClassTarget):
                raise XAIError("a sliding-window classifier needs a class target", "pass a ClassTarget")
            scale = 1.0 / len(lay.slices)
            return lay, [(sl, ScaledClassTarget(target.index, scale)) for sl in lay.slices]
        if not isinstance(target, RegionTarget):
            raise XAIError("a sliding-window segmentation needs a region target", "pass a RegionTarget")
        mask = target.mask.to(device=device, dtype=torch.float32)
        if tuple(mask.shape) != tuple(shape):
            raise XAIError(f"region mask {tuple(mask.shape)} does not match the volume {tuple(shape)}", "")
        per_voxel = F.pad(mask, lay.pad) / lay.count
        windows = []
        for sl in lay.slices:
            weight = per_voxel[sl] * lay.importance
            if bool(weight.any()):
                windows.append((sl, WindowRegionTarget(target.index, weight)))
        return lay, windows

    def run_kernel(
        self,
        kernel: GradientKernel,
        x: torch.Tensor,
        target,
        params: dict,
        baseline: torch.Tensor,
        *,
        precision: str = "auto",
        tolerance: float = 1e-2,
        budget=None,
        progress=None,
    ) -> tuple[torch.Tensor, np.ndarray, dict]:
        """A gradient kernel on the whole volume, window by window (same return as ``run_kernel``)."""
        start = time.perf_counter()
        lay, windows = self.window_targets(x.shape[2:], target, x.device)
        if not windows:
            raise XAIError("the target region lies outside every window", "check the region mask")
        xp, bp = F.pad(x, lay.pad), F.pad(baseline[None], lay.pad)[0]
        grad_full = torch.zeros(xp.shape[1:], dtype=torch.float32, device=x.device)
        report, scores, dtype, info = ChunkReport(), [], None, {}
        with PeakMemory(x.device) as peak:
            for i, (sl, wtarget) in enumerate(windows):
                xw = xp[(slice(None), slice(None), *sl)]
                if i == 0:
                    dtype, info = checked_dtype(
                        self.model, xw, wtarget, precision, gradient=True, tolerance=tolerance
                    )
                    per_point = gradient_bytes_per_point(self.model, xw, len(kernel.nodes(params)[0]), budget)

                def add(_i: int, grad: torch.Tensor, sl=sl) -> None:
                    grad_full[(slice(None), *sl)] += grad.to(grad_full.device)

                scores.append(
                    attribute_inputs(
                        kernel,
                        self.model,
                        wtarget,
                        lambda _i, dev, xw=xw: xw[0].to(dev),
                        1,
                        bp[(slice(None), *sl)],
                        params,
                        add,
                        device=x.device,
                        per_point_bytes=per_point,
                        budget=budget,
                        dtype=dtype,
                        report=report,
                        raw=True,
                    )
                )
                if progress:
                    progress((i + 1) / len(windows), f"{kernel.name}: window {i + 1}/{len(windows)}")
        attr = lay.crop(kernel.transform(grad_full, xp[0].float(), bp.float()))
        info = {
            **info,
            **peak.as_dict(),
            "chunks": report.as_dict(),
            "windows": len(windows),
            "windows_total": len(lay.slices),
            "seconds": time.perf_counter() - start,
        }
        return attr, np.sum(scores, axis=0), info

    def run_cam(
        self, x: torch.Tensor, target, layer: str, plus: bool, *, precision: str = "auto", progress=None
    ) -> tuple[torch.Tensor, dict]:
        """Grad-CAM(++) per window, blended with the inference weights (a CAM is not linear in the target).

        Each window's CAM explains that window's share of the target; voxels take the importance-weighted
        mean of the windows that cover them (windows that do not touch the region are skipped).
        """
        from .cam import cam_batch

        lay, windows = self.window_targets(x.shape[2:], target, x.device)
        if not windows:
            raise XAIError("the target region lies outside every window", "check the region mask")
        xp = F.pad(x, lay.pad)
        total = torch.zeros(lay.padded, dtype=torch.float32, device=x.device)
        weight = torch.zeros_like(total)
        with PeakMemory(x.device) as peak:
            for i, (sl, wtarget) in enumerate(windows):
                xw = xp[(slice(None), slice(None), *sl)]
                if i == 0:
                    dtype, info = checked_dtype(self.model, xw, wtarget, precision, gradient=True)
                cam = cam_batch(self.model, xw, wtarget, layer, plus, dtype)[0]
                total[sl] += cam * lay.importance
                weight[sl] += lay.importance
                if progress:
                    progress((i + 1) / len(windows), f"CAM: window {i + 1}/{len(windows)}")
        cam = torch.where(weight > 0, total / weight.clamp_min(1e-12), torch.zeros_like(total))
        info.update({**peak.as_dict(), "windows": len(windows), "windows_total": len(lay.slices)})
        return lay.crop(cam), info

    def target_score(self, x: torch.Tensor, target) -> float:
        """``target(self(x))`` from the windows the target depends on only (equal by linearity)."""
        lay, windows = self.window_targets(x.shape[2:], target, x.device)
        xp = F.pad(x, lay.pad)
        total = 0.0
        with torch.inference_mode():
            for sl, wtarget in windows:
                total += float(wtarget(self.model(xp[(slice(None), slice(None), *sl)])).sum())
        return total
