"""The single entry point: scan + model + method + target (+ anatomy) -> Explanation."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .anatomy.labels import align_labels, read_label_names
from .anatomy.stats import structure_statistics
from .errors import XAIError
from .explanation import Explanation
from .geometry.volume import Volume
from .io.volumes import read_volume
from .methods import get_method
from .methods.activations import default_layer
from .methods.params import RUNTIME
from .methods.sliding import SlidingWindowModel
from .methods.targets import ClassTarget, RegionTarget, as_logits
from .model.device import describe_device
from .model.loader import LoadedModel, load_model
from .preprocess import prepare_input, to_input_grid
from .preprocess.regions import REGIONS, target_region
from .provenance import StageTimer, now_iso, package_versions

Progress = Callable[[float, str], None]


def explain(
    image: Volume | str | Path,
    model: LoadedModel | str | Path,
    method: str = "gradcam",
    target: str | int | None = None,
    *,
    labels: Volume | str | Path | None = None,
    label_names: dict[int, str] | str | Path | None = None,
    region: str = "predicted",
    mask: Volume | str | Path | None = None,
    box: tuple[float, ...] | None = None,
    point: tuple[float, float, float] | None = None,
    device: str = "auto",
    seed: int = 0,
    method_params: dict | None = None,
    roi: tuple[tuple[float, float, float], tuple[int, int, int]] | None = None,
    sliding_window: tuple[int, int, int] | None = None,
    sliding_overlap: float = 0.25,
    anatomy: str | None = None,
    progress: Progress | None = None,
) -> Explanation:
    """Explain one prediction of ``model`` on ``image``; the attribution comes back on ``image``'s grid.

    ``target`` is a class name or index (default: the predicted class; for segmentation networks,
    the largest predicted foreground class). For segmentation networks ``region`` picks where class
    logits are summed: the ``predicted`` mask of the class, a given ``mask``, a RAS ``box``
    ``(r0, a0, s0, r1, a1, s1)`` in mm, or the predicted component at a RAS ``point``.
    ``roi = (centre_ras_mm, size_voxels)`` runs the network on a crop of the preprocessed scan;
    the attribution is zero outside it. ``sliding_window = (X, Y, Z)`` runs a patch network over the whole
    (full-size) scan by MONAI sliding-window inference with ``sliding_overlap``; every method then
    explains that blended output exactly (see :mod:`.methods.sliding`). ``anatomy="chest"`` labels a
    radiograph's lungs, heart, mediastinum and the air outside the body with the registered CheXmask
    atlas (:mod:`.anatomy.cxr_regions`) instead of a ``labels`` file.
    """
    report = progress or (lambda _f, _m: None)
    timer = StageTimer()
    spec = get_method(method)
    if region not in REGIONS:
        raise XAIError(f"unknown region '{region}'", f"use one of {', '.join(REGIONS)}")
    image_path = None
    with timer.stage("read"):
        if not isinstance(image, Volume):
            image_path = str(image)
            image = read_volume(image)
        elif np.issubdtype(image.array.dtype, np.floating) and not np.all(np.isfinite(image.array)):
            raise XAIError("the image contains NaN or Inf voxels", "replace them before explaining")
        names = label_names if isinstance(label_names, dict) else read_label_names(label_names)
        label_volume = None
        if labels is not None:
            label_volume = align_labels(labels if isinstance(labels, Volume) else read_volume(labels), image)
        if anatomy is not None:
            label_volume, names = _anatomy(anatomy, image, labels, report)
        loaded = model if isinstance(model, LoadedModel) else load_model(model, device)
    report(0.05, "preprocessing")
    _seed_everything(seed)
    net, card = loaded.network, loaded.card
    with timer.stage("preprocess"):
        model_input = prepare_input(image, card.preprocessing, loaded.device, roi=roi)
        x = model_input.tensor
    if sliding_window is not None:
        net = _sliding(net, card.task, x, sliding_window, sliding_overlap)
    report(0.1, "inference")
    with timer.stage("inference"), torch.inference_mode():
        output = as_logits(net(x))
    output = output.clone()
    task = card.task if card.task != "auto" else ("segmentation" if output.ndim >= 4 else "classification")
    prediction = _prediction(output, task, card.classes)
    classes = card.classes or [str(i) for i in range(output.shape[1])]
    index = _target_index(target, card, output, task)
    if task == "classification":
        tgt = ClassTarget(index, classes[index])
    else:
        tgt = RegionTarget(
            index,
            target_region(region, output, index, mask, box, point, model_input.grid),
            region,
            classes[index],
        )
    params = dict(method_params or {})
    if spec.needs_layer and not params.get("layer"):
        params["layer"] = card.gradcam_layer or default_layer(
            getattr(net, "model", net) if sliding_window else net
        )
    if spec.accepts("seed"):
        params.setdefault("seed", seed)
    # a misspelt name, wrong type or out-of-range value is a one-line XAIError; defaults are filled in
    declared = spec.validate({k: v for k, v in params.items() if k not in RUNTIME}).to_dict()
    report(0.15, f"attribution: {method}")
    with timer.stage("attribution"):
        attribution = spec.fn(net, x, tgt, progress=lambda f, m: report(0.15 + 0.7 * f, m), **params)
    report(0.85, "mapping back to the scan grid")
    with timer.stage("map_back"):
        attr_volume = to_input_grid(attribution.map, model_input.grid, image)
    structures: list[dict] = []
    with timer.stage("anatomy"):
        if label_volume is not None:
            structures = structure_statistics(attr_volume, label_volume, names)
    report(1.0, "done")
    provenance = {
        "created": now_iso(),
        "versions": package_versions(),
        "image": {"path": image_path, **image.geometry()},
        "model": {
            "path": str(loaded.path),
            "kind": loaded.kind,
            "name": card.name,
            "sha256": loaded.sha256,
            "task": task,
        },
        "preprocessing": {
            **card.preprocessing.to_dict(),
            "transforms": model_input.transforms,
            "model_grid": model_input.grid.geometry(),
        },
        "method": {
            "name": attribution.method,
            "params": {**_jsonable(declared), **attribution.params, **_jsonable(params)},
            "info": attribution.info,
        },
        "target": tgt.describe(),
        "seed": seed,
        "anatomy": anatomy,
        "sliding_window": None
        if sliding_window is None
        else {"roi_size": [int(r) for r in sliding_window], "overlap": sliding_overlap, "mode": "gaussian"},
        "device": describe_device(loaded.device),
        "seconds": timer.seconds,
    }
    return Explanation(
        image=image,
        attribution=attr_volume,
        signed=attribution.signed,
        method=attribution.method,
        prediction=prediction,
        target=tgt.describe(),
        labels=label_volume,
        label_names=names,
        structures=structures,
        provenance=provenance,
    )


def _anatomy(kind: str, image: Volume, labels, report) -> tuple[Volume, dict[int, str]]:
    """Structures made for the image (``chest``: the registered chest atlas of a radiograph)."""
    if kind != "chest":
        raise XAIError(f"unknown anatomy '{kind}'", "use chest (radiographs), or give --labels")
    if labels is not None:
        raise XAIError("both a label map and --anatomy were given", "give one of them")
    from .anatomy.cxr_regions import cxr_anatomy

    chest = cxr_anatomy(image, progress=lambda f, m: report(0.01 + 0.03 * f, m))
    return chest.labels, dict(chest.names)


def _sliding(net, task: str, x: torch.Tensor, roi, overlap: float) -> SlidingWindowModel:
    """``net`` applied by sliding windows of ``roi`` voxels (the task probed on one window if unknown)."""
    roi = tuple(int(r) for r in roi)
    if len(roi) != x.ndim - 2 or min(roi) < 1:
        raise XAIError(f"sliding window {roi} is not {x.ndim - 2} positive sizes", "give it like 96 96 96")
    if not 0.0 <= overlap < 1.0:
        raise XAIError(f"sliding-window overlap {overlap} is outside [0, 1)", "use for example 0.25")
    if task == "auto":
        with torch.inference_mode():
            probe = as_logits(net(torch.zeros((1, x.shape[1], *roi), device=x.device, dtype=x.dtype)))
        task = "segmentation" if probe.ndim >= 4 else "classification"
    return SlidingWindowModel(net, roi, task=task, overlap=overlap, mode="gaussian")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _jsonable(params: dict) -> dict:
    return {
        k: v for k, v in params.items() if isinstance(v, (str, int, float, bool, type(None), list, tuple))
    }


def _prediction(output: torch.Tensor, task: str, classes: list[str]) -> dict:
    names = classes or [str(i) for i in range(output.shape[1])]
    if task == "classification":
        probs = torch.softmax(output.float(), dim=1)[0].cpu().numpy()
        best = int(np.argmax(probs))
        return {
            "task": task,
            "classes": names,
            "logits": output[0].float().cpu().numpy().tolist(),
            "probabilities": probs.tolist(),
            "predicted_index": best,
            "predicted_class": names[best],
        }
    counts = torch.bincount(output[0].argmax(0).flatten(), minlength=output.shape[1]).cpu().numpy()
    return {"task": task, "classes": names, "voxels_per_class": counts.tolist()}


def _target_index(target, card, output: torch.Tensor, task: str) -> int:
    n = output.shape[1]
    if target is None:
        if task == "classification":
            return int(output[0].argmax())
        counts = torch.bincount(output[0].argmax(0).flatten(), minlength=n)
        counts[0] = -1
        return int(counts.argmax())
    if card.classes:
        return card.class_index(target)
    if isinstance(target, int) or str(target).lstrip("-").isdigit():
        index = int(target)
        if 0 <= index < n:
            return index
    raise XAIError(f"unknown target class '{target}'", f"give a class index from 0 to {n - 1}")
