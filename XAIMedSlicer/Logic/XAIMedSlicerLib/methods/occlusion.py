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
with fp32). For a class target each layer is recomputed only on the region a box changes (see
:mod:`.occlusion_dense`); otherwise, where the network can be split (:mod:`.incremental`), only the
part of the early layers that a box can change, and where the target reads only a region of the output
(a segmentation region), the last local layers run only on the region's box (see
:mod:`.incremental_tail`). The per-layer runner is chosen automatically on the CPU only: on an H200 it
was 4x slower than MONAI's batches of full passes at 96^3, so on a GPU ``"auto"`` runs batched full
passes for class targets (``incremental=True`` still asks for the incremental runners). All are
checked against full passes before use; the output is the same as with full forward passes (up to
float rounding). ``incremental=False`` runs plain full passes.
"""

from __future__ import annotations

import time
import weakref
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.data.utils import compute_importance_map
from monai.visualize import OcclusionSensitivity
from torch import nn

from ..errors import XAIError
from .budget import ChunkReport, MemoryBudget, PeakMemory, activation_bytes, model_on, run_chunks
from .incremental import IncrementalModel, trace
from .incremental_tail import TailRunner
from .occlusion_dense import dense_box_scores, scores_agree
from .occlusion_layout import Box, boxes_of, captum_axes, interpolate_scores, kept_indices, monai_axes
from .occlusion_sliding import sliding_box_scores
from .params import MethodParams, param
from .precision import PRECISIONS, autocast, checked_dtype
from .registry import Attribution, register
from .sliding import SlidingWindowModel
from .targets import Target

AUTO_INCREMENTAL_BOXES = 128  # below this, building and checking the split (about 8 passes) rarely pays
AUTO_PER_LAYER_BOXES = 16  # per-layer incremental inference (class targets) costs about 4 passes to set up
_SPLITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
    shape, win = tuple(x.shape[2:]), _tuple(window, nd)
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
            s0, scores = _local_scores(
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
                _target_box(target, shape),
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


def _target_box(target, shape: tuple[int, ...]) -> Box | None:
    """Bounding box of a region target's mask (the only output voxels its score reads), else None."""
    mask = getattr(target, "mask", None)
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != shape or not bool(mask.any()):
        return None
    idx = torch.nonzero(mask)
    return tuple((int(idx[:, d].min()), int(idx[:, d].max()) + 1) for d in range(len(shape)))


def _local_scores(
    model, x, boxes, occlude, score, incremental, dtype, budget, chunk, progress, report, info, out_box=None
):
    """``(score of x, score with each box occluded)``, batched, through the incremental split if any.

    Where the target reads only a region (``out_box``), the network's last local layers run only there.
    """
    device, shape = x.device, tuple(x.shape[2:])
    per_item, _peak, out0 = activation_bytes(model, x)
    with torch.inference_mode():
        s0 = float(score(out0).sum())

    inc = None
    if incremental != "auto":
        use = per_layer = bool(incremental)
    elif device.type == "cuda" and out_box is None:  # a class target on a GPU: batched full passes
        use = per_layer = False
    else:
        use = len(boxes) >= AUTO_INCREMENTAL_BOXES
        per_layer = use or len(boxes) >= AUTO_PER_LAYER_BOXES
    if per_layer and out_box is None:  # a class target: each layer recomputed only where a box changes it
        kw = {"budget": budget, "chunk": chunk, "progress": progress, "report": report, "info": info}
        scores = dense_box_scores(model, x, boxes, occlude, score, dtype, 3 * per_item // 2, **kw)
        if scores is not None:
            return s0, scores
    if use:
        window = tuple(max(b - a for a, b in axis) for axis in zip(*boxes, strict=True))
        inc = _incremental_model(model, x, window, boxes, occlude, score, info, out_box)
    # incremental=False: plain full passes (the reference path)
    runner = _tail_model(model, x, boxes, occlude, score, out_box) if inc is None and incremental else None
    info["incremental"] = inc is not None
    info["output_cropped"] = (inc.tail if inc is not None else runner) is not None
    full = tuple((0, n) for n in shape)
    crops = inc.crops_for(boxes, shape) if inc is not None else [full] * len(boxes)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, crop in enumerate(crops):
        groups[tuple(b - a for a, b in crop)].append(i)
    scores = torch.zeros(len(boxes), dtype=torch.float64)
    done = [0]
    for members in groups.values():

        def fn(lo: int, hi: int, dev: torch.device, members=members) -> None:
            ids = members[lo:hi]
            use_inc = inc is not None and dev == device
            parts = []
            for i in ids:
                region = crops[i] if use_inc else full
                part = x[(0, slice(None), *[slice(a, b) for a, b in region])].to(dev).clone()[None]
                occlude(part, boxes[i], tuple(a for a, _ in region))
                parts.append(part)
            xs = torch.cat(parts)
            with torch.inference_mode(), autocast(dev, dtype):
                if use_inc:
                    out = inc.outputs(xs, [crops[i] for i in ids], [boxes[i] for i in ids])
                else:
                    out = (runner if runner is not None and dev == device else model_on(model, dev))(xs)
                scores[ids] = score(out).double().cpu()
            done[0] += len(ids)
            if progress:
                progress(done[0] / len(boxes), f"occlusion: {done[0]}/{len(boxes)} boxes")

        run_chunks(
            len(members),
            fn,
            per_item_bytes=3 * per_item // 2 + x[0].numel() * x.element_size(),
            device=device,
            budget=budget,
            chunk=chunk,
            report=report,
            label="occlusion",
        )
    info["crops"] = len(groups)
    info["forward_passes"] = len(boxes) + 1
    return s0, scores


def _incremental_model(model, x, win, boxes, occlude, score, info: dict, out_box=None):
    """The split for this model, input shape, window and target box: built, checked and cached."""
    key = (tuple(x.shape), str(x.device), tuple(win), out_box)
    try:
        cache = _SPLITS.setdefault(model, {})
    except TypeError:  # not weak-referenceable (TorchScript): no incremental inference anyway
        return None
    if key in cache:
        inc = cache[key]
        if inc is not None:
            inc.rebase(x)
        return inc
    with torch.inference_mode():
        inc = IncrementalModel.build(model, x, win)
        if inc is not None and out_box is not None:
            inc.tail = _tail_runner(inc.suffix, tuple(inc.base), out_box)
    if inc is not None and not _verified(inc.outputs, model, x, boxes, occlude, score, inc.crop_for):
        inc, info["incremental_check"] = None, "failed; full forward passes used"
    cache[key] = inc
    return inc


def _tail_runner(gm, inputs: tuple, out_box: Box) -> TailRunner | None:
    try:
        return TailRunner.build(gm, inputs, out_box)
    except Exception:  # noqa: BLE001 - an operation the analysis does not know: run the whole output
        return None


def _tail_model(model, x, boxes, occlude, score, out_box) -> TailRunner | None:
    """The whole network with its output cropped to the target box: built, checked and cached."""
    if out_box is None:
        return None
    try:
        cache = _SPLITS.setdefault(model, {})
    except TypeError:
        return None
    key = ("tail", tuple(x.shape), str(x.device), out_box)
    if key not in cache:
        gm = trace(model)
        runner = _tail_runner(gm, (x,), out_box) if gm is not None else None
        whole = tuple((0, n) for n in x.shape[2:])
        if runner is not None and not _verified(
            lambda xs, _crops, _boxes: runner(xs), model, x, boxes, occlude, score, lambda _b: whole
        ):
            runner = None
        cache[key] = runner
    return cache[key]


def _verified(outputs, model, x, boxes: list[Box], occlude, score, crop_for, rtol: float = 1e-4) -> bool:
    """Compare the fast outputs with full passes on the first and the last box (the two corners)."""
    picks = sorted({0, len(boxes) - 1})
    with torch.inference_mode():
        for i in picks:
            full = x.clone()
            occlude(full, boxes[i], (0,) * (x.ndim - 2))
            ref = score(model(full))
            crop = crop_for(boxes[i])
            xs = x[(slice(None), slice(None), *[slice(a, b) for a, b in crop])].clone()
            occlude(xs, boxes[i], tuple(a for a, _ in crop))
            try:
                got = score(outputs(xs, [crop], [boxes[i]]))
            except Exception:  # noqa: BLE001 - a shape the fast path cannot handle: full passes
                return False
            if not scores_agree(got, ref, rtol):
                return False
    return True
