"""The worker function: file paths in, one result folder (written atomically, keyed by hash), a row out.

The folder ``<results>/<key>/`` holds the one explanation layout (``explanation_io``) and
``cohort_row.json`` (the summary row). Both are staged in a hidden sibling folder that is renamed into
place in one step, so a killed worker leaves no partial result and a finished key is never recomputed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ..errors import XAIError

RESULTS = "results"  # the folder of result folders inside a cohort's output folder
ROW_FILE = "cohort_row.json"
METRICS = ("localisation", "faithfulness")
FAITHFULNESS = {"steps": 8, "n_random": 1, "batch_size": 9}  # a cheap deletion check per map
TOP_K_PERCENT = 5.0
# test hook: the first task that finds this variable creates the file it names and kills its own worker
# process after computing (before writing), so the scheduler must run the task again elsewhere
CRASH_ONCE_ENV = "XAIMED_COHORT_CRASH_ONCE"


def result_dir(results: str | os.PathLike, key: str) -> Path:
    return Path(results) / key


def finished_row(results: str | os.PathLike, key: str) -> dict | None:
    """The stored row of a finished key, or None."""
    path = result_dir(results, key) / ROW_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def base_row(job: dict) -> dict:
    return {"case_id": job["case"]["case_id"], "method": job["method"], "key": job.get("key", "")}


def error_row(job: dict, message: str) -> dict:
    """The row of a case that could not be explained: its one-line error."""
    line = (message or "error").strip().splitlines()[0] if (message or "").strip() else "error"
    return {**base_row(job), "status": "error", "error": line}


def run_case(job: dict, models=None) -> dict:
    """Explain one case with one method and write its result folder; return the summary row.

    ``job``: ``case`` (a :class:`cases.Case` as a dict), ``method``, ``params``, ``key``, ``results``
    (the results folder), ``metrics`` and ``seed``. ``models`` is a model cache (the worker plugin's
    when None). Bad input gives a row with ``status`` "error" and the one-line message; any other
    exception propagates, so the scheduler retries the task. The row's ``written`` says whether this
    call wrote the folder (False: it was finished before).
    """
    stored = finished_row(job["results"], job["key"])
    if stored is not None:
        return {**stored, "written": False}
    if models is None:
        from .plugin import worker_cache

        models = worker_cache()
    try:
        row, explanation = _compute(job, models)
    except XAIError as exc:
        return error_row(job, str(exc))
    _crash_once(job)
    return {**row, "written": _write(job, explanation, row)}


def _crash_once(job: dict) -> None:
    marker = os.environ.get(CRASH_ONCE_ENV)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"{os.getpid()} {job['key']}\n".encode())
    os.close(fd)
    os._exit(1)


def _compute(job: dict, models) -> tuple[dict, object]:
    from ..explain import explain
    from ..io.volumes import read_volume

    case = job["case"]
    for field in ("image", "model", "labels", "label_names", "mask"):
        if case.get(field) and not Path(case[field]).exists():
            raise XAIError(f"{field} not found: {case[field]}", "fix the path in cases.csv")
    start = time.perf_counter()
    image = read_volume(case["image"])  # an unreadable scan fails before any model is loaded
    loaded = models.get(case["model"])
    explanation = explain(
        image,
        loaded,
        job["method"],
        case.get("target"),
        labels=case.get("labels"),
        label_names=case.get("label_names"),
        seed=int(job.get("seed", 0)),
        method_params=dict(job.get("params") or {}),
    )
    explanation.provenance["image"]["path"] = case["image"]
    prediction, target = explanation.prediction, explanation.target
    row = {
        **base_row(job),
        "status": "ok",
        "error": "",
        "predicted_class": prediction.get("predicted_class", ""),
        "predicted_probability": _probability(prediction, prediction.get("predicted_index")),
        "target_class": target.get("class_name", ""),
        "target_probability": _probability(prediction, target.get("class_index")),
        "attribution_seconds": explanation.provenance.get("seconds", {}).get("attribution"),
        "worker_pid": os.getpid(),
    }
    metrics = job.get("metrics", METRICS)
    if "localisation" in metrics and case.get("mask"):
        row.update(_localisation(explanation, read_volume(case["mask"])))
    if "faithfulness" in metrics and prediction.get("task") == "classification":
        row.update(_faithfulness(explanation, loaded))
    row["seconds"] = time.perf_counter() - start
    return row, explanation


def _write(job: dict, explanation, row: dict) -> bool:
    """Stage the explanation and its row beside the target and rename the folder into place."""
    from ..explanation_io import save_explanation
    from ..io.atomic import write_json
    from ..io.outputs import OutputDir

    final = result_dir(job["results"], job["key"])
    out = OutputDir(final, force=True)
    try:
        save_explanation(explanation, out.staging, image_path=job["case"]["image"])
        write_json(out.staging / ROW_FILE, row)  # its presence marks the key finished
        if finished_row(job["results"], job["key"]) is not None:  # another attempt finished first
            out.abort()
            return False
        out.commit()
    except BaseException:
        out.abort()
        raise
    return True


def _probability(prediction: dict, index) -> float | None:
    probs = prediction.get("probabilities")
    return None if probs is None or index is None else float(probs[int(index)])


def _localisation(explanation, mask) -> dict:
    """Pointing game, energy inside, rank accuracy and top-k IoU of the map against the lesion mask."""
    from ..geometry.resample import resample_to
    from ..metrics.localisation import evaluate_localisation

    if not mask.same_grid(explanation.image):
        mask = resample_to(mask, explanation.image, "nearest")
    inside = np.asarray(mask.array) > 0
    if not inside.any():
        return {}
    result = evaluate_localisation(
        explanation.attribution.array, inside, k_percent=TOP_K_PERCENT, absolute=explanation.signed
    )
    return {
        "pointing_game": float(result.pointing_game),
        "energy_inside": result.energy_inside,
        "relevance_rank_accuracy": result.relevance_rank_accuracy,
        "top_k_iou": result.top_k_iou,
    }


def _faithfulness(explanation, loaded) -> dict:
    """Deletion AUC of the map on the network grid against a random order (metrics.faithfulness)."""
    import torch

    from ..geometry.axes import kji_to_xyz
    from ..methods.targets import ClassTarget
    from ..metrics.faithfulness import evaluate_faithfulness
    from ..preprocess import prepare_input
    from ..preprocess.pipeline import map_to_model_grid

    model_input = prepare_input(explanation.image, loaded.card.preprocessing, loaded.device)
    on_grid = map_to_model_grid(explanation.attribution, model_input.grid, "linear")
    attribution_xyz = kji_to_xyz(on_grid.array)
    target = ClassTarget(int(explanation.target["class_index"]))
    with torch.no_grad():
        result = evaluate_faithfulness(
            loaded.network,
            model_input.tensor,
            target,
            attribution_xyz,
            insertion=False,
            absolute=explanation.signed,
            seed=0,
            **FAITHFULNESS,
        )
    return {
        "deletion_auc": result.deletion.normalised_auc,
        "deletion_random_auc": result.deletion_random.normalised_auc,
    }
