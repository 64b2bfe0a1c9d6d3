"""The memory budget: chunk sizes, halving on out-of-memory, CPU fallback, peak memory, precision guard."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest
import torch

from test_methods_support import one_thread  # noqa: F401  (autouse fixture)
from tinynets import small_densenet
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.budget import ChunkReport, MemoryBudget, run_chunks
from XAIMedSlicerLib.methods.gradients import gradient_bytes_per_point
from XAIMedSlicerLib.methods.precision import checked_dtype
from XAIMedSlicerLib.methods.targets import ClassTarget


@pytest.fixture(scope="module")
def net_and_input():
    torch.manual_seed(2)
    net = small_densenet()
    x = torch.randn(1, 1, 16, 20, 16)
    return net, x


def test_chunk_size_follows_free_host_memory():
    budget = MemoryBudget(fraction=0.5, max_chunk_cpu=10**9)
    cpu = torch.device("cpu")
    per_item = 10**8
    chunk = budget.chunk_size(per_item, 10**9, cpu)
    available = psutil.virtual_memory().available
    assert 1 <= chunk <= available * 0.5 / per_item + 1
    assert budget.chunk_size(per_item, 3, cpu) <= 3
    assert budget.chunk_size(10**18, 50, cpu) == 1


def test_out_of_memory_halves_the_chunk_and_keeps_the_result(net_and_input):
    net, x = net_and_input
    per_point = gradient_bytes_per_point(net, x)
    # one fixed set of 8 path points (the adaptive default places its points in rounds)
    ref = get_method("ig").fn(net, x, ClassTarget(1), steps=8, rule="gausslegendre")
    # a simulated device that holds two path points, while free host memory suggests all eight
    budget = MemoryBudget(device_limit_bytes=int(2.5 * per_point), max_chunk_cpu=8)
    got = get_method("ig").fn(net, x, ClassTarget(1), steps=8, rule="gausslegendre", budget=budget)
    chunks = got.info["chunks"]
    assert chunks["first_chunk"] == 8 and chunks["final_chunk"] == 2 and chunks["retries"] == 2
    assert not chunks["fell_back_to_cpu"]
    torch.testing.assert_close(got.map, ref.map, rtol=1e-4, atol=1e-7)


def test_default_ig_rule_under_a_two_point_budget_gives_the_same_map(net_and_input):
    net, x = net_and_input
    per_point = gradient_bytes_per_point(net, x)
    ref = get_method("ig").fn(net, x, ClassTarget(1), steps=8)
    budget = MemoryBudget(device_limit_bytes=int(2.5 * per_point), max_chunk_cpu=8)
    got = get_method("ig").fn(net, x, ClassTarget(1), steps=8, budget=budget)
    assert got.info["chunks"]["retries"] >= 1 and not got.info["chunks"]["fell_back_to_cpu"]
    torch.testing.assert_close(got.map, ref.map, rtol=1e-4, atol=1e-7)


def test_out_of_memory_with_one_item_falls_back_to_cpu_with_a_message(net_and_input):
    net, x = net_and_input
    ref = get_method("smoothgrad").fn(net, x, ClassTarget(0), samples=4, seed=1)
    budget = MemoryBudget(device_limit_bytes=1000)  # not even one item fits
    with pytest.warns(RuntimeWarning, match="continuing on the CPU"):
        got = get_method("smoothgrad").fn(net, x, ClassTarget(0), samples=4, seed=1, budget=budget)
    chunks = got.info["chunks"]
    assert chunks["fell_back_to_cpu"] and chunks["device"] == "cpu" and "CPU" in chunks["message"]
    assert chunks["retries"] >= 3  # 4 -> 2 -> 1 -> CPU
    torch.testing.assert_close(got.map, ref.map, rtol=1e-5, atol=1e-10)


def test_a_non_memory_error_is_not_swallowed():
    def fn(_a, _b, _d):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_chunks(4, fn, per_item_bytes=1, device=torch.device("cpu"))


def test_run_chunks_covers_every_item_once_after_halving():
    seen: list[int] = []
    report = ChunkReport()

    def fn(a, b, _d):
        seen.extend(range(a, b))
        return b - a

    sizes = run_chunks(
        11,
        fn,
        per_item_bytes=100,
        device=torch.device("cpu"),
        budget=MemoryBudget(device_limit_bytes=350),
        chunk=8,
        report=report,
    )
    assert (
        seen == list(range(11)) and sum(sizes) == 11 and max(sizes) == 2 and report.retries == 2
    )  # 8 -> 4 -> 2


def test_peak_memory_sees_a_large_allocation():
    # a fresh process: in a long test session the allocator may hand back memory it already holds
    script = (
        "import time, torch\n"
        "from XAIMedSlicerLib.methods.budget import PeakMemory\n"
        "with PeakMemory(torch.device('cpu'), interval=0.001) as peak:\n"
        "    block = torch.ones(64 * 2**20 // 4)\n"
        "    block += 1\n"
        "    time.sleep(0.05)\n"
        "    del block\n"
        "print(peak.peak_bytes, peak.peak_total_bytes)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    peak, total = (int(v) for v in out.split())
    assert peak >= 32 * 2**20
    assert total >= peak


def test_every_method_reports_its_peak_memory(net_and_input):
    net, x = net_and_input
    for name, params in [("saliency", {}), ("ig", {"steps": 2}), ("smoothgrad", {"samples": 2})]:
        info = get_method(name).fn(net, x, ClassTarget(0), **params).info
        assert info["peak_total_bytes"] > 0 and "peak_bytes" in info


def test_reduced_precision_is_kept_only_within_tolerance(net_and_input):
    net, x = net_and_input
    target = ClassTarget(1)
    dtype, info = checked_dtype(net, x, target, "bf16", gradient=True, tolerance=1.0)
    assert dtype == torch.bfloat16 and info["precision"] == "bfloat16"
    assert 0 < info["gradient_relative_error"] < 1.0
    with pytest.warns(RuntimeWarning, match="using fp32"):
        dtype, info = checked_dtype(net, x, target, "bf16", gradient=True, tolerance=1e-9)
    assert dtype is None and info["precision"] == "fp32"
    assert checked_dtype(net, x, target, "auto", gradient=False)[0] is None  # CPU: fp32
