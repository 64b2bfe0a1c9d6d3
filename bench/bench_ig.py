"""IG completeness error against the number of passes: our quadrature rules and Captum's."""

from __future__ import annotations

import torch

from bench_setup import ScoreModel, timed
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.targets import ClassTarget


def ig_curve(model, x: torch.Tensor, quick: bool) -> list[dict]:
    """Rows ``{rule, impl, passes, completeness_error, map_error, seconds}`` (``seconds``: CPU time).

    ``map_error`` is the relative L2 distance to a 64-point Gauss-Legendre IG of the same network,
    so a rule that is only made complete (without a better map) shows it.
    """
    from captum.attr import IntegratedGradients

    with torch.inference_mode():
        out = model(x)
        cls = int(out.argmax(1))
        delta = float(out[0, cls] - model(torch.zeros_like(x))[0, cls])
    target = ClassTarget(cls)
    ig = get_method("ig").fn
    ref = ig(model, x, target, steps=64).map
    passes = [4, 8, 16, 32] if quick else [2, 4, 6, 8, 12, 16, 24, 32]
    plan = [("gausslegendre", "ours", p) for p in passes]
    plan += [("completeness_corrected", "ours", p) for p in ([4, 6, 8] if quick else [2, 4, 6, 8, 12, 16])]
    cap_passes = [8, 32] if quick else passes
    plan += [(rule, "captum", p) for rule in ("gausslegendre", "riemann_trapezoid") for p in cap_passes]
    scalar = ScoreModel(model, target)
    rows = []
    for rule, impl, p in plan:
        if impl == "ours":
            result, _wall, sec = timed(
                lambda rule=rule, p=p: ig(model, x, target, steps=p, rule=rule), x.device
            )
            amap = result.map
        else:
            captum = IntegratedGradients(scalar)
            run = lambda rule=rule, p=p, captum=captum: captum.attribute(  # noqa: E731
                x, baselines=0.0, target=0, n_steps=p, method=rule, internal_batch_size=min(p, 8)
            )
            attr, _wall, sec = timed(run, x.device)
            amap = attr.detach()[0].sum(0).cpu()
        err = abs(float(amap.sum()) - delta) / abs(delta)
        map_err = float((amap - ref).norm() / ref.norm())
        rows.append(
            {
                "rule": rule,
                "impl": impl,
                "passes": p,
                "completeness_error": err,
                "map_error": map_err,
                "seconds": sec,
            }
        )
    return rows
