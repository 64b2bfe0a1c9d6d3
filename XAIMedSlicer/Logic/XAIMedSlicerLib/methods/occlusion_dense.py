"""Occlusion scores of a class target through per-layer incremental inference (:mod:`.incremental_dense`).

The runner is built for the input and the boxes, checked against full forward passes on three boxes,
and run over the boxes in batches of one row each (boxes that differ only along the last axis), within
the memory budget; ``None`` tells the caller to use its other paths.
"""

from __future__ import annotations

import torch

from .boxes import Box
from .budget import MemoryBudget, model_on, run_chunks
from .incremental_dense import DenseIncremental
from .occlusion_verify import agrees_with_full_passes
from .precision import autocast


def dense_box_scores(model, x, boxes: list[Box], occlude, score, dtype, per_item_bytes: int, **chunking):
    """Scores of ``x`` occluded in each box through :class:`DenseIncremental`, or ``None``.

    ``None`` where the network cannot be run layer by layer, saves too little, or disagrees with full
    passes on three boxes. Boxes run in batches along the last axis (boxes of one row have regions of
    nearly one size). ``chunking``: ``budget``, ``chunk``, ``progress``, ``report``, ``info``.
    """
    info, progress = chunking.pop("info"), chunking.pop("progress", None)
    with torch.inference_mode():
        try:
            inc = DenseIncremental.build(model, x, boxes)
        except Exception:  # noqa: BLE001 - an operation the analysis cannot run: the other paths
            inc = None
        if inc is None or not _agrees(inc, model, x, boxes, occlude, score):
            return None
    budget = chunking.get("budget") or MemoryBudget()
    kept = sum(v.numel() * v.element_size() for v in inc.base.values() if isinstance(v, torch.Tensor))
    if kept > budget.free_bytes(x.device) * budget.fraction:
        return None  # the kept layer outputs do not fit: the paths that keep less
    chunking["fixed_bytes"] = kept
    device = x.device
    rows: dict[Box, list[int]] = {}
    for i, box in enumerate(boxes):
        rows.setdefault(box[:-1], []).append(i)
    scores = torch.zeros(len(boxes), dtype=torch.float64)
    done = [0]
    for members in rows.values():

        def fn(lo: int, hi: int, dev: torch.device, members=members) -> None:
            ids = members[lo:hi]
            with torch.inference_mode(), autocast(dev, dtype):
                if dev == device:
                    out = inc.outputs([boxes[i] for i in ids], occlude, x)
                else:  # after running out of memory: plain full passes on the fallback device
                    xs = x.to(dev).expand(len(ids), *x.shape[1:]).clone()
                    for b, i in enumerate(ids):
                        occlude(xs[b : b + 1], boxes[i], (0,) * (x.ndim - 2))
                    out = model_on(model, dev)(xs)
                scores[ids] = score(out).double().cpu()
            done[0] += len(ids)
            if progress:
                progress(done[0] / len(boxes), f"occlusion: {done[0]}/{len(boxes)} boxes")

        run_chunks(
            len(members), fn, per_item_bytes=per_item_bytes, device=device, label="occlusion", **chunking
        )
    info.update(
        {
            "incremental": True,
            "incremental_mode": "per-layer",
            "estimated_fraction": round(inc.estimated_fraction, 4),
            "output_cropped": False,
            "forward_passes": len(boxes) + 1,
        }
    )
    return scores


def _agrees(inc: DenseIncremental, model, x, boxes: list[Box], occlude, score, rtol: float = 1e-4) -> bool:
    """The first, a middle and the last box (one batch) against full forward passes."""
    picks = sorted({0, len(boxes) // 2, len(boxes) - 1})

    def fast(ids: list[int]) -> torch.Tensor:
        return score(inc.outputs([boxes[i] for i in ids], occlude, x))

    return agrees_with_full_passes(fast, model, x, boxes, picks, occlude, score, rtol)
