"""The cheap checks run beside each map in the module: a short randomisation cascade and deletion AUC.

:func:`validate_explanation` recomputes the method's map on the model input, re-initialises the top
``layers`` layers one by one (:func:`cascading_randomisation`) and draws the deletion curve of the map
against ``n_random`` random orders (:func:`evaluate_faithfulness`, no insertion). The verdict is
:func:`map_flags`'s text and failed checks, with the numbers, as a plain JSON dictionary.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import XAIError
from .arrays import as_numpy
from .faithfulness import evaluate_faithfulness
from .flags import map_flags
from .randomisation import cascading_randomisation
from .results import to_jsonable

Progress = Callable[[float, str], None]
DEFAULTS = {"layers": 3, "steps": 16, "n_random": 2, "batch_size": 8, "threshold": 0.5, "seed": 42}
CHECKS = ("randomisation", "deletion")
# parameters that belong to one run (memory budgets), not to the method's definition
RUN_ONLY = ("budget", "progress")


def is_torchscript(model) -> bool:
    return isinstance(model, torch.jit.ScriptModule)


def validate_explanation(
    model: torch.nn.Module,
    x: torch.Tensor,
    target,
    method: str,
    params: dict | None = None,
    *,
    attribution=None,
    layers: int = DEFAULTS["layers"],
    steps: int = DEFAULTS["steps"],
    n_random: int = DEFAULTS["n_random"],
    batch_size: int = DEFAULTS["batch_size"],
    threshold: float = DEFAULTS["threshold"],
    seed: int = DEFAULTS["seed"],
    progress: Progress | None = None,
) -> dict:
    """Randomisation and deletion checks of ``method`` on ``model`` at input ``x`` for ``target``.

    ``attribution`` is the method's map on the model-input grid when already known (else computed).
    Returns ``{"text", "failed", "failed_checks", "trustworthy", "randomisation", "deletion", "notes",
    "settings"}``; ``failed`` is True when the map fails the randomisation or the deletion check.
    TorchScript networks cannot be re-initialised layer by layer, so only deletion is checked for them.
    """
    from .reference_methods import resolve

    if layers < 1:
        raise XAIError(f"layers must be at least 1, got {layers}", "randomise a few layers, for example 3")
    report = progress or (lambda _f, _m: None)
    fn = resolve(method)
    kwargs = {k: v for k, v in (params or {}).items() if k not in RUN_ONLY}

    def run(net, inp, tgt):
        return as_numpy(fn(net, inp, tgt, **kwargs).map, np.float64)

    report(0.0, f"checks: {method} map")
    original = run(model, x, target) if attribution is None else as_numpy(attribution, np.float64)
    notes: list[str] = []
    randomisation = None
    share = 0.0
    if is_torchscript(model):
        notes.append("randomisation check not run: TorchScript layers cannot be re-initialised")
    else:
        share = 0.7
        cached = [original]  # the cascade's first map is the unchanged network's: reuse it

        def cascade_run(net, inp, tgt):
            return cached.pop() if cached else run(net, inp, tgt)

        randomisation = cascading_randomisation(
            model,
            x,
            target,
            cascade_run,
            method=method,
            seed=seed,
            threshold=threshold,
            max_layers=layers,
            progress=lambda f, m: report(share * f, f"checks: {m}"),
        )
    faithfulness = evaluate_faithfulness(
        model,
        x,
        target,
        original,
        steps=steps,
        n_random=n_random,
        seed=0,
        batch_size=batch_size,
        insertion=False,
        progress=lambda f, m: report(share + (1 - share) * f, f"checks: {m}"),
    )
    flags = map_flags(randomisation, faithfulness)
    failed_checks = [c for c in flags.failed if c in CHECKS]
    text = "; ".join([flags.text, *notes])
    report(1.0, "checks done")
    return to_jsonable(
        {
            "text": text,
            "failed": bool(failed_checks),
            "failed_checks": failed_checks,
            "trustworthy": flags.trustworthy,
            "randomisation": None if randomisation is None else randomisation.to_dict(),
            "deletion": {
                "normalised_auc": faithfulness.deletion.normalised_auc,
                "random_normalised_auc": faithfulness.deletion_random.normalised_auc,
                "auc": faithfulness.deletion.auc,
                "random_auc": faithfulness.deletion_random.auc,
            },
            "notes": notes,
            "settings": {
                "method": method,
                "layers": layers,
                "steps": steps,
                "n_random": n_random,
                "threshold": threshold,
                "seed": seed,
            },
        }
    )
