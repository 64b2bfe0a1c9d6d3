"""A distributed WorkerPlugin that loads each model once per worker process and counts the loads."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

PLUGIN_NAME = "xaimed-cohort-models"
MAX_MODELS = 2  # models kept per worker (least recently used one dropped beyond that)


class ModelCache:
    """Loaded models by resolved path; ``loads`` counts how often each was loaded in this process."""

    def __init__(self, device: str = "auto", max_models: int = MAX_MODELS) -> None:
        self.device = device
        self.max_models = max(1, int(max_models))
        self.models: OrderedDict[str, object] = OrderedDict()
        self.loads: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, path: str | os.PathLike):
        """The loaded model of ``path`` (loaded on first use, then reused)."""
        from ..model.loader import load_model

        key = str(Path(path).resolve())
        with self._lock:
            if key not in self.models:
                self.models[key] = load_model(key, self.device)
                self.loads[key] = self.loads.get(key, 0) + 1
                while len(self.models) > self.max_models:
                    self.models.popitem(last=False)
            self.models.move_to_end(key)
            return self.models[key]

    def describe(self) -> dict:
        """``{"pid", "loads": {model path: count}}`` for the run's report."""
        return {"pid": os.getpid(), "loads": dict(self.loads)}


_CACHES: dict[str, ModelCache] = {}  # one per device and process, kept across plugin re-registrations


class ModelPlugin(WorkerPlugin):
    """Gives every worker one :class:`ModelCache`; torch runs ``threads`` threads in each worker."""

    name = PLUGIN_NAME

    def __init__(self, device: str = "auto", threads: int = 1) -> None:
        self.device = device
        self.threads = int(threads)

    def setup(self, worker) -> None:
        import torch

        from .. import explain  # noqa: F401 - import torch, MONAI and the methods before the first task

        torch.set_num_threads(self.threads)
        worker.xaimed_models = _CACHES.setdefault(self.device, ModelCache(self.device))


def worker_cache() -> ModelCache:
    """The model cache of the worker running the current task."""
    from distributed import get_worker

    return get_worker().xaimed_models


def describe_worker(dask_worker) -> dict:
    """What a worker's cache loaded (run on every worker with ``client.run``)."""
    cache = getattr(dask_worker, "xaimed_models", None)
    return cache.describe() if cache is not None else {"pid": os.getpid(), "loads": {}}
