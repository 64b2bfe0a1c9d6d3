"""Memory budget shared by every method: chunk sizes, out-of-memory retries, CPU fallback, peak memory.

A method splits its internal loop (IG steps, noise samples, occlusion windows) into chunks and hands
them to :func:`run_chunks`. The first chunk size comes from the free GPU memory (or the available host
RAM) and an estimate of the bytes one item needs. When a chunk runs out of memory it is halved and
retried; when even a single item does not fit, the work moves to the CPU with a warning.

``MemoryBudget(device_limit_bytes=...)`` models a device with that much memory: a chunk whose
estimated bytes exceed it raises a simulated ``torch.OutOfMemoryError``. This makes the recovery path
testable on a CPU-only machine, and lets a user cap what a run may use.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psutil
import torch
from torch import nn

T = TypeVar("T")


@dataclass
class MemoryBudget:
    """How much memory a chunk may use.

    ``fraction``: share of the free memory one chunk may take. ``max_chunk``: upper bound on items per
    chunk on a GPU; ``max_chunk_cpu`` and ``cpu_chunk_bytes`` on the CPU, where large batches add memory
    traffic, not speed (measured: DenseNet121 forward + backward per item costs the same at batch 8 as at
    batch 1 at 96^3, and 1.6x more at batch 5 than at batch 1 at 128^3).
    ``device_limit_bytes``: simulated capacity of the compute device (``None``: the real one).
    ``cpu_fallback``: move to the CPU when a single item does not fit.
    """

    fraction: float = 0.5
    max_chunk: int = 64
    max_chunk_cpu: int = 4
    cpu_chunk_bytes: int = 2**30
    device_limit_bytes: int | None = None
    cpu_fallback: bool = True

    def free_bytes(self, device: torch.device) -> int:
        """Free memory of ``device``: CUDA's free memory, or the host's available RAM."""
        if device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(device)
            return int(free)
        return int(psutil.virtual_memory().available)

    def chunk_size(
        self, per_item_bytes: int, n_items: int, device: torch.device, fixed_bytes: int = 0
    ) -> int:
        """Items per chunk so that ``fixed + chunk * per_item`` stays within the budget (at least 1)."""
        usable = self.free_bytes(device) * self.fraction - fixed_bytes
        chunk = int(usable // max(1, per_item_bytes))
        cap = self.max_chunk
        if device.type != "cuda":
            cap = min(self.max_chunk_cpu, max(1, self.cpu_chunk_bytes // max(1, per_item_bytes)))
        return max(1, min(n_items, cap, chunk))

    def check(self, estimated_bytes: int, device: torch.device, simulated: bool = True) -> None:
        """Raise a simulated out-of-memory error when a chunk would exceed ``device_limit_bytes``."""
        if simulated and self.device_limit_bytes is not None and estimated_bytes > self.device_limit_bytes:
            raise torch.OutOfMemoryError(
                f"simulated out of memory on {device}: chunk needs {estimated_bytes} bytes, "
                f"limit {self.device_limit_bytes}"
            )


def is_out_of_memory(err: BaseException) -> bool:
    """True for CUDA out-of-memory errors and failed host allocations."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@dataclass
class ChunkReport:
    """What happened while running the chunks (goes into ``Attribution.info``)."""

    first_chunk: int = 0
    final_chunk: int = 0
    retries: int = 0
    device: str = ""
    fell_back_to_cpu: bool = False
    message: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def run_chunks(
    n_items: int,
    fn: Callable[[int, int, torch.device], T],
    *,
    per_item_bytes: int,
    device: torch.device,
    budget: MemoryBudget | None = None,
    fixed_bytes: int = 0,
    chunk: int | None = None,
    report: ChunkReport | None = None,
    progress: Callable[[float, str], None] | None = None,
    label: str = "",
) -> list[T]:
    """Run ``fn(start, stop, device)`` over ``range(n_items)`` in chunks; return the results in order.

    ``fn`` must not keep side effects from a failed call: a chunk that runs out of memory is retried
    with half the items, and after a failure with one item everything left runs on the CPU.
    """
    budget = budget or MemoryBudget()
    report = report if report is not None else ChunkReport()
    size = int(chunk) if chunk else budget.chunk_size(per_item_bytes, n_items, device, fixed_bytes)
    size = max(1, min(size, n_items))
    report.first_chunk = size
    on_cpu_fallback = False
    results: list[T] = []
    start = 0
    while start < n_items:
        # equal chunks of at most ``size``: no small last chunk (a batch of 1 costs about 1.3x per item
        # on the CPU), e.g. 25 items by 4 run as 4,4,4,4,3,3,3 rather than 4,4,4,4,4,4,1
        left = n_items - start
        stop = start + math.ceil(left / math.ceil(left / size))
        try:
            budget.check(fixed_bytes + (stop - start) * per_item_bytes, device, simulated=not on_cpu_fallback)
            results.append(fn(start, stop, device))
        except Exception as err:  # noqa: BLE001 - only out-of-memory errors are handled
            if not is_out_of_memory(err):
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            report.retries += 1
            if size > 1:
                size = max(1, size // 2)
                continue
            if not budget.cpu_fallback or on_cpu_fallback:
                raise
            report.message = (
                f"{label or 'attribution'}: one item does not fit in the memory of {device}; "
                "continuing on the CPU (slower)"
            )
            warnings.warn(report.message, RuntimeWarning, stacklevel=2)
            if progress:
                progress(start / n_items, report.message)
            device, on_cpu_fallback = torch.device("cpu"), True
            report.fell_back_to_cpu = True
            size = max(
                1, min(n_items - start, budget.chunk_size(per_item_bytes, n_items, device, fixed_bytes))
            )
            continue
        start = stop
        if progress:
            progress(start / n_items, f"{label}: {start}/{n_items}")
    report.final_chunk = size
    report.device = str(device)
    return results


_CPU_COPIES: dict[int, nn.Module] = {}


def model_on(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` itself when it already lives on ``device``, else a cached copy there (CPU fallback)."""
    try:
        current = next(model.parameters()).device
    except StopIteration:
        return model
    if current == device:
        return model
    key = id(model)
    copy = _CPU_COPIES.get(key)
    if copy is None:
        import copy as _copy

        # parameters and buffers go straight to the target device: no second copy on a full GPU
        memo: dict[int, object] = {}
        for p in model.parameters():
            memo[id(p)] = nn.Parameter(p.detach().to(device), requires_grad=p.requires_grad)
        for b in model.buffers():
            memo[id(b)] = b.detach().to(device)
        copy = _copy.deepcopy(model, memo).to(device).eval()
        _CPU_COPIES.clear()
        _CPU_COPIES[key] = copy
    return copy


def activation_bytes(model: nn.Module, x: torch.Tensor) -> tuple[int, int, torch.Tensor]:
    """One no-grad forward of ``x``: ``(sum of leaf output bytes, largest leaf output bytes, output)``.

    The sum approximates what a backward pass keeps per item; the largest output bounds what a
    no-grad pass holds at once. TorchScript models take no hooks: 64x the input size is assumed.
    """
    sizes: list[int] = []

    def hook(_m, _i, out):
        if isinstance(out, torch.Tensor):
            sizes.append(out.numel() * out.element_size())

    handles = []
    if not isinstance(model, torch.jit.ScriptModule):
        handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    batch = max(1, x.shape[0])
    per_input = x[0].numel() * x.element_size()
    if not sizes:
        return 64 * per_input, 8 * per_input, out
    return sum(sizes) // batch + 2 * per_input, max(sizes) // batch, out


class PeakMemory:
    """Context manager measuring peak memory: CUDA's allocator peak, or the process RSS on the CPU.

    ``peak_bytes`` is the increase above the level at entry; ``peak_total_bytes`` the absolute peak.
    """

    def __init__(self, device: torch.device, interval: float = 0.005) -> None:
        self.device = device
        self.interval = interval
        self.peak_bytes = 0
        self.peak_total_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            proc = psutil.Process()
            self._start = proc.memory_info().rss
            self._max = self._start

            def sample() -> None:
                while not self._stop.is_set():
                    self._max = max(self._max, proc.memory_info().rss)
                    time.sleep(self.interval)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            peak = max(self._max, psutil.Process().memory_info().rss)
        self.peak_total_bytes = int(peak)
        self.peak_bytes = int(max(0, peak - self._start))

    def as_dict(self) -> dict:
        return {
            "peak_bytes": self.peak_bytes,
            "peak_total_bytes": self.peak_total_bytes,
            "device": str(self.device),
        }
