"""Integrated Gradients (Sundararajan et al. 2017), batched over steps.

The path integral of the gradient from a baseline to the input is computed with Gauss-Legendre
quadrature (exact for polynomials of degree 2n-1 along the path), or with Captum's Riemann rules.
"""

from __future__ import annotations

import numpy as np
import torch

from .registry import Attribution, register

RULES = ("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right")


def quadrature(steps: int, rule: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Nodes in [0, 1] and weights (summing to 1) of a quadrature rule with ``steps`` points."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if rule == "riemann_trapezoid":
        nodes = np.linspace(0, 1, steps)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return nodes, weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (np.arange(steps) + offset) / steps, np.full(steps, 1.0 / steps)


def path_gradients(model, x, baseline, target, alphas, weights, batch_size, progress=None) -> torch.Tensor:
    """Weighted sum over path points of d target / d input, evaluated ``batch_size`` points at a time."""
    total = torch.zeros_like(x, dtype=torch.float32)
    delta = x - baseline
    n = len(alphas)
    for start in range(0, n, batch_size):
        a = torch.as_tensor(alphas[start : start + batch_size], dtype=x.dtype, device=x.device)
        w = torch.as_tensor(weights[start : start + batch_size], dtype=torch.float32, device=x.device)
        shape = (-1,) + (1,) * (x.ndim - 1)
        points = (baseline + a.view(shape) * delta).requires_grad_(True)
        with torch.enable_grad():
            score = target(model(points)).sum()
            (grad,) = torch.autograd.grad(score, points)
        total += (grad.float() * w.view(shape)).sum(dim=0, keepdim=True)
        if progress:
            progress(min(1.0, (start + len(a)) / n), f"IG: {start + len(a)}/{n} path points")
    return total


@register(
    "ig", signed=True, description="Integrated Gradients with Gauss-Legendre quadrature, batched over steps"
)
def integrated_gradients(
    model,
    x: torch.Tensor,
    target,
    *,
    steps: int = 16,
    rule: str = "gausslegendre",
    baseline: float = 0.0,
    batch_size: int = 4,
    progress=None,
    **_,
) -> Attribution:
    """Attribution ``(x - baseline) * integral of gradients``, summed over channels."""
    if rule not in RULES:
        from ..errors import XAIError

        raise XAIError(f"unknown IG rule '{rule}'", f"use one of {', '.join(RULES)}")
    base = torch.full_like(x, float(baseline))
    alphas, weights = quadrature(int(steps), rule)
    grads = path_gradients(model, x, base, target, alphas, weights, max(1, int(batch_size)), progress)
    attr = ((x - base).float() * grads)[0]
    with torch.no_grad():
        f_x = float(target(model(x)).sum())
        f_b = float(target(model(base)).sum())
    total = float(attr.sum())
    info = {
        "f_input": f_x,
        "f_baseline": f_b,
        "attribution_sum": total,
        "completeness_error": abs(total - (f_x - f_b)) / max(abs(f_x - f_b), 1e-12),
        "passes": int(steps),
    }
    params = {"steps": int(steps), "rule": rule, "baseline": float(baseline), "batch_size": int(batch_size)}
    return Attribution(attr.sum(dim=0).cpu(), signed=True, method="ig", params=params, info=info)
