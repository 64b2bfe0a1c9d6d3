"""Deletion and insertion curves with their AUC, for the attribution order and a random order.

Deletion (Petsiuk et al. 2018) replaces voxels, most relevant first, and follows the target score
down: a faithful map makes it drop fast (low AUC). Insertion starts from the replacement (a blurred
copy by default) and puts voxels back: a faithful map makes the score rise fast (high AUC). Random
orderings give the baseline. Forward passes run ``batch_size`` perturbed inputs at a time.

Curves are also reported normalised, ``(s - s_removed) / (s_original - s_removed)``, so that they run
from 1 to 0 (deletion) or 0 to 1 (insertion) and AUCs compare across models and targets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import XAIError
from .perturbation import attribution_order, check_input, random_orders, replacement_input, step_counts
from .results import JSONResult

Progress = Callable[[float, str], None]


@dataclass
class Curve(JSONResult):
    """One perturbation curve: the target score after replacing ``fractions`` of the voxels."""

    kind: str  # "deletion" or "insertion"
    ordering: str  # "attribution" or "random"
    fractions: list[float]
    scores: list[float]
    auc: float
    normalised_scores: list[float]
    normalised_auc: float


@dataclass
class FaithfulnessResult(JSONResult):
    """Deletion and insertion for the attribution order, and their random-order baselines."""

    deletion: Curve
    insertion: Curve | None
    deletion_random: Curve
    insertion_random: Curve | None
    replacement: dict = field(default_factory=dict)
    n_random: int = 0
    seed: int = 0

    @property
    def passes(self) -> bool:
        """Deletion falls faster (and insertion, when computed, rises faster) than for random orders."""
        ok = self.deletion.normalised_auc < self.deletion_random.normalised_auc
        if self.insertion is not None and self.insertion_random is not None:
            ok = ok and self.insertion.normalised_auc > self.insertion_random.normalised_auc
        return bool(ok)


def auc(fractions, scores) -> float:
    """Trapezoidal area under a curve."""
    f, s = np.asarray(fractions, float), np.asarray(scores, float)
    return float(np.sum((f[1:] - f[:-1]) * (s[1:] + s[:-1]) / 2.0))


@torch.no_grad()
def curve_scores(
    model: torch.nn.Module,
    start: torch.Tensor,
    fill: torch.Tensor,
    target: Callable[[torch.Tensor], torch.Tensor],
    order: np.ndarray,
    counts: np.ndarray,
    *,
    batch_size: int = 8,
) -> np.ndarray:
    """Target score of ``start`` with its first ``counts[t]`` voxels in ``order`` taken from ``fill``."""
    spatial = start.shape[2:]
    rank = torch.empty(len(order), dtype=torch.long, device=start.device)
    rank[torch.as_tensor(order, device=start.device)] = torch.arange(len(order), device=start.device)
    scores = []
    for begin in range(0, len(counts), batch_size):
        n = torch.as_tensor(counts[begin : begin + batch_size], device=start.device)
        replaced = (rank[None, :] < n[:, None]).reshape(len(n), 1, *spatial)
        batch = torch.where(replaced, fill, start)
        scores.append(target(model(batch)).detach().double().cpu().numpy().reshape(-1))
    return np.concatenate(scores)


def perturbation_curve(
    model,
    x: torch.Tensor,
    target,
    order: np.ndarray,
    *,
    kind: str = "deletion",
    replacement: torch.Tensor,
    steps: int = 50,
    batch_size: int = 8,
    ordering: str = "attribution",
) -> Curve:
    """One deletion or insertion curve for a given voxel order."""
    check_input(x)
    counts = step_counts(len(order), steps)
    start, fill = (x, replacement) if kind == "deletion" else (replacement, x)
    scores = curve_scores(model, start, fill, target, order, counts, batch_size=batch_size)
    return make_curve(kind, ordering, counts / len(order), scores)


def make_curve(kind: str, ordering: str, fractions: np.ndarray, scores: np.ndarray) -> Curve:
    """Build a Curve with its AUC and normalised AUC."""
    if kind == "deletion":
        high, low = scores[0], scores[-1]
    else:
        high, low = scores[-1], scores[0]
    span = high - low
    # a perturbation that hardly moves the score has no meaningful normalised curve
    flat = abs(span) <= 1e-3 * (abs(high) + abs(low)) + 1e-12
    norm = np.full_like(scores, np.nan) if flat else (scores - low) / span
    return Curve(
        kind=kind,
        ordering=ordering,
        fractions=[float(f) for f in fractions],
        scores=[float(s) for s in scores],
        auc=auc(fractions, scores),
        normalised_scores=[float(s) for s in norm],
        normalised_auc=auc(fractions, norm),
    )


def mean_curve(curves: list[Curve]) -> Curve:
    """The pointwise mean of several random-order curves (the AUCs are means too)."""
    scores = np.mean([c.scores for c in curves], axis=0)
    return make_curve(curves[0].kind, "random", np.asarray(curves[0].fractions), scores)


def evaluate_faithfulness(
    model,
    x: torch.Tensor,
    target,
    attribution,
    *,
    steps: int = 50,
    deletion_replacement: str | torch.Tensor = "baseline",
    insertion_replacement: str | torch.Tensor = "blur",
    baseline: float = 0.0,
    blur_sigma: float = 5.0,
    absolute: bool = False,
    n_random: int = 3,
    seed: int = 0,
    batch_size: int = 8,
    insertion: bool = True,
    progress: Progress | None = None,
) -> FaithfulnessResult:
    """Deletion and insertion curves for the attribution order and ``n_random`` seeded random orders.

    ``x`` is the model input ``(1, C, *spatial)``; ``attribution`` a map on its spatial grid;
    ``target`` maps the model output to one score per batch element. ``absolute`` orders by |map|.
    Replacements are ``baseline``, ``blur``, ``mean`` or an input-shaped tensor (see ``replacement_input``).
    Without ``insertion`` only the deletion curves are computed (the insertion fields are None).
    """
    check_input(x)
    if n_random < 1:
        raise XAIError(
            f"n_random must be at least 1, got {n_random}", "use a few random orders, for example 3"
        )
    model_was_training = model.training
    model.eval()
    order = attribution_order(attribution, tuple(x.shape[2:]), absolute=absolute)
    fills = {
        "deletion": replacement_input(x, deletion_replacement, baseline=baseline, blur_sigma=blur_sigma),
        "insertion": replacement_input(x, insertion_replacement, baseline=baseline, blur_sigma=blur_sigma),
    }
    orders = [("attribution", order)] + [("random", o) for o in random_orders(len(order), n_random, seed)]
    curves: dict[str, list[Curve]] = {
        "deletion": [],
        "insertion": [],
        "deletion_random": [],
        "insertion_random": [],
    }
    kinds = ("deletion", "insertion") if insertion else ("deletion",)
    total, done = len(kinds) * len(orders), 0
    try:
        for kind in kinds:
            for name, o in orders:
                c = perturbation_curve(
                    model,
                    x,
                    target,
                    o,
                    kind=kind,
                    replacement=fills[kind],
                    steps=steps,
                    batch_size=batch_size,
                    ordering=name,
                )
                curves[kind if name == "attribution" else f"{kind}_random"].append(c)
                done += 1
                if progress:
                    progress(done / total, f"{kind} curve {done}/{total}")
    finally:
        model.train(model_was_training)
    return FaithfulnessResult(
        deletion=curves["deletion"][0],
        insertion=curves["insertion"][0] if insertion else None,
        deletion_random=mean_curve(curves["deletion_random"]),
        insertion_random=mean_curve(curves["insertion_random"]) if insertion else None,
        replacement={
            "deletion": deletion_replacement if isinstance(deletion_replacement, str) else "given input",
            "insertion": insertion_replacement if isinstance(insertion_replacement, str) else "given input",
            "baseline": baseline,
            "blur_sigma": blur_sigma,
        },
        n_random=n_random,
        seed=seed,
    )
