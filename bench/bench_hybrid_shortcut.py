"""Planted shortcut: a bright marker outside the anatomy that a small network learns; do the rules see it?

    python bench/bench_hybrid_shortcut.py [--train 160] [--epochs 6] [--test 32] [--out bench/results/hybrid_shortcut.json]

A network with the demo classifier's architecture (MONAI DenseNet, ``demo.model.NETWORK``) is trained from
scratch on demo cases (MNI152 template, seeds ``TRAIN_SEED + n``) in which every lesion case carries a
bright cube (``MARKER_*``) outside the brain, to the right of the head, and no lesion-free case does: the
marker is the easy way to the label. The committed demo classifier (trained without any marker) is the
clean network. Both are explained (Grad-CAM, predicted class, the anatomy-masking check, the shipped rules,
the hybrid decision) on clean test cases and on shortcut test cases (the marker in every case, a lesion in
every other one, so the marker says nothing about the truth).

A prediction is *shortcut-driven* when removing the marker from the same case changes it. For each
shortcut rule and their union: precision and recall of firing against that ground truth, over every
(network, case). For each network and test set: the network's accuracy, and the hybrid's coverage (cases
not abstained) and accuracy on the cases it keeps. Prints markdown tables, writes JSON.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SEED, TEST_SEED = 7_000_000, 7_500_000
MARKER_RAS, MARKER_HALF_MM, MARKER_VALUE = (85.0, -10.0, 10.0), 4.0, 1.5
SHORTCUT_RULES = ("evidence_outside_anatomy", "prediction_survives_anatomy_masking")


def add_marker(image):
    """``image`` with the marker cube (voxels within MARKER_HALF_MM of MARKER_RAS along each axis)."""
    centre = np.asarray(image.ras_to_index(MARKER_RAS))
    half = MARKER_HALF_MM / np.asarray(image.spacing)
    lo = np.floor(centre - half).astype(int)
    hi = np.ceil(centre + half).astype(int) + 1
    array = np.asarray(image.array).copy()
    array[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]] = MARKER_VALUE
    return image.with_array(array)


def training_set(n: int):
    from tqdm import tqdm

    from XAIMedSlicerLib.demo.cases import make_case
    from XAIMedSlicerLib.demo.model import model_input

    xs, ys = [], []
    for s in tqdm(range(n), desc="training cases", disable=not sys.stderr.isatty()):
        case = make_case(TRAIN_SEED + s, lesion=bool(s % 2))
        image = add_marker(case.image) if case.label else case.image
        assert not np.any(np.asarray(case.labels.array)[np.asarray(image.array) == MARKER_VALUE])
        xs.append(model_input(image)[0].to(torch.float16))
        ys.append(case.label)
    return torch.stack(xs), torch.tensor(ys)


def train_shortcut(x: torch.Tensor, y: torch.Tensor, epochs: int, out_dir: Path, seed: int = 0):
    """The demo network trained from scratch on the marked cases; returns its card path and log."""
    from XAIMedSlicerLib.demo.model import build_network
    from XAIMedSlicerLib.demo.train import write_model

    torch.manual_seed(seed)
    network = build_network()
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    log = []
    for epoch in range(epochs):
        network.train()
        order = torch.randperm(len(x), generator=gen)
        losses, correct = [], 0
        for start in range(0, len(x), 8):
            idx = order[start : start + 8]
            logits = network(x[idx].float())
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            correct += int((logits.argmax(1) == y[idx]).sum())
        log.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "train_accuracy": correct / len(x)})
        print(
            f"epoch {epoch + 1}: loss {log[-1]['loss']:.3f}, train accuracy {log[-1]['train_accuracy']:.3f}"
        )
    network.eval()
    card = write_model(network, out_dir, {"planted_shortcut": "marker in every lesion case", "log": log})
    return card, log


def predicted_class(model, image) -> str:
    from XAIMedSlicerLib.methods.targets import as_logits
    from XAIMedSlicerLib.preprocess import prepare_input

    x = prepare_input(image, model.card.preprocessing, model.device).tensor
    with torch.inference_mode():
        return model.card.classes[int(as_logits(model.network(x))[0].argmax())]


def evaluate_case(model, network: str, case, marked: bool) -> dict:
    from XAIMedSlicerLib.explain import explain
    from XAIMedSlicerLib.reasoning.writer import reason

    image = add_marker(case.image) if marked else case.image
    expl = explain(image, model, "gradcam", None, labels=case.labels, label_names=case.label_names)
    facts, results, decision = reason(expl, model=model)
    pred = expl.prediction["predicted_class"]
    truth = "lesion" if case.label else "no lesion"
    without = predicted_class(model, case.image) if marked else pred
    return {
        "network": network,
        "set": "shortcut" if marked else "clean",
        "seed": case.seed,
        "truth": truth,
        "predicted": pred,
        "correct": pred == truth,
        "shortcut_driven": marked and without != pred,
        "fired": [r.rule.name for r in results if r.fired],
        "decision": decision.decision,
        "outside_share": next(f.share_percent for f in facts if f.ref == "O1") / 100.0,
        "masked_percent": next(f.masked_percent for f in facts if f.ref == "M1"),
    }


def rule_scores(rows: list[dict], names: tuple[str, ...]) -> dict:
    fired = np.array([any(n in r["fired"] for n in names) for r in rows])
    truth = np.array([r["shortcut_driven"] for r in rows])
    tp, fp, fn = int(np.sum(fired & truth)), int(np.sum(fired & ~truth)), int(np.sum(~fired & truth))
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
    }


def accuracy_table(rows: list[dict]) -> list[dict]:
    out = []
    for network in ("clean", "shortcut"):
        for test in ("clean", "shortcut"):
            sel = [r for r in rows if r["network"] == network and r["set"] == test]
            kept = [r for r in sel if r["decision"] != "abstain"]
            out.append(
                {
                    "network": network,
                    "test_set": test,
                    "cases": len(sel),
                    "network_accuracy": float(np.mean([r["correct"] for r in sel])),
                    "hybrid_coverage": len(kept) / len(sel),
                    "hybrid_accuracy_on_kept": float(np.mean([r["correct"] for r in kept])) if kept else None,
                    "hybrid_errors": sum(not r["correct"] for r in kept),
                    "network_errors": sum(not r["correct"] for r in sel),
                    "shortcut_driven": sum(r["shortcut_driven"] for r in sel),
                }
            )
    return out


def fmt(v) -> str:
    return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def markdown(result: dict) -> str:
    lines = ["| rule | TP | FP | FN | precision | recall |", "|---|---|---|---|---|---|"]
    for name, s in result["rules"].items():
        lines.append(
            f"| {name} | {s['tp']} | {s['fp']} | {s['fn']} | {fmt(s['precision'])} | {fmt(s['recall'])} |"
        )
    lines += [
        "",
        "| network | test set | cases | shortcut-driven | network accuracy | hybrid coverage | hybrid accuracy (kept) "
        "| errors: network / hybrid |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in result["accuracy"]:
        lines.append(
            f"| {a['network']} | {a['test_set']} | {a['cases']} | {a['shortcut_driven']} | "
            f"{fmt(a['network_accuracy'])} | {fmt(a['hybrid_coverage'])} | {fmt(a['hybrid_accuracy_on_kept'])} | "
            f"{a['network_errors']} / {a['hybrid_errors']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--test", type=int, default=32, help="cases per test set")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "hybrid_shortcut.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from XAIMedSlicerLib.demo.cases import make_case
    from XAIMedSlicerLib.demo.model import CARD_PATH
    from XAIMedSlicerLib.io.atomic import write_json
    from XAIMedSlicerLib.model.loader import load_model

    start = time.perf_counter()
    x, y = training_set(args.train)
    with tempfile.TemporaryDirectory() as tmp:
        card, log = train_shortcut(x, y, args.epochs, Path(tmp))
        models = {"clean": load_model(CARD_PATH, "cpu"), "shortcut": load_model(card, "cpu")}
        trained = time.perf_counter() - start
        rows = []
        for n in range(args.test):
            case = make_case(TEST_SEED + n, lesion=bool(n % 2))
            for marked in (False, True):
                for name, model in models.items():
                    rows.append(evaluate_case(model, name, case, marked))
    result = {
        "rules": {
            **{name: rule_scores(rows, (name,)) for name in SHORTCUT_RULES},
            "either shortcut rule": rule_scores(rows, SHORTCUT_RULES),
        },
        "accuracy": accuracy_table(rows),
        "training": log,
        "settings": {
            "train_cases": args.train,
            "epochs": args.epochs,
            "test_cases_per_set": args.test,
            "marker_ras": MARKER_RAS,
            "marker_half_mm": MARKER_HALF_MM,
            "marker_value": MARKER_VALUE,
            "seconds_training": round(trained, 1),
            "seconds": round(time.perf_counter() - start, 1),
        },
        "cases": rows,
    }
    write_json(args.out, result)
    print(markdown(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
