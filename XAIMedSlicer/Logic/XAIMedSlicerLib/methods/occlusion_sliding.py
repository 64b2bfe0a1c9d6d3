"""Occlusion on full-size volumes: only the inference windows a box touches are rerun.

With a :class:`~.sliding.SlidingWindowModel` the target is a sum of per-window targets (see
:mod:`.sliding`). Occluding a box changes only the windows that overlap it, and only windows that
touch the target region count, so the score of the occluded volume is
``score(x) + sum over those windows of (window score occluded - window score)``. This equals rerunning
the whole sliding-window inference for every box, at the cost of a few windows per box; boxes that
touch no counted window do not change the score and are not run at all.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .boxes import Box
from .budget import ChunkReport, MemoryBudget, activation_bytes, model_on, run_chunks
from .precision import autocast


def _overlaps(box: Box, window: tuple[slice, ...], pad_lo: tuple[int, ...]) -> bool:
    return all(a + p < s.stop and b + p > s.start for (a, b), s, p in zip(box, window, pad_lo, strict=True))


def sliding_box_scores(
    model,
    x: torch.Tensor,
    boxes: list[Box],
    occlude: Callable[[torch.Tensor, Box, tuple[int, ...]], None],
    target,
    *,
    dtype: torch.dtype | None = None,
    budget: MemoryBudget | None = None,
    chunk: int | None = None,
    progress=None,
    report: ChunkReport | None = None,
) -> tuple[float, torch.Tensor, dict]:
    """``(score of x, score of x with each box occluded, info)`` for a sliding-window model."""
    lay, windows = model.window_targets(x.shape[2:], target, x.device)
    nd = x.ndim - 2
    pad_lo = tuple(lay.pad[2 * (nd - 1 - d)] for d in range(nd))
    xp = F.pad(x, lay.pad)
    net = model.model

    def window_input(w: int) -> torch.Tensor:
        return xp[(slice(None), slice(None), *windows[w][0])]

    per_item, _peak, _out = activation_bytes(net, window_input(0)) if windows else (1, 0, None)

    def scores(pairs: list[tuple[int, int | None]], dev: torch.device) -> torch.Tensor:
        """Window scores for ``(window, box or None)`` pairs, the box occluded in window coordinates."""
        parts = []
        for w, b in pairs:
            part = window_input(w).to(dev).clone()
            if b is not None:
                occlude(
                    part, boxes[b], tuple(s.start - p for s, p in zip(windows[w][0], pad_lo, strict=True))
                )
            parts.append(part)
        with torch.inference_mode(), autocast(dev, dtype):
            out = model_on(net, dev)(torch.cat(parts)).float()
        return torch.cat([windows[w][1](out[i : i + 1]) for i, (w, _b) in enumerate(pairs)]).double().cpu()

    def run(pairs: list[tuple[int, int | None]], label: str) -> torch.Tensor:
        results = run_chunks(
            len(pairs),
            lambda lo, hi, dev: scores(pairs[lo:hi], dev),
            per_item_bytes=3 * per_item // 2,
            device=x.device,
            budget=budget,
            chunk=chunk,
            report=report,
            progress=progress,
            label=label,
        )
        return torch.cat(results) if results else torch.zeros(0, dtype=torch.float64)

    base = run([(w, None) for w in range(len(windows))], "occlusion: windows")
    s0 = float(base.sum())
    pairs = [
        (w, b)
        for b, box in enumerate(boxes)
        for w in range(len(windows))
        if _overlaps(box, windows[w][0], pad_lo)
    ]
    changed = run(pairs, "occlusion: boxes x windows")
    result = torch.full((len(boxes),), s0, dtype=torch.float64)
    for (w, b), value in zip(pairs, changed.tolist(), strict=True):
        result[b] += value - float(base[w])
    info = {
        "windows": len(windows),
        "windows_total": len(lay.slices),
        "window_passes": len(windows) + len(pairs),
        "boxes_touching_region_windows": len({b for _w, b in pairs}),
    }
    return s0, result, info
