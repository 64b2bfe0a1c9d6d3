"""Out-of-memory fallback: retry with half the chunk size, then on the CPU without a memory budget.

The plan for a job that starts on device ``d`` with chunk ``c`` and budget ``b`` is
``(d, c, b) -> (d, c/2, b) -> ... -> (d, 1, b) -> (cpu, c, None)``; an out-of-memory on that last
attempt is final. Any other error is raised at once. A method that takes a ``MemoryBudget``
(``methods.budget``) halves its chunks itself, so for it the plan is ``(d, c, b) -> (cpu, c, None)``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from ..errors import XAIError

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    """Where and how one try runs: device name, chunk (batch) size, memory budget in MB (or None)."""

    device: str
    chunk: int
    budget_mb: float | None = None

    def describe(self) -> dict:
        return {"device": self.device, "chunk": self.chunk, "budget_mb": self.budget_mb}


class OutOfMemory(XAIError):
    """Out of memory on every attempt of the plan."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a GPU or CPU allocation failure (torch's OutOfMemoryError, MemoryError, allocator errors)."""
    if isinstance(exc, (MemoryError, OutOfMemory)):
        return True
    from ..methods.budget import is_out_of_memory as torch_out_of_memory  # imports torch: worker side only

    return torch_out_of_memory(exc)


def next_attempt(attempt: Attempt, first_chunk: int, halve: bool = True) -> Attempt | None:
    """The attempt after an out-of-memory, or None when there is nothing smaller left.

    ``halve=False`` when the method already halved its chunks itself (it takes a MemoryBudget).
    """
    if halve and attempt.chunk > 1:
        return replace(attempt, chunk=max(1, attempt.chunk // 2))
    if attempt.device != "cpu" or attempt.budget_mb is not None:
        return Attempt("cpu", first_chunk, None)
    return None


def release_memory(device: str) -> None:
    """Give cached memory back after a failed try."""
    gc.collect()
    if device.startswith("cuda"):
        try:
            import torch

            torch.cuda.empty_cache()
        except (ImportError, RuntimeError):
            pass


def run_with_fallback(
    run: Callable[[Attempt], T],
    first: Attempt,
    on_retry: Callable[[Attempt, Attempt, BaseException], None] | None = None,
    *,
    halve: bool = True,
) -> tuple[T, list[dict]]:
    """Run ``run(attempt)`` along the plan until one try fits in memory.

    Returns the result and the list of failed attempts (for the provenance).
    """
    attempt = first
    failed: list[dict] = []
    while True:
        try:
            return run(attempt), failed
        except Exception as exc:  # noqa: BLE001  (only out-of-memory errors are retried)
            if not is_out_of_memory(exc):
                raise
            failed.append({**attempt.describe(), "error": _one_line(exc)})
            following = next_attempt(attempt, first.chunk, halve)
            release_memory(attempt.device)
            if following is None:
                raise OutOfMemory(
                    f"out of memory even on the CPU with chunk size {attempt.chunk} ({_one_line(exc)})",
                    "crop the scan to the region of interest, or use a method with fewer passes",
                ) from None
            if on_retry is not None:
                on_retry(attempt, following, exc)
            attempt = following


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
