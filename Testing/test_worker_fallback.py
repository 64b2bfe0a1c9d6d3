"""The worker's out-of-memory plan and its exit-code words, on real allocation failures.

A request for 2**50 bytes (1 PiB) really fails in PyTorch's CPU allocator, so the plan is driven by
genuine out-of-memory errors, not by raised stand-ins.
"""

from __future__ import annotations

import signal

import pytest
import torch

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.worker.fallback import Attempt, OutOfMemory, is_out_of_memory, run_with_fallback
from XAIMedSlicerLib.worker.protocol import crash_description, decode

TOO_MUCH = 2**50


def allocate(nbytes: int) -> torch.Tensor:
    return torch.empty(nbytes, dtype=torch.uint8)


def test_a_real_allocator_failure_is_recognised():
    with pytest.raises(RuntimeError) as err:
        allocate(TOO_MUCH)
    assert is_out_of_memory(err.value)
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only allocation errors, by type


def test_the_methods_memory_budget_error_is_recognised():
    from XAIMedSlicerLib.methods.budget import MemoryBudget

    with pytest.raises(Exception) as err:  # noqa: B017  (the type is torch's; checked below)
        MemoryBudget(device_limit_bytes=1000).check(10_000, torch.device("cpu"))
    assert isinstance(err.value, torch.OutOfMemoryError) and is_out_of_memory(err.value)


def test_plan_halves_the_chunk_then_moves_to_the_cpu_without_a_budget():
    tried = []

    def run(attempt: Attempt) -> int:
        tried.append(attempt)
        # the budgeted device cannot hold any chunk; the CPU without a budget can
        allocate(TOO_MUCH if attempt.budget_mb is not None else attempt.chunk * 1024)
        return attempt.chunk

    retries = []
    result, failed = run_with_fallback(
        run, Attempt("cuda:0", 8, 512.0), lambda a, b, e: retries.append((a, b))
    )
    assert [(a.device, a.chunk, a.budget_mb) for a in tried] == [
        ("cuda:0", 8, 512.0),
        ("cuda:0", 4, 512.0),
        ("cuda:0", 2, 512.0),
        ("cuda:0", 1, 512.0),
        ("cpu", 8, None),
    ]
    assert result == 8 and len(failed) == 4 and len(retries) == 4
    assert all("can't allocate memory" in f["error"] or "not enough memory" in f["error"] for f in failed)


def test_methods_that_halve_themselves_go_straight_to_the_cpu():
    tried = []

    def run(attempt: Attempt) -> str:
        tried.append(attempt)
        allocate(TOO_MUCH if attempt.device != "cpu" else 16)
        return attempt.device

    result, failed = run_with_fallback(run, Attempt("cuda:0", 8, None), halve=False)
    assert result == "cpu" and [(a.device, a.chunk) for a in tried] == [("cuda:0", 8), ("cpu", 8)]


def test_out_of_memory_on_the_cpu_is_final_and_one_line():
    tried = []

    def run(attempt: Attempt):
        tried.append(attempt)
        return allocate(TOO_MUCH)

    with pytest.raises(OutOfMemory) as err:
        run_with_fallback(run, Attempt("cpu", 2, None))
    assert [a.chunk for a in tried] == [2, 1]
    assert isinstance(err.value, XAIError) and "\n" not in str(err.value) and "Fix:" in str(err.value)


def test_other_errors_are_not_retried():
    tried = []

    def run(attempt: Attempt):
        tried.append(attempt)
        return torch.ones(2, 3) @ torch.ones(2, 3)  # a real shape error

    with pytest.raises(RuntimeError):
        run_with_fallback(run, Attempt("cpu", 4, 100.0))
    assert len(tried) == 1


def test_exit_codes_in_words():
    assert crash_description(-signal.SIGSEGV) == "segmentation fault (SIGSEGV)"
    assert crash_description(-signal.SIGABRT) == "abort (SIGABRT)"
    assert crash_description(128 + signal.SIGSEGV) == "segmentation fault (SIGSEGV)"
    assert crash_description(0xC0000005) == "access violation (0xC0000005)"
    assert crash_description(-1073741819) == "access violation (0xC0000005)"  # the same, as a signed int
    for ordinary in (0, 1, 2, 3, 4):
        assert crash_description(ordinary) is None


def test_only_protocol_lines_are_messages():
    assert decode('{"type": "progress", "t": 1.0, "fraction": 0.5}')["fraction"] == 0.5
    for other in ("", "plain text", "{not json", '{"no": "type"}', "[1, 2]", '{"type": 3}'):
        assert decode(other) is None
