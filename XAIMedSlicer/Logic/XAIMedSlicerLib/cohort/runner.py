"""A cohort run: every case x method as one task on Dask (LocalCluster or an existing scheduler).

The client hashes the files (image, model, labels, mask) into each result's key and skips keys whose
folder is finished; the workers get file paths, load each model once (``plugin.ModelPlugin``) and write
their result folders themselves (``task.run_case``). A worker that dies mid-task has its task rerun
by the scheduler (``allowed-failures``); a case with bad input becomes an error row and the rest go on.
The summary (``summary.write_summary``) is built from the finished folders on disk at the end.

Output folder: ``cohort.json`` (the run's settings and counts), ``results/<key>/`` (one explanation
each, ``explanation_io`` layout, plus ``cohort_row.json``), ``summary.csv``, ``summary.parquet`` and
the study database (``study.sqlite`` unless another path is given).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import XAIError
from ..io.atomic import write_json
from .cases import Case, read_cases
from .keys import file_sha256, model_sha256, result_key
from .summary import write_summary
from .task import FAITHFULNESS, METRICS, RESULTS, TOP_K_PERCENT, error_row, finished_row, run_case

Progress = Callable[[float, str], None]
RUN_FILE = "cohort.json"
RUN_FORMAT = "xaimed-cohort/1"
TASK_PREFIX = "xaimed-cohort-"


@dataclass
class CohortRun:
    """What a run did: the rows (case order, then method order) and its counts."""

    out: Path
    rows: list[dict]
    computed: int  # results (distinct keys) computed and written by this run
    skipped: int  # results found finished and not recomputed
    errors: int  # rows with status "error"
    seconds: float
    workers: dict[str, dict] = field(default_factory=dict)  # address -> {"pid", "loads": {model: n}}
    files: dict[str, str] = field(default_factory=dict)  # csv, parquet, study

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def plan_jobs(
    cases: Sequence[Case],
    methods: Sequence[str],
    results: Path,
    *,
    params: dict[str, dict] | None = None,
    metrics: Sequence[str] = METRICS,
    seed: int = 0,
) -> tuple[list[dict], dict[tuple[str, str], dict]]:
    """One job per case x method with its content key; a case whose files cannot be hashed gets an
    error row per method instead (returned by (case_id, method))."""
    params = params or {}
    hashes: dict[str, str] = {}

    def digest(path: str, how=file_sha256) -> str:
        if path not in hashes:
            hashes[path] = how(path)
        return hashes[path]

    jobs, failed = [], {}
    for case in cases:
        try:
            image = digest(case.image)
            model = digest(case.model, model_sha256)
            extra = {
                "target": case.target,
                **{
                    f: digest(getattr(case, f)) for f in ("labels", "label_names", "mask") if getattr(case, f)
                },
                "metrics": sorted(metrics),
                "faithfulness": FAITHFULNESS,
                "top_k_percent": TOP_K_PERCENT,
                "seed": int(seed),
            }
        except XAIError as exc:
            for method in methods:
                job = {"case": dataclasses.asdict(case), "method": method}
                failed[(case.case_id, method)] = error_row(job, str(exc))
            continue
        for method in methods:
            method_params = dict(params.get(method) or {})
            jobs.append(
                {
                    "case": dataclasses.asdict(case),
                    "method": method,
                    "params": method_params,
                    "key": result_key(image, model, method, method_params, extra),
                    "results": str(results),
                    "metrics": list(metrics),
                    "seed": int(seed),
                    "model_sha256": model,
                }
            )
    return jobs, failed


def run_cohort(
    cases: str | os.PathLike | Sequence[Case],
    methods: Sequence[str],
    out: str | os.PathLike,
    *,
    params: dict[str, dict] | None = None,
    metrics: Sequence[str] = METRICS,
    seed: int = 0,
    study: str | os.PathLike | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    threads: int = 1,
    retries: int = 2,
    device: str = "auto",
    worker_env: dict[str, str] | None = None,
    serial: bool = False,
    progress: Progress | None = None,
) -> CohortRun:
    """Explain every case with every method into ``out`` and write the summary; see the module doc.

    ``cases``: a ``cases.csv`` path or :class:`Case` list. ``params``: method -> parameters.
    ``scheduler``: the address of a running Dask scheduler (default: a LocalCluster of ``workers``
    processes with ``threads`` threads each). ``retries``: how often a task is rerun after it raised an
    unexpected error and, on the LocalCluster, after its worker died (an existing scheduler applies its
    own ``distributed.scheduler.allowed-failures``). ``worker_env``: environment variables of the
    LocalCluster's worker processes. ``serial`` runs in this process (the reference run).
    """
    start = time.perf_counter()
    report = progress or (lambda _f, _m: None)
    methods = _check_methods(methods, params)
    case_list = read_cases(cases) if isinstance(cases, str | os.PathLike) else list(cases)
    fresh = not Path(out).exists()
    out = _prepare_out(Path(out))
    results = out / RESULTS
    study_path = Path(study) if study else out / "study.sqlite"
    settings = {"methods": methods, "params": params or {}, "metrics": list(metrics), "seed": seed}
    write_json(out / RUN_FILE, {"format": RUN_FORMAT, "status": "running", **settings})
    jobs, rows = plan_jobs(case_list, methods, results, params=params, metrics=metrics, seed=seed)
    todo: dict[str, dict] = {}
    stored: dict[str, dict] = {}
    for job in jobs:
        row = finished_row(results, job["key"])
        if row is not None:
            stored[job["key"]] = row
        else:
            todo.setdefault(job["key"], job)
    total, done = len(jobs) + len(rows), len(jobs) - len(todo) + len(rows)
    report(done / max(total, 1), f"{done}/{total} maps ({len(stored)} finished before)")
    computed: dict[str, dict] = {}
    worker_info: dict[str, dict] = {}
    if todo:
        pending = list(todo.values())
        if serial:
            execution = _run_serial(pending, threads, device, worker_info)
        else:
            cluster = {"scheduler": scheduler, "workers": workers, "threads": threads, "env": worker_env}
            execution = _run_dask(pending, cluster, retries, device, worker_info)
        per_key = Counter(job["key"] for job in jobs)
        try:
            for key, row in execution:
                computed[key] = row
                done += per_key[key]
                report(done / max(total, 1), f"{done}/{total} maps")
        except XAIError:
            if fresh and not computed:  # nothing done (no scheduler, say): leave no folder behind
                shutil.rmtree(out, ignore_errors=True)
            raise
    for job in jobs:
        row = stored.get(job["key"]) or computed.get(job["key"])
        rows[(job["case"]["case_id"], job["method"])] = {**row, "case_id": job["case"]["case_id"]}
    ordered = [rows[(c.case_id, m)] for c in case_list for m in methods if (c.case_id, m) in rows]
    files = write_summary(out, ordered, case_list, methods, study_path, model_hashes=_model_hashes(jobs))
    run = CohortRun(
        out=out,
        rows=ordered,
        computed=sum(1 for r in computed.values() if r.get("written")),
        skipped=len(stored)
        + sum(1 for r in computed.values() if r.get("status") == "ok" and not r["written"]),
        errors=sum(1 for r in ordered if r.get("status") == "error"),
        seconds=time.perf_counter() - start,
        workers=worker_info,
        files={k: str(v) for k, v in files.items()},
    )
    summary = {k: v for k, v in run.to_dict().items() if k not in ("rows", "out")}
    write_json(out / RUN_FILE, {"format": RUN_FORMAT, "status": "finished", **settings, **summary})
    return run


def run_serial(cases, methods, out, **kwargs) -> CohortRun:
    """The same run in this process, one task after another (the reference for the distributed run)."""
    return run_cohort(cases, methods, out, serial=True, **kwargs)


def _check_methods(methods: Sequence[str], params: dict | None) -> list[str]:
    from ..methods import get_method

    methods = list(dict.fromkeys(methods))
    if not methods:
        raise XAIError("no methods given", "pass --methods, for example --methods gradcam saliency")
    for method in methods:
        spec = get_method(method)  # unknown names fail here, before any work
        if params and params.get(method) and hasattr(spec, "validate"):
            spec.validate(dict(params[method]))
    unknown = sorted(set(params or {}) - set(methods))
    if unknown:
        raise XAIError(f"parameters given for methods not run: {', '.join(unknown)}", "add them to --methods")
    return methods


def _prepare_out(out: Path) -> Path:
    """The output folder: new, or one this runner made (never a user's folder of other files)."""
    if out.exists() and not out.is_dir():
        raise XAIError(f"output path {out} is a file", "give a folder path for --out")
    if out.is_dir() and any(out.iterdir()) and not ((out / RUN_FILE).exists() or (out / RESULTS).is_dir()):
        raise XAIError(f"output folder {out} is not empty and not a cohort folder", "choose a new folder")
    (out / RESULTS).mkdir(parents=True, exist_ok=True)
    for stale in (out / RESULTS).glob(".*.partial-*"):  # staging left by a killed worker
        shutil.rmtree(stale, ignore_errors=True)
    return out


def _model_hashes(jobs: list[dict]) -> dict[str, str]:
    return {job["case"]["case_id"]: job["model_sha256"] for job in jobs}


def _run_serial(jobs: list[dict], threads: int, device: str, worker_info: dict):
    import torch

    from .plugin import ModelCache

    cache, previous = ModelCache(device), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for job in jobs:
            yield job["key"], run_case(job, cache)
    finally:
        torch.set_num_threads(previous)
        worker_info["serial"] = cache.describe()


def _run_dask(jobs: list[dict], cluster: dict, retries: int, device: str, worker_info: dict):
    import dask
    from distributed import as_completed

    from .plugin import ModelPlugin, describe_worker

    with dask.config.set({"distributed.scheduler.allowed-failures": int(retries)}):
        client, local = _connect(**cluster)
    futures = {}
    try:
        client.register_plugin(ModelPlugin(device, cluster["threads"]))
        for job in jobs:
            future = client.submit(run_case, job, key=TASK_PREFIX + job["key"], retries=retries, pure=False)
            futures[future] = job
        for future in as_completed(list(futures)):
            job = futures[future]
            yield job["key"], _result(future, job)
        worker_info.update(client.run(describe_worker))
    finally:
        for future in futures:
            future.release()
        client.close()
        if local is not None:
            local.close()


def _result(future, job: dict) -> dict:
    """A finished task's row; a task that failed for good becomes an error row."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        return error_row(job, "the worker died every time it ran this case (out of memory?)")
    except XAIError as exc:
        return error_row(job, str(exc))
    except Exception as exc:  # noqa: BLE001 - one unexpected failure must not stop the cohort
        return error_row(job, f"internal error: {type(exc).__name__}: {exc}")


def _connect(scheduler: str | None, workers: int, threads: int, env: dict | None = None):
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="15s"), None
        except (OSError, TimeoutError) as exc:
            raise XAIError(
                f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__})",
                "start it (`dask scheduler`) and its workers, or leave out --scheduler",
            ) from None
    if workers < 1 or threads < 1:
        raise XAIError(
            f"need at least one worker and one thread, got {workers} x {threads}", "use --workers 2"
        )
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        env=dict(env or {}),
    )
    return Client(cluster), cluster
