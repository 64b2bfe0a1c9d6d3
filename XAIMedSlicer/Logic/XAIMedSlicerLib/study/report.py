"""The end-of-study summary per method (unblinded): trust ratings, reading time, agreement metrics."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io.atomic import write_json, write_text
from .cohort import cohort_rows
from .store import AGREEMENT_COLUMNS, Study


def _stats(values: list[float]) -> dict:
    v = np.asarray([x for x in values if x is not None], float)
    if not len(v):
        return {"n": 0, "mean": None, "median": None, "sd": None}
    return {
        "n": int(len(v)),
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
    }


def study_summary(study: Study) -> dict:
    """Per-method statistics and study-level counts, as JSON-ready data."""
    rows = cohort_rows(study)
    completed = study.db.rows("SELECT reader, case_id, seconds FROM completed")
    readers = sorted({r["reader"] for r in rows} | {c["reader"] for c in completed})
    methods = {}
    for method in study.methods:
        mine = [r for r in rows if r["method"] == method]
        trust = [r["trust"] for r in mine if r["trust"] is not None]
        methods[method] = {
            "trust": {**_stats(trust), "histogram": {str(k): trust.count(k) for k in range(1, 6)}},
            "trust_by_reader": {
                rd: _stats([r["trust"] for r in mine if r["reader"] == rd])["mean"] for rd in readers
            },
            "annotations": sum(1 for r in mine if r["annotation_id"] is not None),
            "agreement": {col: _stats([r[col] for r in mine])["mean"] for col in AGREEMENT_COLUMNS},
        }
    n_cases = len(study.cases())
    return {
        "study": study.db.get_meta("name"),
        "cases": n_cases,
        "readers": {rd: sum(1 for c in completed if c["reader"] == rd) for rd in readers},
        "complete": bool(readers)
        and all(sum(1 for c in completed if c["reader"] == rd) == n_cases for rd in readers),
        "seconds_per_case": _stats([c["seconds"] for c in completed]),
        "methods": methods,
    }


def _fmt(v, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def summary_markdown(summary: dict) -> str:
    """The summary as a markdown report."""
    t = summary["seconds_per_case"]
    lines = [
        f"# Reader study: {summary['study']}",
        "",
        f"{summary['cases']} cases; readers (cases completed): "
        + (", ".join(f"{r} ({n})" for r, n in summary["readers"].items()) or "none")
        + ("" if summary["complete"] else " — **study not complete**"),
        f"Time per case: mean {_fmt(t['mean'], 1)} s, median {_fmt(t['median'], 1)} s (n = {t['n']}).",
        "",
        "| method | ratings | mean trust | median | SD | 1 | 2 | 3 | 4 | 5 | annotations | irrelevant mass share | missed share | Dice irrelevant | Dice missed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, m in summary["methods"].items():
        tr, h, a = m["trust"], m["trust"]["histogram"], m["agreement"]
        lines.append(
            f"| {method} | {tr['n']} | {_fmt(tr['mean'])} | {_fmt(tr['median'], 1)} | {_fmt(tr['sd'])} | "
            + " | ".join(str(h[str(k)]) for k in range(1, 6))
            + f" | {m['annotations']} | {_fmt(a['irrelevant_mass_share'])} | {_fmt(a['missed_share'])} | "
            f"{_fmt(a['dice_irrelevant'])} | {_fmt(a['dice_missed'])} |"
        )
    lines += ["", "Trust: 1 = no trust ... 5 = full trust. Methods were shown blinded (A, B, C) per case."]
    return "\n".join(lines) + "\n"


def write_study_report(study: Study, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` (atomically) into ``out_dir``."""
    out = Path(out_dir)
    summary = study_summary(study)
    write_json(out / "report.json", summary)
    write_text(out / "report.md", summary_markdown(summary))
    return out / "report.md", out / "report.json"
