"""A worker job: what to compute, on which files, written as ``job.json`` in a temporary folder.

Layout of a job folder (created by :func:`create_job_folder`)::

    xaimed-job-XXXX/
      job.json          the WorkerJob
      input/            image.nrrd, labels.nrrd, region.nrrd (written by the parent)
      out.partial/      the worker's output while it runs (removed on cancel or failure)
      out/              attribution.nrrd, result.json, ... (appears complete, by one rename)
      worker.log        the worker's stderr
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import XAIError

MODES = ("explain", "segment")
REGIONS = ("predicted", "mask", "box", "point")
FAULTS = ("segfault", "abort", "exception", "hang")


@dataclass
class WorkerJob:
    """One unit of background work. Paths are absolute strings so that the file is self-contained.

    * ``mode``: ``explain`` (attribution) or ``segment`` (run a segmentation network, write labels).
    * ``target``: class name or index; None explains the predicted class.
    * ``region``: for segmentation networks, where the class logits are summed: the ``predicted``
      mask of the class, the ``mask`` file ``region_mask`` (on the scan's grid), a RAS ``box``
      ``(r0, a0, s0, r1, a1, s1)`` in mm, or the predicted component at a RAS ``point``.
    * ``chunk``: batch size of chunked methods (halved after an out-of-memory); None = method default.
    * ``memory_budget_mb``: memory allowed on the first device; the CPU fallback has no budget.
    * ``sliding_window``: ROI size (voxels) to run a patch network over a full-size scan by sliding
      windows with ``sliding_overlap``; None runs the network on the whole input.
    * ``validate``: also run the map's sanity and faithfulness checks (``metrics.validate``) with
      ``validate_options`` (``layers``, ``steps``, ``n_random``, ...), written as ``result["validation"]``.
    * ``fault``: testing aid that makes the worker crash, raise or hang at the start of the work.
    """

    image: str
    model: str
    out_dir: str
    mode: str = "explain"
    method: str = "gradcam"
    target: str | int | None = None
    region: str = "predicted"
    region_mask: str | None = None
    box: list[float] | None = None
    point: list[float] | None = None
    labels: str | None = None
    label_names: dict[str, str] = field(default_factory=dict)
    device: str = "auto"
    params: dict = field(default_factory=dict)
    param_items: list[str] = field(default_factory=list)  # KEY=VALUE, typed in the worker by the schema
    chunk: int | None = None
    memory_budget_mb: float | None = None
    seed: int | None = None
    sliding_window: list[int] | None = None
    anatomy: str | None = None  # "chest": the worker labels a radiograph's lungs, heart, mediastinum
    sliding_overlap: float = 0.25
    validate: bool = False
    validate_options: dict = field(default_factory=dict)
    fault: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise XAIError(f"unknown worker mode '{self.mode}'", f"use one of {', '.join(MODES)}")
        if self.region not in REGIONS:
            raise XAIError(f"unknown target region '{self.region}'", f"use one of {', '.join(REGIONS)}")
        needs = {"mask": ("region_mask", None), "box": ("box", 6), "point": ("point", 3)}.get(self.region)
        if needs is not None:
            value = getattr(self, needs[0])
            if not value or (needs[1] is not None and len(value) != needs[1]):
                raise XAIError(
                    f"target region '{self.region}' needs {needs[0]}", f"set {needs[0]} in the job"
                )
        if self.fault is not None and self.fault not in FAULTS:
            raise XAIError(f"unknown fault '{self.fault}'", f"use one of {', '.join(FAULTS)}")
        if self.chunk is not None and int(self.chunk) < 1:
            raise XAIError(f"chunk must be at least 1, got {self.chunk}", "give a positive batch size")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> WorkerJob:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise XAIError(f"unknown job fields {unknown}", f"use only {sorted(known)}")
        return cls(**data)

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``job.json`` atomically."""
        from ..io.atomic import write_json

        write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def read(cls, path: str | os.PathLike) -> WorkerJob:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise XAIError(f"job file not found: {path}", "start the worker through WorkerProcess") from None
        except json.JSONDecodeError as exc:
            raise XAIError(
                f"job file {path} is not valid JSON (line {exc.lineno})", "rewrite the job"
            ) from None
        return cls.from_dict(data)


@dataclass(frozen=True)
class JobFolder:
    """Paths of one job's temporary folder."""

    root: Path

    @property
    def job_path(self) -> Path:
        return self.root / "job.json"

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"

    @property
    def partial_dir(self) -> Path:
        return self.root / "out.partial"

    @property
    def log_path(self) -> Path:
        return self.root / "worker.log"

    def input_path(self, name: str) -> Path:
        return self.input_dir / name

    def remove_partial_output(self) -> None:
        """Delete what an interrupted worker left behind (the finished ``out/`` is untouched)."""
        shutil.rmtree(self.partial_dir, ignore_errors=True)

    def remove(self) -> None:
        """Delete the whole job folder (it is ours: created by :func:`create_job_folder`)."""
        shutil.rmtree(self.root, ignore_errors=True)


def create_job_folder(base: str | os.PathLike | None = None) -> JobFolder:
    """A new, empty job folder under ``base`` (default: the system temporary folder)."""
    if base is not None:
        Path(base).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="xaimed-job-", dir=base))
    (root / "input").mkdir()
    return JobFolder(root)
