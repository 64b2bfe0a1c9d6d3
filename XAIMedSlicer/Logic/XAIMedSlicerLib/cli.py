"""The ``xaimed`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time

from .cohort_cli import add_parser as add_cohort_parser
from .errors import XAIError
from .report_cli import add_parser as add_report_parser
from .study_cli import add_parser as add_study_parser
from .web_cli import add_parser as add_view_parser


def _progress_bar(desc: str):
    """A tqdm bar driven by ``progress(fraction, message)`` callbacks."""
    from tqdm import tqdm

    bar = tqdm(
        total=100,
        desc=desc,
        unit="%",
        leave=False,
        disable=not sys.stderr.isatty() and os.environ.get("XAIMED_PROGRESS") != "1",
    )

    def update(fraction: float, message: str) -> None:
        bar.set_postfix_str(message[:40])
        bar.n = int(round(100 * max(0.0, min(1.0, fraction))))
        bar.refresh()

    return bar, update


def method_params(method: str, items: list[str]) -> dict:
    """``KEY=VALUE`` strings as typed parameters of ``method``, checked against its declared schema."""
    from .methods import get_method

    if not items:
        return {}
    spec = get_method(method)
    return spec.params.parse(method, items)


def cmd_explain(args: argparse.Namespace) -> int:
    from .anatomy.table import format_table
    from .explain import explain
    from .export import write_explanation
    from .io.outputs import OutputDir

    params = method_params(args.method, args.param or [])
    out = OutputDir(args.out, force=args.force)
    try:
        bar, update = _progress_bar(f"xaimed {args.method}")
        if args.steps:
            params["steps"] = args.steps
        if args.layer:
            params["layer"] = args.layer
        target = None if args.target in (None, "predicted") else args.target
        with bar:
            from .model.loader import load_model

            loaded = load_model(args.model, args.device)  # once, for the map and its checks
            expl = explain(
                args.image,
                loaded,
                args.method,
                target,
                labels=args.labels,
                label_names=args.label_names,
                region=args.region,
                mask=args.mask,
                box=args.box,
                point=args.point,
                device=args.device,
                seed=args.seed,
                method_params=params,
                sliding_window=args.sliding_window,
                sliding_overlap=args.sliding_overlap,
                anatomy=args.anatomy,
                progress=update,
            )
            if args.validate:
                expl = _with_checks(expl, loaded, args, update)
            update(1.0, "writing outputs")
            write_explanation(expl, out.staging, opacity=args.opacity, rules=args.rules, model=loaded)
        out.commit()
    except BaseException:
        out.abort()
        raise
    pred = expl.prediction
    if pred["task"] == "classification":
        probs = ", ".join(
            f"{c}: {p:.3f}" for c, p in zip(pred["classes"], pred["probabilities"], strict=False)
        )
        print(f"prediction: {pred['predicted_class']} ({probs})")
    print(f"target: {expl.target}")
    print("attribution peak (RAS mm): " + ", ".join(f"{v:.2f}" for v in expl.peak_ras()))
    if expl.structures:
        print(format_table(expl.structures))
    print(f"wrote {out.target}")
    return 0


def _with_checks(expl, loaded, args: argparse.Namespace, update):
    """The explanation with the map's randomisation and deletion checks in its provenance (``--validate``)."""
    from dataclasses import replace
    from types import SimpleNamespace

    from .metrics.validate import validate_explanation
    from .worker.validation import rebuild_input_and_target

    if args.sliding_window:
        raise XAIError(
            "--validate cannot check a sliding-window map yet", "drop --validate or --sliding-window"
        )
    where = SimpleNamespace(region=args.region, region_mask=args.mask, box=args.box, point=args.point)
    image = expl.image
    x, target = rebuild_input_and_target(where, image, loaded, expl.target)
    from .methods import get_method

    declared = get_method(args.method).params.names()  # the map's own parameters, as recorded
    params = {k: v for k, v in expl.provenance["method"]["params"].items() if k in declared}
    update(0.9, "checking the map (randomisation, deletion)")
    validation = validate_explanation(loaded.network, x, target, args.method, params)
    return replace(expl, provenance={**expl.provenance, "validation": validation})


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo.model import CARD_PATH
    from .demo.run import run_demo

    if not CARD_PATH.exists():
        raise XAIError(
            f"the demo classifier is missing from this installation ({CARD_PATH.name})",
            "reinstall the package, or retrain it with `python -m XAIMedSlicerLib.demo.train`",
        )
    if getattr(args, "cxr", False):  # a chest radiograph and the 2D demo classifier (demo/cxr_run.py)
        from .demo.cxr_run import run_cxr_demo

        run_cxr_demo(args.out, seed=args.seed, method=args.method, force=args.force)
    else:
        run_demo(args.out, seed=args.seed, method=args.method, force=args.force)
    if getattr(args, "view", False):  # --view: registered by web_cli.add_parser
        from .web_cli import view_demo

        return view_demo(args)
    return 0


def _default_shared_data() -> str | None:
    """``../shared/data`` beside the working folder or beside the source checkout, if present."""
    from pathlib import Path

    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return str(candidate)
    return None


def cmd_benchmark(args: argparse.Namespace) -> int:
    from .study.benchmark import SETTINGS, benchmark_markdown, run_benchmark, with_overrides

    if args.setting not in SETTINGS:
        raise XAIError(f"unknown benchmark setting '{args.setting}'", f"use one of {', '.join(SETTINGS)}")
    changes = {"seed": args.seed}
    if args.datasets:
        changes["datasets"] = tuple(args.datasets)
    if args.methods:
        changes["methods"] = tuple(args.methods)
    settings = with_overrides(SETTINGS[args.setting], **changes)
    data = args.data or os.environ.get("XAIMED_SHARED_DATA") or _default_shared_data()
    bar, update = _progress_bar("xaimed benchmark")
    with bar:
        result = run_benchmark(args.out, settings, data_root=data, progress=update)
    print(benchmark_markdown(result))
    print(f"wrote {args.out}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from .methods import available_methods, get_method

    names = [args.name] if getattr(args, "name", None) else available_methods()
    for name in names:
        spec = get_method(name)
        kind = "signed" if spec.signed else "unsigned"
        print(
            f"{name:16s} {kind:9s} {spec.description}"
            + (f"  [warning: {spec.warning}]" if spec.warning else "")
        )
        if getattr(args, "name", None):  # the declared schema: what --param accepts
            for row in spec.params.schema():
                extra = f"; one of {', '.join(map(str, row['choices']))}" if row["choices"] else ""
                lo, hi = row["minimum"], row["maximum"]
                if lo is not None or hi is not None:
                    extra += f"; at least {lo}" if hi is None else f"; {'-inf' if lo is None else lo} to {hi}"
                print(
                    f"  --param {row['name']}=…  {row['type']}, default {row['default']!r}: {row['help']}{extra}"
                )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xaimed", description="Explain MONAI 3D networks on CT and MRI volumes."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("explain", help="explain one prediction on one scan")
    ex.add_argument("--image", required=True, help="NIfTI, NRRD or DICOM series folder")
    ex.add_argument(
        "--model", required=True, help="model card (.json), MONAI bundle folder or TorchScript file"
    )
    ex.add_argument("--method", default="gradcam", help="attribution method (see `xaimed methods`)")
    ex.add_argument("--target", default=None, help="class name or index (default: the predicted class)")
    ex.add_argument("--labels", help="label map of anatomical structures")
    ex.add_argument("--label-names", help="JSON or colour table naming the labels")
    ex.add_argument(
        "--anatomy",
        choices=["chest"],
        help="make the structures: chest = lungs, heart, mediastinum, outside body of a radiograph (atlas)",
    )
    ex.add_argument("--region", default="predicted", choices=["predicted", "mask", "box", "point"])
    ex.add_argument("--mask", help="region mask for segmentation targets")
    ex.add_argument("--box", type=float, nargs=6, metavar=("R0", "A0", "S0", "R1", "A1", "S1"))
    ex.add_argument("--point", type=float, nargs=3, metavar=("R", "A", "S"))
    ex.add_argument("--steps", type=int, help="path points (IG) or samples")
    ex.add_argument("--layer", help="layer for Grad-CAM")
    ex.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a method parameter, repeatable (e.g. rule=gausslegendre, window=8, samples=25)",
    )
    ex.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ex.add_argument(
        "--sliding-window",
        type=int,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="run a patch network over a full-size scan by sliding windows of this size (voxels)",
    )
    ex.add_argument("--sliding-overlap", type=float, default=0.25, help="sliding-window overlap (0-1)")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument(
        "--validate",
        action="store_true",
        help="also run the map's randomisation and deletion checks (the rules then use their outcome)",
    )
    ex.add_argument("--rules", help="a rules YAML file (default: the shipped reasoning/rules/default.yaml)")
    ex.add_argument("--opacity", type=float, default=0.5)
    ex.add_argument("--out", required=True, help="output folder")
    ex.add_argument("--force", action="store_true", help="write into a non-empty output folder")
    ex.set_defaults(func=cmd_explain)

    demo = sub.add_parser("demo", help="explain a synthetic lesion in the MNI152 template (no download)")
    demo.add_argument("--out", default="xaimed-demo")
    demo.add_argument("--seed", type=int, default=None, help="case seed (default: a fresh one)")
    demo.add_argument("--method", default="gradcam")
    demo.add_argument("--force", action="store_true")
    demo.add_argument("--cxr", action="store_true", help="a chest radiograph with an inserted nodule instead")
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("benchmark", help="synthetic-lesion benchmark of every method on real anatomy")
    bench.add_argument("--out", required=True, help="folder for benchmark.md and benchmark.json")
    bench.add_argument("--setting", default="full", help="full (about 15 min on 2 CPU cores) or ci")
    bench.add_argument("--datasets", nargs="+", help="subset of: ct mr brain template")
    bench.add_argument("--methods", nargs="+", help="subset of the methods")
    bench.add_argument("--data", default=None, help="the shared data folder (default ../shared/data)")
    bench.add_argument("--seed", type=int, default=0)
    bench.set_defaults(func=cmd_benchmark)

    methods = sub.add_parser("methods", help="list the attribution methods (or one method's parameters)")
    methods.add_argument("name", nargs="?", help="a method: list its parameters (what --param accepts)")
    methods.set_defaults(func=cmd_methods)
    add_study_parser(sub)
    add_cohort_parser(sub)
    add_view_parser(sub)
    add_report_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors, exit code 2 on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        return args.func(args)
    except XAIError as err:
        print(f"xaimed: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xaimed: interrupted; no output written", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one line unless --debug
        if args.debug:
            raise
        print(
            f"xaimed: internal error: {type(err).__name__}: {err} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return 1
    finally:
        if args.debug:
            print(f"[{time.perf_counter() - start:.1f} s]", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
