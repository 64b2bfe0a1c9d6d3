"""Integrated Gradients (Sundararajan et al. 2017), batched over steps up to the memory budget.

The path integral of the gradient from a baseline to the input is computed with one of these rules:

* ``adaptive`` (the default): the trapezoid rule on nodes that start at ``0, 1/3, 2/3, 1`` and are
  refined, round by round, by halving the intervals where the attribution changes most
  (``length x ||attribution(b) - attribution(a)||``, known from the passes already made). Each
  interval's share is then corrected by the exact score difference ``f(b) - f(a)`` that the same
  passes measure, spread in proportion to the interval's attribution magnitudes, so the completeness
  error is zero by construction at any number of passes, with no extra forward pass.
* ``completeness_corrected``: the same on evenly spaced nodes.
* ``gausslegendre`` and Captum's Riemann rules (``riemann_trapezoid`` etc.), as in Captum.

On ReLU networks the path gradient jumps at every unit that switches, so every rule's map error falls
only about as 1/passes; no rule matches a 32-pass map in 8 passes (the benchmark ``bench/bench_ig.py``
reports completeness and map error against passes). Where the switching is concentrated on part of the
path (MeshNet), the adaptive nodes are much better per pass; where it is spread evenly (DenseNet121),
all rules are within about 10% of each other. Sliding-window models use ``gausslegendre`` by default
(their windows are differentiated in one fixed set of passes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import XAIError
from .budget import ChunkReport, PeakMemory
from .gradient_method import make_baseline, run_kernel
from .gradients import accumulate_gradients, gradient_bytes_per_point
from .kernels import GradientKernel, register_kernel
from .params import MethodParams, param
from .precision import PRECISIONS, checked_dtype
from .registry import Attribution, register
from .sliding import SlidingWindowModel
from .targets import Target

RULES = ("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right")
TRAPEZOID_RULES = ("adaptive", "completeness_corrected")
ALL_RULES = (*RULES, *TRAPEZOID_RULES)
DEFAULT_RULE = "adaptive"


def quadrature(steps: int, rule: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Nodes in [0, 1] and weights (summing to 1) of a quadrature rule with ``steps`` points."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if rule in ("riemann_trapezoid", *TRAPEZOID_RULES):
        nodes = np.linspace(0, 1, steps)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return nodes, weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (np.arange(steps) + offset) / steps, np.full(steps, 1.0 / steps)


def _nodes(params: dict) -> tuple[np.ndarray, np.ndarray]:
    rule = params.get("rule", "gausslegendre")
    if rule not in RULES:
        raise XAIError(f"IG rule '{rule}' cannot be used here", f"use one of {', '.join(RULES)}")
    return quadrature(int(params.get("steps", 16)), rule)


register_kernel(GradientKernel("ig", True, "sum", _nodes, lambda g, x, b: (x - b) * g))


def corrected_trapezoid(
    model,
    x: torch.Tensor,
    base: torch.Tensor,
    target,
    steps: int,
    *,
    adaptive: bool = False,
    precision,
    budget,
    chunk,
    progress,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, dict]:
    """IG by the completeness-corrected trapezoid rule: ``(attribution (C, ...), nodes, node scores, info)``.

    With ``adaptive`` the nodes start as ``0, 1/3, 2/3, 1`` and, round by round, the intervals with the
    largest ``length x ||attribution change||`` are halved until ``steps`` nodes are differentiated.
    """
    if steps < 2:
        raise XAIError("the trapezoid-based IG rules need at least 2 steps", "set steps >= 2")
    delta = (x[0] - base).float()
    dtype, info = checked_dtype(model, x, target, precision, gradient=True)
    per_item = gradient_bytes_per_point(model, x, steps, budget)
    report = ChunkReport()
    nodes: list[float] = []
    maps: list[torch.Tensor] = []
    scores: list[float] = []

    def evaluate(alphas: np.ndarray) -> None:
        done = len(nodes)
        found: dict[int, torch.Tensor] = {}

        def make_points(start: int, stop: int, dev: torch.device) -> torch.Tensor:
            a = torch.as_tensor(alphas[start:stop], dtype=x.dtype, device=dev).view(-1, *[1] * (x.ndim - 1))
            return base.to(dev) + a * (x[0].to(dev) - base.to(dev))

        def step_progress(fraction: float, _message: str) -> None:
            finished = done + fraction * len(alphas)
            progress(min(1.0, finished / steps), f"IG: {round(finished)}/{steps} path points")

        got = accumulate_gradients(
            model,
            target,
            make_points,
            np.arange(len(alphas)),
            np.ones(len(alphas)),
            lambda i, g: found.__setitem__(i, delta.to(g.device) * g),
            device=x.device,
            per_item_bytes=per_item,
            budget=budget,
            dtype=dtype,
            chunk=chunk,
            progress=step_progress if progress else None,
            label="IG",
            report=report,
        )
        nodes.extend(float(a) for a in alphas)
        maps.extend(found[i].to(x.device) for i in range(len(alphas)))
        scores.extend(float(v) for v in got)

    with PeakMemory(x.device) as peak:
        evaluate(np.linspace(0, 1, min(steps, 4) if adaptive else steps))
        while len(nodes) < steps:
            order = np.argsort(nodes, kind="stable")
            a = np.asarray(nodes)[order]
            change = [
                (a[k + 1] - a[k]) * float((maps[order[k + 1]] - maps[order[k]]).norm())
                for k in range(len(a) - 1)
            ]
            count = min(max(2, len(nodes) // 4), steps - len(nodes))
            picks = np.argsort(-np.asarray(change), kind="stable")[:count]
            evaluate(np.sort((a[picks] + a[picks + 1]) / 2))
    order = np.argsort(nodes, kind="stable")
    alphas, values = np.asarray(nodes)[order], np.asarray(scores)[order]
    total = torch.zeros_like(delta)
    for k in range(len(alphas) - 1):
        lo, hi = maps[order[k]], maps[order[k + 1]]
        part = (lo + hi) * ((alphas[k + 1] - alphas[k]) / 2)
        # the interval's exact share f(b) - f(a), spread in proportion to the attribution magnitudes
        residual = float(values[k + 1] - values[k]) - float(part.sum())
        magnitude = part.abs()
        norm = float(magnitude.sum())
        if norm > 0:
            part = part + residual * magnitude / norm
        total += part
    info = {**info, **peak.as_dict(), "chunks": report.as_dict(), "nodes": [round(v, 6) for v in alphas]}
    return total, alphas, values, info


def _end_scores(model, x, base, target, alphas: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """``f(input)`` and ``f(baseline)``: from the path points where the rule has them, else a forward pass."""
    ends = []
    for end, point in ((1.0, x), (0.0, base[None])):
        hit = np.nonzero(np.isclose(alphas, end, rtol=0, atol=1e-12))[0]
        if len(hit):
            ends.append(float(scores[hit[0]]))
        elif isinstance(model, SlidingWindowModel):
            ends.append(model.target_score(point, target))
        else:
            with torch.inference_mode():
                ends.append(float(target(model(point)).sum()))
    return ends[0], ends[1]


@dataclass(frozen=True)
class IGParams(MethodParams):
    """Integrated Gradients parameters."""

    steps: int = param(16, "path points (gradient evaluations) of the rule", minimum=1)
    rule: str | None = param(None, "quadrature rule; default adaptive (CPU) / completeness_corrected (GPU)",
                             choices=ALL_RULES)  # fmt: skip
    baseline: float = param(0.0, "constant baseline image value")
    batch_size: int | None = param(None, "path points per pass; default from the memory budget", minimum=1)
    precision: str = param("auto", "arithmetic precision", choices=PRECISIONS)


@register(
    "ig",
    signed=True,
    params=IGParams,
    description="Integrated Gradients: complete adaptive trapezoid (default) or Gauss-Legendre, batched",
)
def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    steps: int = 16,
    rule: str | None = None,
    baseline: float = 0.0,
    batch_size: int | None = None,
    precision: str = "auto",
    budget=None,
    progress=None,
) -> Attribution:
    """Attribution ``(x - baseline) * integral of gradients``, summed over channels.

    ``rule`` defaults to ``adaptive`` on the CPU, ``completeness_corrected`` on a GPU (its nodes run as
    one batched set; the adaptive rule's small rounds leave a GPU idle) and ``gausslegendre`` for
    sliding-window models. ``batch_size`` fixes the number of path points per pass; by default it comes
    from the memory budget.
    """
    if rule is None:
        if isinstance(model, SlidingWindowModel):
            rule = "gausslegendre"
        elif x.device.type == "cuda":  # one batched set of nodes: the adaptive rounds starve a GPU
            rule = "completeness_corrected"
        else:
            rule = DEFAULT_RULE
    if rule not in ALL_RULES:
        raise XAIError(f"unknown IG rule '{rule}'", f"use one of {', '.join(ALL_RULES)}")
    steps = int(steps)
    chunk = int(batch_size) if batch_size else None
    base = make_baseline(x, baseline)
    if rule in TRAPEZOID_RULES:
        attr, alphas, scores, info = corrected_trapezoid(
            model,
            x,
            base,
            target,
            steps,
            adaptive=rule == "adaptive",
            precision=precision,
            budget=budget,
            chunk=chunk,
            progress=progress,
        )
    else:
        params = {"steps": steps, "rule": rule}
        attr, scores, info = run_kernel(
            "ig",
            model,
            x,
            target,
            params,
            baseline=base,
            precision=precision,
            budget=budget,
            chunk=chunk,
            progress=progress,
        )
        alphas = quadrature(steps, rule)[0]
    f_x, f_b = _end_scores(model, x, base, target, alphas, scores)
    total = float(attr.sum())
    info.update(
        {
            "f_input": f_x,
            "f_baseline": f_b,
            "attribution_sum": total,
            "completeness_error": abs(total - (f_x - f_b)) / max(abs(f_x - f_b), 1e-12),
            "passes": steps,
        }
    )
    params = {"steps": steps, "rule": rule, "baseline": float(baseline), "batch_size": batch_size}
    return Attribution(attr.sum(dim=0).cpu(), signed=True, method="ig", params=params, info=info)
