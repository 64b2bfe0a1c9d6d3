"""``xaimed cohort cases.csv --methods … --out …``: explain a cohort on Dask, resumable, with a summary."""

from __future__ import annotations

import argparse
import contextlib
import sys

from .errors import XAIError

SHOWN = ("predicted_class", "target_probability", "seconds", "pointing_game", "deletion_auc")


def method_params(methods: list[str], items: list[str]) -> dict[str, dict]:
    """``METHOD.KEY=VALUE`` (one method) or ``KEY=VALUE`` (every method that declares KEY), typed."""
    from .cli import method_params as parse
    from .methods import get_method

    per_method: dict[str, list[str]] = {m: [] for m in methods}
    for item in items:
        name, sep, _value = item.partition("=")
        method, dot, key = name.partition(".")
        if not sep:
            raise XAIError(f"bad --param {item}", "use KEY=VALUE or METHOD.KEY=VALUE")
        if dot:
            if method not in per_method:
                raise XAIError(f"--param {item} names a method not in --methods", "add it to --methods")
            per_method[method].append(item[len(method) + 1 :])
        else:  # every method that declares the parameter (a misspelt name is still an error)
            takers = [m for m in per_method if get_method(m).accepts(name)]
            if not takers:
                raise XAIError(
                    f"none of the methods {', '.join(methods)} has a parameter '{name}'",
                    "check the name with `xaimed methods NAME`",
                )
            for m in takers:
                per_method[m].append(item)
    return {m: parse(m, values) for m, values in per_method.items() if values}


@contextlib.contextmanager
def _resumable(out: str):
    """Ctrl-C ends the run with a note that the finished maps are kept (exit code 130)."""
    try:
        yield
    except KeyboardInterrupt:
        print(
            f"xaimed: interrupted; the finished maps are kept in {out}, rerun the same command to resume",
            file=sys.stderr,
        )
        raise SystemExit(130) from None


def _cell(value) -> str:
    if value is None or value == "":
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def cmd_cohort(args: argparse.Namespace) -> int:
    from .cli import _progress_bar
    from .cohort.runner import run_cohort

    params = method_params(args.methods, args.param or [])
    metrics = [] if args.metrics == ["none"] else args.metrics
    bar, update = _progress_bar("xaimed cohort")
    with bar, _resumable(args.out):
        run = run_cohort(
            args.cases,
            args.methods,
            args.out,
            params=params,
            metrics=metrics,
            seed=args.seed,
            study=args.study,
            scheduler=args.scheduler,
            workers=args.workers,
            threads=args.threads,
            retries=args.retries,
            device=args.device,
            progress=update,
        )
    print("| case | method | status | " + " | ".join(SHOWN) + " |")
    print("|---" * (3 + len(SHOWN)) + "|")
    for row in run.rows:
        cells = [row["case_id"], row["method"], row["status"], *(_cell(row.get(k)) for k in SHOWN)]
        print("| " + " | ".join(cells) + " |")
    for row in run.rows:
        if row["status"] == "error":
            print(f"{row['case_id']} / {row['method']}: {row['error']}")
    print(
        f"{run.computed} computed, {run.skipped} already finished, {run.errors} errors "
        f"in {run.seconds:.1f} s; wrote {run.files['csv']}, {run.files['parquet']}, {run.files['study']}"
    )
    return 0


def add_parser(sub) -> None:
    """Add ``xaimed cohort`` to the ``xaimed`` subcommands."""
    from .cohort.task import METRICS

    p = sub.add_parser("cohort", help="explain every case of a cases.csv with several methods on Dask")
    p.add_argument(
        "cases", help="cases.csv: columns image, model (+ case_id, target, labels, label_names, mask)"
    )
    p.add_argument("--methods", nargs="+", required=True, help="attribution methods (see `xaimed methods`)")
    p.add_argument("--out", required=True, help="cohort folder (a rerun resumes and skips finished maps)")
    p.add_argument(
        "--param",
        action="append",
        metavar="[METHOD.]KEY=VALUE",
        help="a method parameter, repeatable (without METHOD. it applies to every method)",
    )
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    p.add_argument("--threads", type=int, default=1, help="threads per worker and torch threads (default 1)")
    p.add_argument("--retries", type=int, default=2, help="reruns of a task whose worker died (default 2)")
    p.add_argument(
        "--metrics",
        nargs="+",
        default=list(METRICS),
        choices=[*METRICS, "none"],
        help="validation metrics per map (localisation needs a mask column)",
    )
    p.add_argument("--study", help="study database for the results (default OUT/study.sqlite)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (on the workers)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_cohort)
