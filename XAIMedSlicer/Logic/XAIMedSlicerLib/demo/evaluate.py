"""Evaluate the demo classifier on fresh cases: accuracy, and how often the explanation finds the lesion.

    python -m XAIMedSlicerLib.demo.evaluate [--cases 100] [--methods gradcam ig] [--out FILE.json]

Cases use seeds ``EVAL_SEED_BASE + n`` (disjoint from training and held-aside seeds), every other one
with a lesion. Each case goes through the full pipeline (:func:`explain` on the template-grid image),
exactly as ``xaimed demo`` runs it; for lesion cases the report says whether the attribution peak lies
inside the lesion mask and how far from the lesion it is.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..io.atomic import write_json
from .cases import make_case
from .model import CARD_PATH
from .run import peak_report

EVAL_SEED_BASE = 4_000_000


def evaluate(cases: int = 100, methods: tuple[str, ...] = ("gradcam",), card=CARD_PATH) -> dict:
    """Accuracy over ``cases`` fresh cases and, per method, the peak-in-lesion rate over lesion cases."""
    from ..explain import explain
    from ..model.loader import load_model

    model = load_model(card, "cpu")
    correct, per_method = 0, {m: [] for m in methods}
    start = time.perf_counter()
    seeds = EVAL_SEED_BASE + np.arange(cases)
    for n, seed in enumerate(tqdm(seeds, desc="evaluating", unit="case", disable=not sys.stderr.isatty())):
        case = make_case(int(seed), lesion=bool(n % 2))
        for m, method in enumerate(methods):
            expl = explain(case.image, model, method, "lesion", seed=int(seed))
            if m == 0:
                correct += int(
                    expl.prediction["predicted_class"] == ("lesion" if case.label else "no lesion")
                )
            if case.label:
                per_method[method].append(peak_report(expl.attribution, case.lesion_mask, case.centre_ras))
    summary = {"cases": cases, "accuracy": correct / cases, "seeds": f"{seeds[0]}..{seeds[-1]}"}
    for method, reports in per_method.items():
        distances = np.array([r["distance_to_lesion_mm"] for r in reports])
        summary[method] = {
            "lesion_cases": len(reports),
            "peak_in_lesion": float(np.mean([r["peak_in_lesion"] for r in reports])),
            "peak_within_5mm": float(np.mean(distances <= 5.0)),
            "median_distance_mm": float(np.median(distances)),
        }
    summary["seconds"] = round(time.perf_counter() - start, 1)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m XAIMedSlicerLib.demo.evaluate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--methods", nargs="+", default=["gradcam"])
    parser.add_argument("--card", type=Path, default=CARD_PATH)
    parser.add_argument("--out", type=Path, help="write the summary as JSON")
    args = parser.parse_args(argv)
    summary = evaluate(args.cases, tuple(args.methods), args.card)
    print(f"accuracy {summary['accuracy']:.3f} on {summary['cases']} fresh cases")
    for method in args.methods:
        s = summary[method]
        print(
            f"{method}: peak inside the lesion in {s['peak_in_lesion']:.0%} of {s['lesion_cases']} lesion "
            f"cases, within 5 mm in {s['peak_within_5mm']:.0%}, median distance {s['median_distance_mm']:.1f} mm"
        )
    if args.out:
        write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
