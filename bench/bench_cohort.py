"""Cohort throughput on Dask: cases per minute with 1 and 2 LocalCluster workers, and the scaling.

    python bench/bench_cohort.py [--cases 8] [--methods gradcam] [--workers 1 2] [--out FILE.json]

Cases are the demo's MNI152 cases (``demo.cases.make_case``, seeds ``SEED_BASE + n``, a lesion and its
mask in every other case) explained by the committed demo classifier through ``cohort.run_cohort`` with
the default metrics (localisation where there is a mask, deletion AUC). For each worker count a fresh
LocalCluster (processes, one thread each) is started and warmed with one case per worker (imports and
the model load), then the cohort runs on it through ``--scheduler``'s path into a new folder.
Reported per worker count: startup (cluster + warm-up) seconds, wall seconds of the run, cases per
minute, and the CPU seconds the workers spent per map (from the worker processes' own counters, so it
does not depend on how busy the shared machine was) and the cases per minute that CPU time allows
when every worker has a core of its own. Prints a markdown table, writes JSON.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

SEED_BASE = 7_000_000  # outside the training (1e6..), held-out (2e6..) and test (3.1e6..) seeds
ROOT = Path(__file__).resolve().parents[1]


def write_cases(folder: Path, seeds: list[int]) -> Path:
    """A cases.csv of demo cases (a lesion and its mask in every other one) in ``folder``."""
    from XAIMedSlicerLib.cohort.cases import write_demo_cohort

    return write_demo_cohort(folder, [(f"s{seed}", seed, seed % 2 == 0) for seed in seeds])


def worker_cpu_seconds() -> float:
    """User + system CPU seconds of the calling (worker) process."""
    import psutil

    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def measure(workers: int, cases_csv: Path, warm_csv: Path, methods: list[str], scratch: Path) -> dict:
    from distributed import Client, LocalCluster

    from XAIMedSlicerLib.cohort import run_cohort

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        address = cluster.scheduler_address
        run_cohort(warm_csv, methods, scratch / f"warm-{workers}", scheduler=address, device="cpu")
        startup = time.perf_counter() - start
        cpu_before = client.run(worker_cpu_seconds)
        begin = time.perf_counter()
        run = run_cohort(cases_csv, methods, scratch / f"run-{workers}", scheduler=address, device="cpu")
        wall = time.perf_counter() - begin
        cpu_after = client.run(worker_cpu_seconds)
    cpu = sum(cpu_after[w] - cpu_before.get(w, 0.0) for w in cpu_after)
    cases = len({r["case_id"] for r in run.rows})
    maps = run.computed
    return {
        "workers": workers,
        "cases": cases,
        "maps": maps,
        "errors": run.errors,
        "startup_s": startup,
        "wall_s": wall,
        "cases_per_minute": 60.0 * cases / wall,
        "worker_cpu_s_per_map": cpu / max(maps, 1),
        # what the workers' CPU time allows when each has a free core (client overhead not included)
        "cpu_bound_cases_per_minute": 60.0 * workers * cases / max(cpu, 1e-9),
        "load_average_1min": os.getloadavg()[0],
        "loads": run.workers,
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| workers | cases | maps | startup s | wall s | cases/min | worker CPU s per map "
        "| cases/min if each worker had a core | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['cases']} | {r['maps']} | {r['startup_s']:.1f} | {r['wall_s']:.1f} | "
            f"{r['cases_per_minute']:.1f} | {r['worker_cpu_s_per_map']:.2f} | "
            f"{r['cpu_bound_cases_per_minute']:.1f} | {r['load_average_1min']:.1f} |"
        )
    return "\n".join(lines)


def scaling(rows: list[dict]) -> list[str]:
    base = next((r for r in rows if r["workers"] == 1), None)
    if base is None:
        return []
    notes = []
    for r in rows:
        if r["workers"] == 1:
            continue
        measured = r["cases_per_minute"] / base["cases_per_minute"]
        cpu_bound = r["cpu_bound_cases_per_minute"] / base["cpu_bound_cases_per_minute"]
        notes.append(
            f"{r['workers']} workers: {measured:.2f}x the cases per minute of 1 worker as measured, "
            f"{cpu_bound:.2f}x from the workers' CPU time (ideal {r['workers']}x; {os.cpu_count()} cores, "
            f"load average {r['load_average_1min']:.1f})"
        )
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--methods", nargs="+", default=["gradcam"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cohort.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cohort-") as tmp:
        scratch = Path(tmp)
        cases_csv = write_cases(scratch / "cases", [SEED_BASE + n for n in range(args.cases)])
        warm_csv = write_cases(scratch / "warm", [SEED_BASE - 1 - n for n in range(max(args.workers))])
        rows = []
        for workers in args.workers:
            rows.append(measure(workers, cases_csv, warm_csv, list(args.methods), scratch))
            print(f"{workers} worker(s): {rows[-1]['cases_per_minute']:.1f} cases/min", file=sys.stderr)
    table, notes = markdown(rows), scaling(rows)
    print(table)
    for line in notes:
        print(line)
    result = {
        "settings": {"cases": args.cases, "methods": args.methods, "threads_per_worker": 1},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": rows,
        "scaling": notes,
    }
    from XAIMedSlicerLib.io.atomic import write_json

    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
