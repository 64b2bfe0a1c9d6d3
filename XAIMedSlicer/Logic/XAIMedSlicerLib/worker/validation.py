"""The worker's map checks: the explained input and target rebuilt on the model grid, then validated."""

from __future__ import annotations

from ..errors import XAIError


def rebuild_input_and_target(job, image, loaded, target: dict):
    """The model input and the target that ``explain`` used, from the job and its target description."""
    import torch

    from ..methods.targets import ClassTarget, RegionTarget, as_logits
    from ..preprocess import prepare_input
    from ..preprocess.regions import target_region

    model_input = prepare_input(image, loaded.card.preprocessing, loaded.device)
    x = model_input.tensor
    index, name = int(target["class_index"]), str(target.get("class_name", ""))
    if target.get("kind") == "class_logit":
        return x, ClassTarget(index, name)
    with torch.inference_mode():
        output = as_logits(loaded.network(x)).clone()
    box = tuple(job.box) if job.box else None
    point = tuple(job.point) if job.point else None
    mask = target_region(job.region, output, index, job.region_mask, box, point, model_input.grid)
    return x, RegionTarget(index, mask, job.region, name)


def validate_job(job, image, loaded, explanation, params: dict, progress) -> dict:
    """``validate_explanation`` for the job's map; a check that cannot run becomes a 'not checked' note."""
    from ..metrics.validate import validate_explanation

    x, target = rebuild_input_and_target(job, image, loaded, explanation.target)
    try:
        return validate_explanation(
            loaded.network, x, target, job.method, params, progress=progress, **job.validate_options
        )
    except XAIError as exc:
        return {"text": f"not checked: {exc}", "failed": False, "failed_checks": [], "notes": [str(exc)]}
