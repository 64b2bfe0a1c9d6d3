"""Cascading model-parameter randomisation test (Adebayo et al. 2018), on a deep copy of the model.

Layers are re-initialised from the top (output) layer down, one more at each step; after each step
the map is recomputed and compared with the original: Spearman rank correlation of |map| and SSIM of
the maps scaled to [0, 1]. A method passes when its maps, averaged over the cascade, no longer rank
voxels like the original (mean Spearman below ``threshold``, Quantus' ``return_average_correlation``):
the map then depends on what the network learnt. Guided backpropagation, which Adebayo et al. found
insensitive to the weights, keeps a high correlation until the bottom layers are reached.

Re-initialisation follows Quantus 0.6.0 ``MPRT``: modules that have ``reset_parameters`` are reset in
reverse module order under ``torch.manual_seed(seed + 1)`` (inside a forked RNG, so the caller's
random state is untouched). The caller's model is never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import XAIError
from .arrays import as_numpy
from .results import JSONResult
from .similarity import normalise_map, spearman, ssim

Progress = Callable[[float, str], None]


@dataclass
class LayerScore(JSONResult):
    """Similarity to the original map once this layer and all above it are randomised."""

    layer: str
    spearman: float
    ssim: float


@dataclass
class RandomisationResult(JSONResult):
    """The cascade for one method, with the pass or fail flag."""

    method: str
    layers: list[LayerScore]
    passed: bool
    threshold: float
    mean_spearman: float
    mean_ssim: float
    final_spearman: float
    final_ssim: float
    absolute: bool = True
    seed: int = 42
    info: dict = field(default_factory=dict)

    def flag(self) -> str:
        """One line for the user, e.g. 'passes randomisation check (mean Spearman 0.28 over 10 layers)'."""
        verdict = "passes" if self.passed else "FAILS"
        return f"{verdict} randomisation check (mean Spearman {self.mean_spearman:.2f} over {len(self.layers)} layers)"


def randomisable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules with ``reset_parameters`` and parameters of their own, from the output layer down."""
    found = [
        (name, m)
        for name, m in model.named_modules()
        if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))
    ]
    if not found:
        raise XAIError(
            "the model has no layers with parameters to randomise", "give a trainable torch network"
        )
    return found[::-1]


def to_map_fn(explain) -> Callable[[nn.Module, torch.Tensor, object], np.ndarray]:
    """Accept a method name, a registry-style function returning an Attribution, or one returning a map."""
    if isinstance(explain, str):
        from .reference_methods import resolve

        explain = resolve(explain)

    def run(model, x, target) -> np.ndarray:
        out = explain(model, x, target)
        return as_numpy(out.map if hasattr(out, "map") else out, np.float64)

    return run


def cascading_randomisation(
    model: nn.Module,
    x: torch.Tensor,
    target,
    explain,
    *,
    method: str | None = None,
    seed: int = 42,
    threshold: float = 0.5,
    absolute: bool = True,
    max_layers: int | None = None,
    progress: Progress | None = None,
) -> RandomisationResult:
    """Run the cascade for one method; ``explain`` is a method name or ``fn(model, x, target)``."""
    name = method or (explain if isinstance(explain, str) else getattr(explain, "__name__", "method"))
    run = to_map_fn(explain)
    work = copy.deepcopy(model).eval()
    original = run(work, x, target)
    if not np.any(original):
        raise XAIError(
            f"the {name} map is zero everywhere", "check the target: its score must depend on the input"
        )
    ref_rank = np.abs(original) if absolute else original
    ref_norm = normalise_map(original, absolute=absolute)
    layers = randomisable_layers(work)[: max_layers or None]
    scores: list[LayerScore] = []
    for n, (layer_name, module) in enumerate(layers, start=1):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            with torch.no_grad():
                module.reset_parameters()
        randomised = run(work, x, target)
        rank = np.abs(randomised) if absolute else randomised
        scores.append(
            LayerScore(
                layer=layer_name,
                spearman=spearman(ref_rank, rank),
                ssim=ssim(ref_norm, normalise_map(randomised, absolute=absolute)),
            )
        )
        if progress:
            progress(n / len(layers), f"{name}: randomised {n}/{len(layers)} layers")
    # a constant randomised map shares no ranking with the original: count it as 0
    rhos = [0.0 if np.isnan(s.spearman) else s.spearman for s in scores]
    final = scores[-1]
    mean_rho = float(np.mean(rhos))
    return RandomisationResult(
        method=name,
        layers=scores,
        passed=bool(mean_rho < threshold),
        threshold=threshold,
        mean_spearman=mean_rho,
        mean_ssim=float(np.nanmean([s.ssim for s in scores])),
        final_spearman=final.spearman,
        final_ssim=final.ssim,
        absolute=absolute,
        seed=seed,
        info={"n_layers": len(layers), "original_abs_sum": float(np.abs(original).sum())},
    )
