"""Markdown tables from a ``bench_methods`` JSON result.

    python bench/bench_report.py bench/results/bench_methods_cpu_full_<stamp>.json

The lower bound of a method with n passes is n times the cheaper per-item cost of one pass, at batch
1 or batched (both are measured in the same run): on the CPU a batch is sometimes dearer per item than
single passes (DenseNet121 at 128^3), so the bound takes whichever is cheaper.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def bound_cpu(row: dict, bounds: dict) -> float | None:
    """n x the cheaper per-item CPU cost (batch 1 or batched) of the row's passes."""
    match = re.match(r"(\d+) x (forward \+ backward|forward)", row.get("bound", ""))
    if not match:
        return None
    n, kind = int(match.group(1)), "forward_backward" if "backward" in match.group(2) else "forward"
    per_item = bounds[f"{kind}_cpu"]
    if n > 1:
        per_item = min(per_item, bounds.get(f"{kind}_batched_cpu", per_item))
    return n * per_item


def fmt(v, spec: str = ".2f") -> str:
    """A table cell: empty for None, floats with ``spec``."""
    return "" if v is None else (f"{v:{spec}}" if isinstance(v, float) else str(v))


def reference_columns(r: dict) -> str:
    """The reference, its CPU seconds, the speed-up and the correlation cells of a row (no final bar)."""
    ref = r.get("reference", "")
    if r.get("reference_skipped"):
        return f"{ref} | skipped: {r['reference_skipped']} | | "
    if ref:
        return (
            f"{ref} | {fmt(r.get('ref_cpu_seconds'), '.1f')} | x{fmt(r.get('speedup_cpu'))} | "
            f"{fmt(r.get('correlation'), '.4f')} "
        )
    return " | | | "


def method_table(result: dict) -> str:
    bounds = {(c["net"], c["size"]): c["bounds"] for c in result["cases"]}
    lines = [
        "| net | size | method | params | CPU s | peak MB | lower bound | bound CPU s | ratio | reference | "
        "ref CPU s | speed-up | correlation |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items() if k not in ("seed", "stdev"))
        if "cpu_seconds" not in r:  # our run skipped together with the reference
            lines.append(
                f"| {r['net']} | {r['size']}^3 | {r['method']} | {params} | skipped | | | | | {r.get('reference', '')}"
                f" | {r.get('reference_skipped', '')} | | |"
            )
            continue
        b = bound_cpu(r, bounds[(r["net"], r["size"])])
        ratio = r["cpu_seconds"] / b if b else None
        lines.append(
            f"| {r['net']} | {r['size']}^3 | {r['method']} | {params} | {fmt(r['cpu_seconds'], '.1f')} | "
            f"{fmt(r['peak_mb'], '.0f')} | {r['bound']} | {fmt(b, '.1f')} | {fmt(ratio)} | {reference_columns(r)}|"
        )
    return "\n".join(lines)


def gpu_table(result: dict) -> str:
    """A GPU run in wall milliseconds: the warm (second) call, the cold first call, bound and ratio."""
    lines = [
        "| net | size | method | params | warm ms | cold ms | peak MB | lower bound | bound ms | ratio | "
        "reference | ref warm ms | ref cold ms | speed-up | correlation |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def ms(v) -> str:
        return fmt(None if v is None else 1000.0 * v, ".0f")

    for r in result["rows"]:
        if "seconds" not in r:
            continue
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items() if k not in ("seed", "stdev"))
        lines.append(
            f"| {r['net']} | {r['size']}^3 | {r['method']} | {params} | {ms(r['seconds'])} | "
            f"{ms(r.get('cold_seconds'))} | {fmt(r['peak_mb'], '.0f')} | {r['bound']} | "
            f"{ms(r['bound_seconds'])} | {fmt(r['ratio'])} | {r.get('reference', '')} | "
            f"{ms(r.get('ref_seconds'))} | {ms(r.get('ref_cold_seconds'))} | "
            f"{'x' + fmt(r['speedup']) if r.get('speedup') else ''} | {fmt(r.get('correlation'), '.4f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    result = json.loads(Path(args[0]).read_text())
    on_gpu = str(result.get("meta", {}).get("device", "cpu")).startswith("cuda")
    print(gpu_table(result) if on_gpu else method_table(result))
    if result.get("ig_curve"):
        print()
        from bench_ig import ig_table

        print(ig_table(result["ig_curve"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
