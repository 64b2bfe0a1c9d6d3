"""Background jobs of the module: inputs written as NRRD into a temporary folder, the worker started,
its output loaded into the scene when it is done."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import XAIError
from .inputs import region_arguments, segmentation_to_labels
from .request import choice, is_set, method_parameter_items, sliding_window
from .structures import model_colors


class SessionJob:
    """A running background job: the worker process, its folder, and what to do with its output."""

    def __init__(self, mode: str, process, folder, input_node, names=None, colors=None) -> None:
        self.mode = mode  # "explain" or "segment"
        self.process = process  # worker.WorkerProcess: poll(), wait(), cancel(), last_progress, outcome
        self.folder = folder  # worker.JobFolder
        self.input_node = input_node
        self.names = names or {}
        self.colors = colors or {}
        self.started = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the job started."""
        return time.monotonic() - self.started

    def poll(self) -> tuple[int, dict, object]:
        """Take the worker's messages: (percent done 0..100, last progress message, outcome or None)."""
        self.process.poll()
        progress = self.process.last_progress
        percent = int(round(100 * min(max(float(progress.get("fraction") or 0.0), 0.0), 1.0)))
        return percent, progress, self.process.outcome

    def cleanup(self) -> None:
        """Delete the temporary job folder (the scene holds the result nodes by then)."""
        self.folder.remove()


def _write_image(request, folder) -> str:
    from ..io.volumes import write_volume
    from ..scene.volumes import volume_from_node

    return str(write_volume(volume_from_node(request.inputVolume), folder.input_path("image.nrrd")))


def start_explain(ss, request, *, fault: str | None = None) -> SessionJob:
    """Write the scan (and structures, target region) into a new job folder and start the worker.

    ``fault``: testing aid passed to the worker (``segfault``, ``abort``, ``exception``, ``hang``).
    The folder is removed again when anything fails before the worker runs.
    """
    from ..worker import create_job_folder

    if not request.inputVolume or not is_set(request.modelPath):
        raise XAIError("no input volume or model chosen", "select an input volume and a model")
    folder = create_job_folder()
    try:
        return _start_explain_in(ss, folder, request, fault)
    except Exception:
        folder.remove()
        raise


def _start_explain_in(ss, folder, request, fault) -> SessionJob:
    from ..io.volumes import write_volume
    from ..worker import WorkerJob, WorkerProcess

    image = _write_image(request, folder)
    names, colors, labels_path = {}, {}, None
    if request.structures:
        labels, names, colors = segmentation_to_labels(ss, request.structures, request.inputVolume)
        labels_path = str(write_volume(labels, folder.input_path("labels.nrrd")))
    job = WorkerJob(
        image=image,
        model=str(Path(request.modelPath).expanduser().resolve()),  # the worker runs in its own folder
        out_dir=str(folder.out_dir),
        method=request.method,
        target=str(request.targetClass or "").strip() or None,
        region=choice(request.targetRegion),
        labels=labels_path,
        label_names={str(k): v for k, v in names.items()},
        device=request.device,
        params={"steps": int(request.igSteps)} if request.method == "ig" else {},
        param_items=method_parameter_items(request),
        sliding_window=sliding_window(request),
        anatomy="chest" if getattr(request, "chestAnatomy", False) and not request.structures else None,
        chunk=int(request.chunkSize) or None,
        memory_budget_mb=float(request.memoryBudgetMB) or None,
        seed=int(request.seed),
        validate=bool(getattr(request, "validateMap", False)),
        fault=fault,
        **region_arguments(ss, request, folder),
    )
    process = WorkerProcess(folder, job).start()
    return SessionJob("explain", process, folder, request.inputVolume, names, colors)


def start_segment(request) -> SessionJob:
    """Run a segmentation network (for example MeshNet) in the worker to make the structures."""
    from ..worker import WorkerJob, WorkerProcess, create_job_folder

    if not request.inputVolume or not is_set(request.segmentationModelPath):
        raise XAIError("no input volume or segmentation network chosen", "select both first")
    colors = model_colors(Path(request.segmentationModelPath))
    folder = create_job_folder()
    try:
        job = WorkerJob(
            image=_write_image(request, folder),
            model=str(Path(request.segmentationModelPath).expanduser().resolve()),
            out_dir=str(folder.out_dir),
            mode="segment",
            device=request.device,
        )
        process = WorkerProcess(folder, job).start()
    except Exception:
        folder.remove()
        raise
    return SessionJob("segment", process, folder, request.inputVolume, colors=colors)


def finish_job(ss, job: SessionJob, outcome):
    """Load a finished job into the scene. Explain: returns the SceneBundle; segment: the segmentation."""
    from ..scene import build_scene
    from ..scene.flags import set_flags
    from ..scene.segmentation import add_segmentation
    from ..worker import load_explanation, load_labels, load_validation

    if not outcome.ok:
        raise XAIError(f"the job did not finish: {outcome.message}", "run it again")
    if job.mode == "segment":
        labels, names = load_labels(outcome.out_dir)
        segmentation, _labelmap = add_segmentation(
            ss,
            labels,
            names,
            colors=job.colors or None,
            reference_node=job.input_node,
            name=f"{job.input_node.GetName()} structures",
            keep_labelmap=False,
        )
        return segmentation
    explanation = load_explanation(outcome.out_dir, job.folder.input_path("image.nrrd"))
    bundle = build_scene(explanation, ss=ss, image_node=job.input_node, colors=job.colors or None)
    validation = load_validation(outcome.out_dir)
    if validation is not None:
        # the attribution node was made just now, so marking its name changes no node of the user's
        set_flags(bundle.attribution_node, validation, mark_name=True)
    return bundle
