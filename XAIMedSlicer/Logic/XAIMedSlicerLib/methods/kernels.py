"""Gradient kernels: the per-input part of a gradient method, shared by the method and by SmoothGrad.

A kernel says which points on the straight path from a baseline to an input it differentiates
(``nodes``: positions ``alpha`` and weights), how the weighted gradient sum becomes a per-channel
attribution (``transform``), and how channels are reduced to one map (``reduce``). Plain gradients use
the single node ``alpha = 1``; Integrated Gradients uses a quadrature rule.

:func:`attribute_inputs` runs a kernel over several inputs at once (noisy copies for SmoothGrad, or
just the input), batching all their points through :func:`~.gradients.accumulate_gradients`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import XAIError
from .budget import ChunkReport, MemoryBudget
from .gradients import accumulate_gradients

Transform = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GradientKernel:
    """The per-input recipe of a gradient method."""

    name: str
    signed: bool
    reduce: str  # "sum" or "max_abs" over channels
    nodes: Callable[[dict], tuple[np.ndarray, np.ndarray]]
    transform: Transform  # (weighted gradient sum, input, baseline) -> per-channel attribution


_KERNELS: dict[str, GradientKernel] = {}


def register_kernel(kernel: GradientKernel) -> GradientKernel:
    """Make a kernel available to SmoothGrad and the sliding-window engine under its name."""
    _KERNELS[kernel.name] = kernel
    return kernel


def get_kernel(name: str) -> GradientKernel:
    """The kernel called ``name``, with a one-line error listing the known ones."""
    try:
        return _KERNELS[name]
    except KeyError:
        raise XAIError(
            f"'{name}' is not a gradient method", f"use one of {', '.join(sorted(_KERNELS))}"
        ) from None


def reduce_channels(attr: torch.Tensor, how: str) -> torch.Tensor:
    """``(C, X, Y, Z) -> (X, Y, Z)``: channel sum, or the largest magnitude (saliency)."""
    return attr.sum(0) if how == "sum" else attr.abs().amax(0)


def attribute_inputs(
    kernel: GradientKernel,
    model,
    target,
    get_input: Callable[[int, torch.device], torch.Tensor],
    n_inputs: int,
    baseline: torch.Tensor,
    params: dict,
    finish: Callable[[int, torch.Tensor], None],
    *,
    device: torch.device,
    per_point_bytes: int,
    budget: MemoryBudget | None = None,
    dtype: torch.dtype | None = None,
    chunk: int | None = None,
    progress=None,
    report: ChunkReport | None = None,
    raw: bool = False,
) -> np.ndarray:
    """Apply ``kernel`` to inputs ``0..n_inputs-1``; ``finish(i, attribution (C, X, Y, Z))`` for each.

    ``get_input(i, device)`` returns input ``i`` as ``(C, X, Y, Z)`` and must give the same tensor when
    asked again (a chunk that runs out of memory is recomputed). With ``raw`` the weighted gradient sum
    is handed over before the kernel's transform. Returns the score of every point.
    """
    alphas, weights = kernel.nodes(params)
    n_nodes = len(alphas)
    owners = np.repeat(np.arange(n_inputs), n_nodes)
    all_alphas = np.tile(alphas, n_inputs)
    all_weights = np.tile(weights, n_inputs)

    def make_points(start: int, stop: int, dev: torch.device) -> torch.Tensor:
        base = baseline.to(dev)
        rows = []
        for p in range(start, stop):
            x_i = get_input(int(owners[p]), dev)
            rows.append(base + float(all_alphas[p]) * (x_i - base))
        return torch.stack(rows)

    def done(owner: int, grad_sum: torch.Tensor) -> None:
        if raw:
            finish(owner, grad_sum)
            return
        x_i = get_input(owner, grad_sum.device)
        finish(owner, kernel.transform(grad_sum, x_i, baseline.to(grad_sum.device)))

    return accumulate_gradients(
        model,
        target,
        make_points,
        owners,
        all_weights,
        done,
        device=device,
        per_item_bytes=per_point_bytes,
        budget=budget,
        dtype=dtype,
        chunk=chunk,
        progress=progress,
        label=kernel.name,
        report=report,
    )


def _single_node(_params: dict) -> tuple[np.ndarray, np.ndarray]:
    return np.ones(1), np.ones(1)


register_kernel(GradientKernel("gradient", True, "sum", _single_node, lambda g, x, b: g))
register_kernel(GradientKernel("saliency", False, "max_abs", _single_node, lambda g, x, b: g.abs()))
register_kernel(GradientKernel("input_x_gradient", True, "sum", _single_node, lambda g, x, b: x * g))
