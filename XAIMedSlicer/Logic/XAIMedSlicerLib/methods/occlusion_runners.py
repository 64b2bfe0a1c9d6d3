"""Occlusion's fast paths behind one interface: :func:`box_scores` chooses a runner, checks it, runs it.

Given the input, the boxes, how to occlude one and how to score an output, :func:`box_scores` returns
``(score of x, score with each box occluded)``. The runners, from fastest to the reference:

* per-layer incremental inference for class targets (:mod:`.occlusion_dense`): each layer recomputed
  only where a box changes it;
* the prefix split (:mod:`.incremental`): the early layers run on the crop a box can change, the rest
  on the full grid; with a region target the last local layers also run only on the region's box;
* the tail crop (:mod:`.incremental_tail`): full passes whose last local layers run only on the box of
  the region the target reads;
* full forward passes in memory-sized batches (``incremental=False``; the reference path).

The chooser (:func:`box_scores`) picks by device, target and box count; every fast runner is checked
against full passes by the one verifier (:func:`.occlusion_verify.agrees_with_full_passes`) before use
and cached per model, input shape and window.
"""

from __future__ import annotations

import weakref
from collections import defaultdict

import torch

from .boxes import Box, slices
from .budget import activation_bytes, model_on, run_chunks
from .incremental import IncrementalModel, trace
from .incremental_tail import TailRunner
from .occlusion_dense import dense_box_scores
from .occlusion_verify import agrees_with_full_passes
from .precision import autocast

AUTO_INCREMENTAL_BOXES = 128  # below this, building and checking the split (about 8 passes) rarely pays
AUTO_PER_LAYER_BOXES = 16  # per-layer incremental inference (class targets) costs about 4 passes to set up
_SPLITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def box_scores(
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
    """A runner that takes cropped inputs, checked on the first and the last box (the two corners)."""

    def fast(ids: list[int]) -> torch.Tensor:
        got = []
        for i in ids:
            crop = crop_for(boxes[i])
            xs = x[(slice(None), slice(None), *slices(crop))].clone()
            occlude(xs, boxes[i], tuple(a for a, _ in crop))
            got.append(score(outputs(xs, [crop], [boxes[i]])))
        return torch.cat(got)

    return agrees_with_full_passes(fast, model, x, boxes, sorted({0, len(boxes) - 1}), occlude, score, rtol)
