"""Run one gradient kernel on one input: device, budget, precision check, peak memory, provenance.

Every gradient method (saliency, gradient x input, Integrated Gradients) calls :func:`run_kernel` and
gets back the per-channel attribution, the scores of its points and an ``info`` dict with the chunk
sizes, the precision used and the peak memory. Full-size volumes wrapped in a
:class:`~.sliding.SlidingWindowModel` are handled window by window.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .budget import ChunkReport, MemoryBudget, PeakMemory
from .gradients import gradient_bytes_per_point
from .kernels import attribute_inputs, get_kernel
from .precision import checked_dtype


def make_baseline(x: torch.Tensor, baseline) -> torch.Tensor:
    """A baseline tensor like ``x[0]`` from a number or a tensor."""
    if isinstance(baseline, torch.Tensor):
        return baseline.to(device=x.device, dtype=x.dtype).reshape(x.shape[1:])
    return torch.full_like(x[0], float(baseline))


def run_kernel(
    kernel_name: str,
    model,
    x: torch.Tensor,
    target,
    params: dict,
    *,
    baseline=0.0,
    precision: str = "auto",
    budget: MemoryBudget | None = None,
    chunk: int | None = None,
    progress=None,
) -> tuple[torch.Tensor, np.ndarray, dict]:
    """``(attribution (C, X, Y, Z) fp32, point scores, info)`` of one kernel on the input ``x`` (1, C, ...)."""
    kernel = get_kernel(kernel_name)
    base = make_baseline(x, baseline)
    from .sliding import SlidingWindowModel

    if isinstance(model, SlidingWindowModel):
        return model.run_kernel(
            kernel, x, target, params, base, precision=precision, budget=budget, progress=progress
        )
    start = time.perf_counter()
    dtype, prec_info = checked_dtype(model, x, target, precision, gradient=True)
    per_point = gradient_bytes_per_point(model, x, len(kernel.nodes(params)[0]), budget)
    report = ChunkReport()
    result: dict[int, torch.Tensor] = {}
    with PeakMemory(x.device) as peak:
        scores = attribute_inputs(
            kernel,
            model,
            target,
            lambda _i, dev: x[0].to(dev),
            1,
            base,
            params,
            lambda i, attr: result.__setitem__(i, attr),
            device=x.device,
            per_point_bytes=per_point,
            budget=budget,
            dtype=dtype,
            chunk=chunk,
            progress=progress,
            report=report,
        )
    info = {
        **prec_info,
        **peak.as_dict(),
        "chunks": report.as_dict(),
        "points": int(len(scores)),
        "seconds": time.perf_counter() - start,
    }
    return result[0].float(), scores, info
