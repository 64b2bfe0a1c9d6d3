"""A memory budget for one attempt of the worker, so that out-of-memory handling can be exercised.

* On CUDA the budget is a real allocator limit (``torch.cuda.set_per_process_memory_fraction``):
  going over it raises ``torch.OutOfMemoryError`` exactly as a full GPU does.
* On the CPU a watchdog thread samples the process's resident memory; when it grows by more than the
  budget since the attempt started, the main thread gets ``MemoryError`` (through SIGUSR1, so POSIX
  only; elsewhere the CPU budget is not enforced).

``MemoryBudget(None, device)`` does nothing.
"""

from __future__ import annotations

import os
import signal
import threading

_SAMPLE_S = 0.005


class MemoryBudgetExceeded(MemoryError):
    """The attempt used more memory than its budget."""


class MemoryBudget:
    """Context manager: limit the memory an attempt may use on ``device`` to ``budget_mb``."""

    def __init__(self, budget_mb: float | None, device: str = "cpu") -> None:
        self.budget_bytes = None if budget_mb is None else int(float(budget_mb) * 2**20)
        self.device = device
        self.peak_growth = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tripped = False
        self._old_handler = None

    @property
    def enforced(self) -> bool:
        """True when this budget really limits the attempt on this platform."""
        if self.budget_bytes is None:
            return False
        return self.device.startswith("cuda") or hasattr(signal, "SIGUSR1")

    def __enter__(self) -> MemoryBudget:
        if self.budget_bytes is None:
            return self
        if self.device.startswith("cuda"):
            self._enter_cuda()
        elif hasattr(signal, "SIGUSR1") and threading.current_thread() is threading.main_thread():
            self._enter_cpu()
        return self

    def __exit__(self, *exc) -> None:
        if self.budget_bytes is None:
            return
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.set_per_process_memory_fraction(1.0, torch.device(self.device))
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._old_handler is not None:
            signal.signal(signal.SIGUSR1, self._old_handler)

    # ---- CUDA: the caching allocator enforces the limit ------------------------------------
    def _enter_cuda(self) -> None:
        import torch

        dev = torch.device(self.device)
        total = torch.cuda.get_device_properties(dev).total_memory
        fraction = max(1e-6, min(1.0, (torch.cuda.memory_reserved(dev) + self.budget_bytes) / total))
        torch.cuda.set_per_process_memory_fraction(fraction, dev)

    # ---- CPU: resident-memory watchdog ------------------------------------------------------
    def _enter_cpu(self) -> None:
        import psutil

        process = psutil.Process(os.getpid())
        baseline = process.memory_info().rss

        def on_signal(signum, frame):  # noqa: ARG001
            raise MemoryBudgetExceeded(
                f"out of memory: the attempt used {self.peak_growth / 2**20:.1f} MB, over its budget of "
                f"{self.budget_bytes / 2**20:.1f} MB"
            )

        self._old_handler = signal.signal(signal.SIGUSR1, on_signal)
        main_id = threading.main_thread().ident

        def watch() -> None:
            while not self._stop.wait(_SAMPLE_S):
                growth = process.memory_info().rss - baseline
                self.peak_growth = max(self.peak_growth, growth)
                if growth > self.budget_bytes and not self._tripped:
                    self._tripped = True
                    signal.pthread_kill(main_id, signal.SIGUSR1)
                    return

        self._thread = threading.Thread(target=watch, name="xaimed-memory-budget", daemon=True)
        self._thread.start()
