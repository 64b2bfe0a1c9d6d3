"""Null distributions behind the thresholds of ``reasoning/rules/default.yaml``, on clean demo cases.

    python bench/bench_rule_thresholds.py [--cases 40] [--method gradcam] [--out bench/results/rule_thresholds.json]

Clean cases are the demo's MNI152 cases (``demo.cases.make_case``, seeds ``SEED_BASE + n``, disjoint from
the training, held-aside and evaluation seeds; a lesion in every other case) explained by the committed
demo classifier, which was trained without any shortcut. Each case goes through ``explain`` (the
predicted class, as ``xaimed explain`` does), the anatomy-masking check and ``metrics.validate`` (3-layer
randomisation cascade and deletion), and the facts the rules read are collected. Guided backpropagation,
which fails the randomisation test (Adebayo et al. 2018), is run on the first cases as the contrast.
Prints a markdown table of the distributions and the thresholds derived from them, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

SEED_BASE = 6_000_000
ROOT = Path(__file__).resolve().parents[1]


def case_record(model, seed: int, lesion: bool, method: str, validate: bool) -> dict:
    from XAIMedSlicerLib.demo.cases import make_case
    from XAIMedSlicerLib.explain import explain
    from XAIMedSlicerLib.methods.targets import ClassTarget
    from XAIMedSlicerLib.metrics.validate import validate_explanation
    from XAIMedSlicerLib.preprocess import prepare_input
    from XAIMedSlicerLib.reasoning.facts import build_facts
    from XAIMedSlicerLib.reasoning.masking import anatomy_masking
    from XAIMedSlicerLib.reasoning.rules import namespace

    case = make_case(seed, lesion=lesion)
    expl = explain(case.image, model, method, None, labels=case.labels, label_names=case.label_names)
    validation = None
    if validate:
        x = prepare_input(case.image, model.card.preprocessing, model.device).tensor
        index = int(expl.prediction["predicted_index"])
        params = {"layer": model.card.gradcam_layer} if method in ("gradcam", "gradcampp") else {}
        validation = validate_explanation(model.network, x, ClassTarget(index, "c"), method, params)
    facts = build_facts(expl, validation=validation, masking=anatomy_masking(expl, model))
    ns = namespace(facts)
    shares = {s["name"]: s["positive_share"] for s in expl.structures}
    # the map of the finding class on a lesion-free case: the laterality null
    lesion_map = None
    if not lesion:
        other = explain(case.image, model, method, "lesion", labels=case.labels, label_names=case.label_names)
        lesion_map = namespace(build_facts(other, masking={"status": "not checked"}))["lateralisation"]
    return {
        "seed": seed,
        "truth": "lesion" if lesion else "no lesion",
        "predicted": ns["predicted_class"],
        "correct": ns["predicted_class"] == ("lesion" if lesion else "no lesion"),
        "confidence": ns["confidence"],
        "outside_share": ns["outside_share"],
        "lateralisation": ns["lateralisation"],
        "lesion_map_lateralisation_no_lesion": lesion_map,
        "csf_share": shares.get("csf", 0.0),
        "top_structure": ns["top_structure"],
        "masked_confidence": ns["masked_confidence"],
        "masked_class": ns["masked_class"],
        "randomisation_spearman": ns["randomisation_spearman"],
        "randomisation": ns["randomisation"],
        "deletion": ns["deletion"],
        "deletion_auc": ns["deletion_auc"],
        "deletion_random_auc": ns["deletion_random_auc"],
    }


def contrast_randomisation(model, seeds: list[int]) -> list[float]:
    """Mean Spearman of guided backpropagation's cascade on lesion cases (a method known to fail)."""
    from XAIMedSlicerLib.demo.cases import make_case
    from XAIMedSlicerLib.methods.targets import ClassTarget
    from XAIMedSlicerLib.metrics.randomisation import cascading_randomisation
    from XAIMedSlicerLib.preprocess import prepare_input

    values = []
    for seed in seeds:
        case = make_case(seed, lesion=True)
        x = prepare_input(case.image, model.card.preprocessing, model.device).tensor
        result = cascading_randomisation(
            model.network, x, ClassTarget(1, "lesion"), "guided_backprop", max_layers=3
        )
        values.append(result.mean_spearman)
    return values


def summary(values) -> dict:
    v = np.asarray(
        [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], float
    )
    if v.size == 0:
        return {"n": 0}
    return {
        "n": int(v.size),
        "min": float(v.min()),
        "median": float(np.median(v)),
        "p95": float(np.percentile(v, 95)),
        "max": float(v.max()),
        "mean": float(v.mean()),
    }


def ceil_to(value: float, step: float = 0.05) -> float:
    return round(math.ceil(value / step - 1e-9) * step, 4)


def floor_to(value: float, step: float = 0.05) -> float:
    return round(math.floor(value / step + 1e-9) * step, 4)


def derive(rows: list[dict], gbp: list[float]) -> dict:
    """The distributions and the thresholds taken from them (rule name -> numbers)."""
    lesion_pred = [r for r in rows if r["predicted"] == "lesion"]
    correct = [r for r in rows if r["correct"]]
    dist = {
        "outside_share (predicted-class map, all cases)": summary(r["outside_share"] for r in rows),
        "csf_share (lesion predicted)": summary(r["csf_share"] for r in lesion_pred),
        "masked_confidence (lesion predicted)": summary(r["masked_confidence"] for r in lesion_pred),
        "confidence (correct predictions)": summary(r["confidence"] for r in correct),
        "confidence (wrong predictions)": summary(r["confidence"] for r in rows if not r["correct"]),
        "lateralisation of the lesion map (lesion-free cases)": summary(
            r["lesion_map_lateralisation_no_lesion"] for r in rows
        ),
        "lateralisation (predicted-class map, lesion predicted)": summary(
            r["lateralisation"] for r in lesion_pred
        ),
        "lateralisation (predicted-class map, no lesion predicted)": summary(
            r["lateralisation"] for r in rows if r["predicted"] == "no lesion"
        ),
        "randomisation mean Spearman (method, all cases)": summary(r["randomisation_spearman"] for r in rows),
        "randomisation mean Spearman (guided backprop, contrast)": summary(gbp),
        "normalised deletion AUC minus random order's (lesion predicted)": summary(
            r["deletion_auc"] - r["deletion_random_auc"]
            for r in lesion_pred
            if r["deletion_auc"] is not None and r["deletion_random_auc"] is not None
        ),
    }
    conf = [r["confidence"] for r in correct]
    thresholds = {
        "evidence_outside_anatomy": ceil_to(dist["outside_share (predicted-class map, all cases)"]["max"]),
        "evidence_in_structure_that_cannot_hold": ceil_to(
            dist["csf_share (lesion predicted)"].get("max", 0.0)
        ),
        "prediction_survives_anatomy_masking": ceil_to(
            dist["masked_confidence (lesion predicted)"].get("max", 0.5)
        ),
        "low_confidence": floor_to(float(np.percentile(conf, 5)), 0.01) if conf else None,
        "lateralised_evidence": ceil_to(
            dist["lateralisation (predicted-class map, no lesion predicted)"].get("max", 0.5)
        ),
        "randomisation_threshold_used": 0.5,
    }
    rates = {
        "accuracy": float(np.mean([r["correct"] for r in rows])),
        "randomisation failed (method)": float(np.mean([r["randomisation"] == "failed" for r in rows])),
        "deletion failed (method, all cases)": float(np.mean([r["deletion"] == "failed" for r in rows])),
        "deletion failed (method, lesion predicted)": float(
            np.mean([r["deletion"] == "failed" for r in lesion_pred])
        )
        if lesion_pred
        else None,
        "randomisation failed (guided backprop)": float(np.mean([v >= 0.5 for v in gbp])) if gbp else None,
        "masked class stays lesion (lesion predicted)": float(
            np.mean([r["masked_class"] == "lesion" for r in lesion_pred])
        )
        if lesion_pred
        else None,
        "low_confidence fires (correct cases)": float(
            np.mean([c < thresholds["low_confidence"] for c in conf])
        )
        if conf
        else None,
        "low_confidence fires (wrong cases)": float(
            np.mean([r["confidence"] < thresholds["low_confidence"] for r in rows if not r["correct"]])
        )
        if len(correct) < len(rows)
        else None,
        "evidence_outside_anatomy fires": float(
            np.mean([r["outside_share"] >= thresholds["evidence_outside_anatomy"] for r in rows])
        ),
        "lateralised_evidence fires (lesion predicted)": float(
            np.mean([r["lateralisation"] >= thresholds["lateralised_evidence"] for r in lesion_pred])
        )
        if lesion_pred
        else None,
    }
    return {"distributions": dist, "thresholds": thresholds, "rates": rates}


def markdown(result: dict) -> str:
    lines = ["| quantity (clean demo cases) | n | min | median | p95 | max |", "|---|---|---|---|---|---|"]
    for name, s in result["distributions"].items():
        if s["n"] == 0:
            lines.append(f"| {name} | 0 | | | | |")
            continue
        lines.append(
            f"| {name} | {s['n']} | {s['min']:.3f} | {s['median']:.3f} | {s['p95']:.3f} | {s['max']:.3f} |"
        )
    lines += ["", "| rule | threshold |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result["thresholds"].items()]
    lines += ["", "| rate | value |", "|---|---|"]
    lines += [f"| {k} | {'' if v is None else f'{v:.3f}'} |" for k, v in result["rates"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--contrast-cases", type=int, default=6)
    parser.add_argument("--method", default="gradcam")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "rule_thresholds.json"))
    parser.add_argument("--from-json", help="re-derive the tables from the cases of an earlier run's JSON")
    args = parser.parse_args(argv)
    if args.from_json:
        from XAIMedSlicerLib.io.atomic import write_json

        earlier = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        gbp = earlier["distributions"]["randomisation mean Spearman (guided backprop, contrast)"]
        result = {**derive(earlier["cases"], earlier.get("contrast", [])), "settings": earlier["settings"]}
        result["contrast"], result["cases"] = earlier.get("contrast", []), earlier["cases"]
        if not result["contrast"]:  # runs before the contrast values were stored keep their summary
            result["distributions"]["randomisation mean Spearman (guided backprop, contrast)"] = gbp
        write_json(args.out, result)
        print(markdown(result))
        return 0
    torch.set_num_threads(args.threads)
    from tqdm import tqdm

    from XAIMedSlicerLib.demo.model import CARD_PATH
    from XAIMedSlicerLib.io.atomic import write_json
    from XAIMedSlicerLib.model.loader import load_model

    model = load_model(CARD_PATH, "cpu")
    start = time.perf_counter()
    rows = [
        case_record(model, SEED_BASE + n, bool(n % 2), args.method, validate=True)
        for n in tqdm(range(args.cases), desc="clean cases", disable=not sys.stderr.isatty())
    ]
    gbp = contrast_randomisation(model, [SEED_BASE + 2 * n + 1 for n in range(args.contrast_cases)])
    result = derive(rows, gbp)
    result["settings"] = {
        "cases": args.cases,
        "contrast_cases": args.contrast_cases,
        "method": args.method,
        "seed_base": SEED_BASE,
        "model": str(CARD_PATH.name),
        "randomisation": "metrics.validate defaults: 3 layers, threshold 0.5, deletion 16 steps, 2 random orders",
        "seconds": round(time.perf_counter() - start, 1),
    }
    result["contrast"] = gbp
    result["cases"] = rows
    write_json(args.out, result)
    print(markdown(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
