"""Occlusion sensitivity: the drop of the target score when a box of the input is hidden.

Each voxel's attribution is the weighted mean, over the boxes that cover it, of
``score(x) - score(x with the box occluded)``. Two layouts reproduce the reference libraries:

* ``style="captum"`` (default): boxes of ``window`` voxels every ``stride`` voxels from the origin, the
  last one cut at the border, replaced by ``baseline``, equal weights; identical to Captum's
  ``Occlusion`` with ``sliding_window_shapes=(C, *window)`` and ``strides=(C, *stride)``.
* ``style="monai"``: MONAI's ``OcclusionSensitivity`` layout (``overlap``), its Gaussian occluder and
  Gaussian blending, and its activation (sigmoid for one input channel, else softmax); the map equals
  ``p(x) - occ_map``, where ``occ_map`` is MONAI's output for the target class.

``subsample=k`` scores only every k-th window position along each axis (and the last) and interpolates
the scores of the others multilinearly in the position index: for heavily overlapping layouts such as
MONAI's default (``overlap=0.6``) this needs about ``k**3`` times fewer passes for a nearly equal map.

Boxes run in memory-sized batches under ``inference_mode`` (mixed precision on the GPU where it agrees
with fp32) through :func:`.occlusion_runners.box_scores`, which chooses among the fast runners
(per-layer for class targets, the prefix split, the output-cropped tail) and full passes, and checks
each fast runner against full passes before use: the output is the same as with full forward passes
(up to float rounding). ``incremental=False`` runs plain full passes. Full-size volumes behind a
:class:`~.sliding.SlidingWindowModel` rerun only the windows a box touches (:mod:`.occlusion_sliding`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.data.utils import compute_importance_map
from monai.visualize import OcclusionSensitivity
from torch import nn

from ..errors import XAIError
from .boxes import Box, mask_box
from .budget import ChunkReport, MemoryBudget, PeakMemory
from .occlusion_layout import boxes_of, captum_axes, interpolate_scores, kept_indices, monai_axes
from .occlusion_runners import box_scores
from .occlusion_sliding import sliding_box_scores
from .params import MethodParams, param
from .precision import PRECISIONS, checked_dtype
from .registry import Attribution, register
from .sliding import SlidingWindowModel
from .targets import Target


def _activation(name, in_channels: int):
    if name in (None, False, "none"):
        return lambda out: out
    if name == "auto":  # MONAI: sigmoid when the *input* has one channel, else softmax
        name = "sigmoid" if in_channels == 1 else "softmax"
    if name == "sigmoid":
        return torch.sigmoid
    if name == "softmax":
        return lambda out: out.softmax(1)
    raise XAIError(f"unknown activation '{name}'", "use none, auto, sigmoid or softmax")


def _tuple(v, n: int) -> tuple[int, ...]:
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v),) * n


@dataclass(frozen=True)
class OcclusionParams(MethodParams):
    """Occlusion sensitivity parameters."""

    window: int | tuple = param(16, "box size in voxels (one number or one per axis)", minimum=1)
    stride: int | tuple = param(8, "box step in voxels, captum style (one number or one per axis)", minimum=1)
    baseline: float = param(0.0, "value inside the box, captum style")
    style: str = param("captum", "box layout and fill", choices=("captum", "monai"))
    overlap: float = param(0.6, "box overlap, monai style", minimum=0.0, maximum=0.99)
    activate: str | bool | None = param(None, "output activation before the score",
                                        choices=("none", "auto", "sigmoid", "softmax"))  # fmt: skip
    subsample: int = param(1, "run every n-th box per axis and interpolate the rest", minimum=1)
    incremental: bool | str = param("auto", "recompute only what a box changes", choices=("auto",))
    precision: str = param("fp32", "arithmetic precision (the map holds small score differences)",
                           choices=PRECISIONS)  # fmt: skip
    chunk: int | None = param(None, "boxes per pass; default from the memory budget", minimum=1)


@register(
    "occlusion",
    signed=True,
    params=OcclusionParams,
    description="occlusion sensitivity, batched, recomputing only what a box changes",
)
def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    window=16,
    stride=8,
    baseline: float = 0.0,
    style: str = "captum",
    overlap: float = 0.6,
    activate=None,
    subsample: int = 1,
    incremental: bool | str = "auto",
    precision: str = "fp32",  # the map holds score differences, below bf16 resolution of the score
    budget: MemoryBudget | None = None,
    chunk: int | None = None,
    progress=None,
) -> Attribution:
    """Mean score drop over the boxes covering each voxel."""
    start_time = time.perf_counter()
    nd = x.ndim - 2
    shape = tuple(x.shape[2:])
    # a one-slice axis (a radiograph as a one-slice volume) takes a one-voxel box, whatever the window
    win = tuple(1 if n == 1 else w for w, n in zip(_tuple(window, nd), shape, strict=True))
    device = x.device
    if style == "captum":
        axes = captum_axes(shape, win, _tuple(stride, nd))
        mul, add, blend = torch.zeros((), device=device), float(baseline), None
    elif style == "monai":
        axes = monai_axes(shape, win, float(overlap))
        mul, add = OcclusionSensitivity.gaussian_occlusion(x, win)
        mul = mul[0]
        blend = compute_importance_map(win, mode="gaussian", sigma_scale=0.125, device=device)
        activate = "auto" if activate is None else activate
    else:
        raise XAIError(f"unknown occlusion style '{style}'", "use captum or monai")
    act = _activation(activate, x.shape[1])
    all_boxes = boxes_of(axes)
    keep = [kept_indices(len(a), max(1, int(subsample))) for a in axes]
    boxes = boxes_of([[a[i] for i in k] for a, k in zip(axes, keep, strict=True)])

    def score(out: torch.Tensor) -> torch.Tensor:
        return target(act(out.float())).float()

    def occlude(region: torch.Tensor, box: Box, crop_start: tuple[int, ...]) -> None:
        """Occlude the part of ``box`` (global coordinates) inside ``region`` (1 item, C, crop...) in place."""
        dst, src = [slice(None), slice(None)], [slice(None)]
        for (a, b), c, n in zip(box, crop_start, region.shape[2:], strict=True):
            lo, hi = max(a - c, 0), min(b - c, n)
            if lo >= hi:
                return
            dst.append(slice(lo, hi))
            src.append(slice(lo + c - a, hi + c - a))
        m = mul if mul.ndim == 0 else mul[tuple(src)]
        region[tuple(dst)] = region[tuple(dst)] * m + add

    report = ChunkReport()
    with PeakMemory(device) as peak:
        if isinstance(model, SlidingWindowModel):
            if activate not in (None, False, "none"):
                raise XAIError(
                    "an activation of the blended output cannot be split over sliding windows",
                    "use style='captum' (no activation) for full-size volumes",
                )
            lay = model.layout(shape)
            first_window = F.pad(x, lay.pad)[(slice(None), slice(None), *lay.slices[0])]
            dtype, info = checked_dtype(
                model.model, first_window, lambda o: o.flatten(1).sum(1), precision, gradient=False
            )
            s0, scores, extra = sliding_box_scores(
                model,
                x,
                boxes,
                occlude,
                target,
                dtype=dtype,
                budget=budget,
                chunk=chunk,
                progress=progress,
                report=report,
            )
            info.update({**extra, "incremental": False, "forward_passes": extra["window_passes"]})
        else:
            dtype, info = checked_dtype(model, x, lambda o: score(o), precision, gradient=False)
            s0, scores = box_scores(
                model,
                x,
                boxes,
                occlude,
                score,
                incremental,
                dtype,
                budget,
                chunk,
                progress,
                report,
                info,
                mask_box(getattr(target, "mask", None), shape),
            )
    if len(boxes) < len(all_boxes):
        scores = interpolate_scores(scores.reshape([len(k) for k in keep]), keep, [len(a) for a in axes])
    total = torch.zeros(shape, dtype=torch.float64)
    weight = torch.zeros(shape, dtype=torch.float64)
    for i, box in enumerate(all_boxes):
        sl = tuple(slice(a, b) for a, b in box)
        w = 1.0 if blend is None else blend[tuple(slice(0, b - a) for a, b in box)].double().cpu()
        total[sl] += w * (s0 - float(scores[i]))
        weight[sl] += w
    attr = torch.where(weight > 0, total / weight.clamp_min(1e-300), torch.zeros_like(total)).float()
    info.update(
        {
            **peak.as_dict(),
            "chunks": report.as_dict(),
            "boxes": len(all_boxes),
            "score": s0,
            "seconds": time.perf_counter() - start_time,
        }
    )
    params = {
        "window": list(win),
        "stride": list(_tuple(stride, nd)),
        "baseline": float(baseline),
        "style": style,
        "overlap": float(overlap),
        "activate": activate,
        "incremental": incremental,
        "subsample": int(subsample),
    }
    return Attribution(attr, signed=True, method="occlusion", params=params, info=info)
