"""Robustness: max-sensitivity of a map under small input noise (Yeh et al. 2019).

``max_i ||E(x + d_i) - E(x)|| / ||E(x)||`` over ``n_samples`` perturbations ``d_i`` drawn uniformly from
``[-radius, radius]`` per voxel (seeded), Frobenius norms. Same definition as Quantus 0.6.0
``MaxSensitivity`` (its defaults: difference, Frobenius norm, no normalisation or absolute values).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import XAIError
from .arrays import as_numpy
from .perturbation import check_input
from .randomisation import to_map_fn
from .results import JSONResult

Progress = Callable[[float, str], None]


@dataclass
class MaxSensitivityResult(JSONResult):
    """The largest relative change of the map, and every sample's value."""

    method: str
    max_sensitivity: float
    sensitivities: list[float]
    radius: float
    n_samples: int
    seed: int


def uniform_perturbations(x: torch.Tensor, radius: float, n_samples: int, seed: int) -> list[torch.Tensor]:
    """``n_samples`` seeded noise tensors shaped like ``x``, uniform in [-radius, radius]."""
    if radius <= 0 or n_samples < 1:
        raise XAIError(
            f"need radius > 0 and n_samples >= 1 (got {radius}, {n_samples})",
            "use e.g. radius 0.02, 10 samples",
        )
    rng = np.random.default_rng(seed)
    return [
        torch.from_numpy(rng.uniform(-radius, radius, size=tuple(x.shape)).astype(np.float32)).to(
            x.device, x.dtype
        )
        for _ in range(n_samples)
    ]


def max_sensitivity(
    model,
    x: torch.Tensor,
    target,
    explain,
    *,
    radius: float = 0.02,
    n_samples: int = 10,
    seed: int = 0,
    perturbations: Sequence[torch.Tensor] | None = None,
    attribution=None,
    method: str | None = None,
    progress: Progress | None = None,
) -> MaxSensitivityResult:
    """Max-sensitivity of ``explain`` (a method name or ``fn(model, x, target)``) at input ``x``.

    ``perturbations`` replaces the seeded uniform noise with given noise tensors; ``attribution``
    gives the unperturbed map when it is already computed.
    """
    check_input(x)
    run = to_map_fn(explain)
    name = method or (explain if isinstance(explain, str) else getattr(explain, "__name__", "method"))
    noise = (
        list(perturbations)
        if perturbations is not None
        else uniform_perturbations(x, radius, n_samples, seed)
    )
    base = run(model, x, target) if attribution is None else as_numpy(attribution, np.float64)
    denom = float(np.linalg.norm(base.reshape(-1)))
    if denom == 0:
        raise XAIError(
            f"the {name} map is zero everywhere", "check the target: its score must depend on the input"
        )
    values = []
    for n, d in enumerate(noise, start=1):
        changed = run(model, x + d, target)
        values.append(float(np.linalg.norm((changed - base).reshape(-1)) / denom))
        if progress:
            progress(n / len(noise), f"max-sensitivity {n}/{len(noise)}")
    return MaxSensitivityResult(
        method=name,
        max_sensitivity=max(values),
        sensitivities=values,
        radius=float(radius) if perturbations is None else float(max(float(d.abs().max()) for d in noise)),
        n_samples=len(noise),
        seed=seed,
    )
