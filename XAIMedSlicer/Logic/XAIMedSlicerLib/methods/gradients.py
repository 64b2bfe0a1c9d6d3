"""Batched input gradients: the engine behind saliency, SmoothGrad and Integrated Gradients.

A method describes its work as ``n_points`` input points (path points, noisy copies, ...). Each point
belongs to an *owner* (the attribution it contributes to) with a weight. Points are differentiated in
chunks sized by the memory budget; each owner's weighted gradient sum is handed to ``finish`` as soon
as its last point is done, so memory stays at one chunk plus the owners in flight.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
import torch

from .budget import ChunkReport, MemoryBudget, activation_bytes, model_on, run_chunks
from .precision import autocast, fast_layout


def point_gradients(
    model, points: torch.Tensor, target, dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(d target / d points, target scores)`` for a batch; one forward and one backward pass.

    Batch elements are independent (the model is in eval mode), so the gradient of the summed score
    is each element's own gradient. Gradients come back in fp32 whatever the autocast dtype.
    """
    points = fast_layout(points.detach(), dtype).requires_grad_(True)
    with torch.enable_grad():
        with autocast(points.device, dtype):
            scores = target(model(points)).float()
        (grad,) = torch.autograd.grad(scores.sum(), points)
    return grad.float().contiguous(), scores.detach()


_ESTIMATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def gradient_bytes_per_point(model, x: torch.Tensor, n_points: int | None = None, budget=None) -> int:
    """Estimated memory of one point's forward and backward pass (activations kept for backward).

    The estimate costs one forward pass and is cached per model and input shape. With ``n_points == 1``
    and no simulated device limit there is nothing to decide, and 0 is returned without a pass.
    """
    if n_points == 1 and (budget is None or budget.device_limit_bytes is None):
        return 0
    key = (tuple(x.shape[1:]), x.dtype, str(x.device))
    try:
        cache = _ESTIMATES.setdefault(model, {})
    except TypeError:  # not weak-referenceable
        cache = {}
    if key not in cache:
        total, _peak, _out = activation_bytes(model, x[:1])
        cache[key] = int(total * 1.5)
    return cache[key]


def accumulate_gradients(
    model,
    target,
    make_points: Callable[[int, int, torch.device], torch.Tensor],
    owners: np.ndarray,
    weights: np.ndarray,
    finish: Callable[[int, torch.Tensor], None],
    *,
    device: torch.device,
    per_item_bytes: int,
    budget: MemoryBudget | None = None,
    dtype: torch.dtype | None = None,
    chunk: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    label: str = "gradients",
    report: ChunkReport | None = None,
) -> np.ndarray:
    """Differentiate every point; call ``finish(owner, sum_p weight_p * grad_p)`` once per owner.

    Points are ordered owner by owner (an owner's points are contiguous).
    ``make_points(start, stop, device)`` builds points ``start..stop-1`` (shape ``(stop-start, C, ...)``).
    Returns the target score of every point (fp32), in point order.
    """
    owners = np.asarray(owners)
    weights = np.asarray(weights, dtype=np.float64)
    remaining = np.bincount(owners)
    pending: dict[int, torch.Tensor] = {}
    scores = np.zeros(len(owners), dtype=np.float64)

    def fn(start: int, stop: int, dev: torch.device) -> None:
        net = model_on(model, dev)
        grad, score = point_gradients(net, make_points(start, stop, dev), target, dtype)
        w = torch.as_tensor(weights[start:stop], dtype=torch.float32, device=dev)
        grad = grad * w.view((-1,) + (1,) * (grad.ndim - 1))
        scores[start:stop] = score.double().cpu().numpy()
        for owner in np.unique(owners[start:stop]):
            rows = np.nonzero(owners[start:stop] == owner)[0]
            part = grad[int(rows[0]) : int(rows[-1]) + 1].sum(0)
            acc = pending.get(int(owner))
            pending[int(owner)] = part if acc is None else acc.to(dev) + part
            remaining[owner] -= len(rows)
            if remaining[owner] == 0:
                finish(int(owner), pending.pop(int(owner)))

    run_chunks(
        len(owners),
        fn,
        per_item_bytes=per_item_bytes,
        device=device,
        budget=budget,
        chunk=chunk,
        report=report,
        progress=progress,
        label=label,
    )
    return scores
