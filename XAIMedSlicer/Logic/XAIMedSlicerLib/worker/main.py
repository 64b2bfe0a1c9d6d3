"""The worker process: ``python -m XAIMedSlicerLib.worker JOB.json`` (PythonSlicer inside 3D Slicer).

It reads the job, runs :func:`XAIMedSlicerLib.explain.explain` (or the segment mode) with the
out-of-memory fallback, writes the outputs into ``<out>.partial`` and renames that folder to
``<out>`` when everything is written. Progress goes to the parent as JSON lines (see
:mod:`.protocol`); the exit code says how it ended. ``--devices`` prints the usable devices instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

from ..errors import XAIError
from .fallback import Attempt, OutOfMemory, run_with_fallback
from .job import WorkerJob
from .protocol import Emitter, ExitCode

# Share of the whole job taken by each stage (progress fractions sent to the parent).
STAGES = {"start": (0.0, 0.05), "load": (0.05, 0.12), "explain": (0.12, 0.92), "write": (0.92, 1.0)}
# with ``validate`` the map's checks take the second part of the explain stage's share
VALIDATE_STAGES = {**STAGES, "explain": (0.12, 0.5), "validate": (0.5, 0.92)}
DEFAULT_CHUNK = 4


class Cancelled(Exception):
    """Raised in the main thread when the parent asks the worker to stop (SIGTERM)."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--devices"]:
        print(json.dumps(describe_devices()))
        return int(ExitCode.DONE)
    if len(argv) != 1:
        print("usage: python -m XAIMedSlicerLib.worker JOB.json | --devices", file=sys.stderr)
        return int(ExitCode.USER_ERROR)
    emitter = Emitter.on_private_stdout()
    emitter.start_heartbeat()
    _install_cancel_handler()
    job: WorkerJob | None = None
    try:
        job = WorkerJob.read(argv[0])
        run(job, emitter)
        return int(ExitCode.DONE)
    except Cancelled:
        _discard_partial(job)
        emitter.emit("error", kind="cancelled", message="cancelled")
        return int(ExitCode.CANCELLED)
    except OutOfMemory as exc:
        _discard_partial(job)
        emitter.emit("error", kind="out_of_memory", message=str(exc))
        return int(ExitCode.OUT_OF_MEMORY)
    except XAIError as exc:
        _discard_partial(job)
        emitter.emit("error", kind="user", message=str(exc))
        return int(ExitCode.USER_ERROR)
    except Exception as exc:  # noqa: BLE001  (a bug: report where, keep the traceback in the log)
        _discard_partial(job)
        traceback.print_exc()
        emitter.emit("error", kind="internal", message=_internal_message(exc))
        return int(ExitCode.INTERNAL_ERROR)
    finally:
        emitter.stop_heartbeat()


def run(job: WorkerJob, emitter: Emitter) -> dict:
    """Do the job; returns the result dictionary also written to ``result.json``."""

    def report(stage: str, fraction: float, message: str) -> None:
        lo, hi = (VALIDATE_STAGES if job.validate and job.mode == "explain" else STAGES)[stage]
        emitter.progress(stage, lo + (hi - lo) * fraction, message)

    report("start", 0.0, "loading PyTorch and MONAI")
    import monai.data  # noqa: F401  (imported here, so that the stages after this one are not slowed)
    import monai.transforms  # noqa: F401
    import torch

    from ..io.volumes import read_volume
    from ..model.loader import load_model

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    if job.param_items:  # KEY=VALUE strings from the module or the web page, typed by the method's schema
        from dataclasses import replace

        from ..methods import get_method

        parsed = get_method(job.method).params.parse(job.method, list(job.param_items))
        job = replace(job, params={**job.params, **parsed}, param_items=[])
    out_dir = Path(job.out_dir)
    if out_dir.exists():
        raise XAIError(f"output folder {out_dir} already exists", "give the worker a new output folder")
    partial = _partial_dir(out_dir)
    shutil.rmtree(partial, ignore_errors=True)

    report("load", 0.0, "reading the scan")
    image = read_volume(job.image)
    report("load", 0.5, "loading the model")
    loaded = load_model(job.model, job.device)
    partial.mkdir(parents=True)
    report("explain", 0.0, "running the network")
    _inject_fault(job.fault)
    if job.mode == "segment":
        result = _segment(job, image, loaded, partial, report)
    else:
        result = _explain(job, image, loaded, partial, report, emitter)
    report("write", 0.9, "finishing")
    from ..io.atomic import write_json

    write_json(partial / "result.json", result)
    os.replace(partial, out_dir)
    emitter.emit("result", outputs=sorted(p.name for p in out_dir.iterdir()), summary=_summary(result))
    report("write", 1.0, "done")
    return result


def method_options(method: str) -> tuple[str | None, bool]:
    """The method's chunk-size parameter (or None) and whether it takes a ``budget`` (MemoryBudget)."""
    from ..methods import get_method

    spec = get_method(method)  # the declared schema (methods/params.py) plus the runtime keywords
    chunk = next((name for name in ("chunk", "chunk_size", "batch_size") if spec.accepts(name)), None)
    return chunk, spec.accepts("budget")


def _explain(job: WorkerJob, image, loaded, partial: Path, report, emitter: Emitter) -> dict:
    from dataclasses import replace

    from ..explain import explain
    from ..explanation_io import save_explanation
    from ..io.atomic import write_json

    chunk_param, takes_budget = method_options(job.method)
    first_chunk = (
        int(job.chunk or job.params.get(chunk_param or "", 0) or DEFAULT_CHUNK) if chunk_param else 1
    )
    first = Attempt(str(loaded.device), first_chunk, job.memory_budget_mb)
    if job.memory_budget_mb is not None and not takes_budget:
        emitter.emit("log", message=f"method {job.method} takes no memory budget; the limit is not enforced")
    labels = read_labels(job.labels)
    names = {int(k): v for k, v in job.label_names.items()} or None
    used_params: dict = {}

    def attempt_run(attempt: Attempt):
        import torch

        if str(loaded.device) != attempt.device:
            loaded.to(torch.device(attempt.device))
        params = dict(job.params)
        if chunk_param:
            params[chunk_param] = attempt.chunk
        if takes_budget:
            # the method halves its chunks itself; moving to the CPU is left to this loop, which reports it
            from ..methods.budget import MemoryBudget

            limit = None if attempt.budget_mb is None else int(attempt.budget_mb * 2**20)
            params["budget"] = MemoryBudget(device_limit_bytes=limit, cpu_fallback=False)
        used_params.clear()
        used_params.update(params)
        where = f"{attempt.device}, chunk {attempt.chunk}" if chunk_param else attempt.device
        return explain(
            image,
            loaded,
            job.method,
            job.target,
            labels=labels,
            label_names=names,
            region=job.region,
            mask=job.region_mask,
            box=tuple(job.box) if job.box else None,
            point=tuple(job.point) if job.point else None,
            device=attempt.device,
            seed=0 if job.seed is None else job.seed,
            method_params=params,
            sliding_window=tuple(job.sliding_window) if job.sliding_window else None,
            sliding_overlap=job.sliding_overlap,
            anatomy=job.anatomy,
            progress=lambda f, m: report("explain", f, f"{m} ({where})"),
        )

    def on_retry(failed: Attempt, following: Attempt, exc: BaseException) -> None:
        same = following.device == failed.device and following.budget_mb == failed.budget_mb
        what = (
            f"chunk {following.chunk}" if same else f"the {following.device.upper()} without a memory limit"
        )
        # a method with a MemoryBudget lets an out-of-memory out only once a single item does not fit
        chunks = "chunks halved down to one item" if takes_budget else f"chunk {failed.chunk}"
        message = f"out of memory on {failed.device} with {chunks}; retrying with {what}"
        emitter.emit(
            "retry",
            reason="out_of_memory",
            failed=failed.describe(),
            next=following.describe(),
            message=message,
        )
        report("explain", 0.0, message)

    explanation, failed = run_with_fallback(attempt_run, first, on_retry, halve=not takes_budget)
    validation = None
    if job.validate:
        from .validation import validate_job

        report("validate", 0.0, "checking the map (randomisation, deletion)")
        chosen = explanation.provenance.get("method", {}).get("params", {})
        params = {**used_params, **{k: chosen[k] for k in ("layer", "seed") if k in chosen}}
        validation = validate_job(
            job, image, loaded, explanation, params, lambda f, m: report("validate", f, m)
        )
    report("write", 0.0, "writing the attribution")
    provenance = dict(explanation.provenance)
    provenance["attempts"] = failed
    save_explanation(replace(explanation, provenance=provenance), partial, image_path=job.image)
    write_json(partial / "provenance.json", provenance)
    report("write", 0.5, "rules, text and report")
    from ..reasoning import write_reasoning
    from ..report import write_report

    # the same rules.json / explanation.txt / facts.json / report.html as `xaimed explain` writes
    write_reasoning(explanation, partial, validation=validation, model=loaded)
    _figures(explanation, partial)
    write_report(partial)
    return {
        "mode": "explain",
        "attribution": "attribution.nrrd",
        "labels": "labels.nrrd" if explanation.labels is not None else None,
        "signed": explanation.signed,
        "method": explanation.method,
        "prediction": explanation.prediction,
        "target": explanation.target,
        "structures": explanation.structures,
        "label_names": {str(k): v for k, v in explanation.label_names.items()},
        "peak_ras": explanation.peak_ras(),
        "attempts": failed,
        "provenance": provenance,
        "validation": validation,
    }


def _figures(explanation, folder: Path) -> None:
    """The annotated key slices (colour bar, letters, caption) for the report, on a scratch MRML scene."""
    from ..scene import build_scene
    from ..scene.figure import render_figures

    bundle = build_scene(explanation)
    render_figures(bundle, explanation, folder)


def _segment(job: WorkerJob, image, loaded, partial: Path, report) -> dict:
    from ..io.volumes import write_volume
    from .segment import predict_labels

    labels, names = predict_labels(image, loaded, lambda f, m: report("explain", f, m))
    report("write", 0.0, "writing the label map")
    write_volume(labels, partial / "labels.nrrd")
    return {
        "mode": "segment",
        "labels": "labels.nrrd",
        "label_names": {str(k): v for k, v in names.items()},
        "model": {"path": str(loaded.path), "name": loaded.card.name, "sha256": loaded.sha256},
    }


def read_labels(path: str | None):
    if not path:
        return None
    from ..io.volumes import read_volume

    return read_volume(path)


def describe_devices() -> list[dict]:
    """The devices this Python can use, with the GPU's name and free memory."""
    import torch

    devices = [{"device": "cpu", "name": "CPU", "threads": torch.get_num_threads()}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            devices.append(
                {
                    "device": f"cuda:{i}",
                    "name": torch.cuda.get_device_name(i),
                    "free_mb": free / 2**20,
                    "total_mb": total / 2**20,
                }
            )
    return devices


def _summary(result: dict) -> dict:
    keys = ("mode", "method", "signed", "target", "peak_ras", "attempts", "label_names")
    summary = {k: result[k] for k in keys if k in result}
    pred = result.get("prediction") or {}
    summary["predicted_class"] = pred.get("predicted_class")
    if result.get("validation"):
        summary["flags"] = result["validation"]["text"]
    return summary


def _partial_dir(out_dir: Path) -> Path:
    return out_dir.with_name(out_dir.name + ".partial")


def _discard_partial(job: WorkerJob | None) -> None:
    if job is not None:
        shutil.rmtree(_partial_dir(Path(job.out_dir)), ignore_errors=True)


def _install_cancel_handler() -> None:
    def handler(signum, frame):  # noqa: ARG001
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        raise Cancelled()

    signal.signal(signal.SIGTERM, handler)


def _inject_fault(fault: str | None) -> None:
    """Testing aid: crash, raise or hang the way a broken network or driver would."""
    if fault == "segfault":
        import ctypes

        ctypes.string_at(0)  # reads address 0: a real segmentation fault
    elif fault == "abort":
        os.abort()
    elif fault == "exception":
        raise RuntimeError("fault injected for testing")
    elif fault == "hang":
        while True:
            time.sleep(0.05)


def _internal_message(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" in {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    return (
        f"internal error {type(exc).__name__}{where}: {text}. Fix: please report it with the worker log; "
        "Slicer itself is unaffected."
    )
