"""Train the demo chest X-ray classifier on real radiographs with inserted nodules and opacities.

    python -m XAIMedSlicerLib.demo.cxr_train [--data ../shared/data] [--cases 3000] [--epochs 16]
                                             [--threads 1] [--out DIR]

Bases: the four real radiographs of ``../shared/data/cxr`` (two NIH ChestX-ray14 PNGs, the SIIM CR
DICOM and the CC0 example radiograph, which is also written as the demo's base image asset and used
from that 8-bit PNG, exactly as the demo reads it). Cases come from :func:`cxr_cases.make_cxr_case`
(augmented, lesion with probability 1/2, seeds ``TRAIN_SEED_BASE + n``) and go through the package's
own preprocessing (``prepare_input`` with the card's percentile scaling, then the slice adapter's
anti-aliased resize to 64 x 64), exactly as ``explain()`` runs the card.
The loss is cross-entropy plus, from half-way and on lesion cases, a training-only aid: the share of
the positive class map (what Grad-CAM reads) lying off the lesion, so that Grad-CAM points at it; the
committed network is the plain MONAI DenseNet of the card. Held-aside accuracy is
measured on fresh cases (seeds ``HELD_OUT_SEED_BASE + n``: new lesions and augmentations of the same
four radiographs; there are too few radiographs to hold a patient out, see the accuracy JSON), with
the Grad-CAM pointing-game hit rate (peak inside the lesion) on its lesion cases; all go into
``demo_cxr_classifier_accuracy.json`` beside the weights.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..io.atomic import atomic_path, write_json
from .cxr_cases import BASE_FILES, BASE_SIZE, DEMO_BASE, DEMO_SIZE, load_base, make_cxr_case
from .cxr_model import (
    ACCURACY_NAME,
    ASSETS,
    CARD_NAME,
    INPUT_SIZE,
    PREPROCESSING,
    WEIGHTS_NAME,
    adapted,
    build_network,
    model_card,
    predict,
)

TRAIN_SEED_BASE = 3_000_000
HELD_OUT_SEED_BASE = 4_000_000
CAM_WEIGHT = 1.0  # weight of the off-lesion class-map share (training only; the card's net is plain)
CAM_CELLS = 8  # the class map's side at the 64-pixel input


def network_inputs(cases) -> torch.Tensor:
    """Cases -> the 2D network's inputs ``(N, 1, 64, 64)`` through the card's own preprocessing."""
    from ..model.card import Preprocessing
    from ..model.slice2d import resize_2d
    from ..preprocess.pipeline import prepare_input

    pre = Preprocessing.from_dict(PREPROCESSING)
    out = []
    for case in cases:
        x = prepare_input(case.volume(), pre).tensor  # (1, 1, X, Y, 1)
        out.append(resize_2d(x[..., 0].transpose(-1, -2), INPUT_SIZE)[0])
    return torch.stack(out)


def make_set(bases: dict[str, np.ndarray], n: int, seed_base: int, desc: str):
    names = list(bases)
    cases = [
        make_cxr_case(bases[names[i % len(names)]], seed_base + i, base_name=names[i % len(names)])
        for i in tqdm(range(n), desc=desc, unit="case", leave=False, disable=not sys.stderr.isatty())
    ]
    return cases, network_inputs(cases), torch.tensor([c.label for c in cases])


def lesion_coverage(cases, cells: int) -> torch.Tensor:
    """Share of each class-map cell ``(N, cells, cells)`` that the lesion covers."""
    masks = torch.from_numpy(np.stack([c.mask for c in cases]).astype(np.float32))[:, None]
    return F.adaptive_avg_pool2d(masks, cells)[:, 0]


def off_lesion_share(net: torch.nn.Module, feats: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """Training-only aid: the share of the positive "lesion minus no finding" class map (the final
    feature map times the classifier weights, what Grad-CAM reads) lying on cells without lesion."""
    weight = net.class_layers.out.weight
    evidence = F.relu(torch.einsum("bchw,c->bhw", feats, weight[1] - weight[0]))
    outside = (coverage <= 0).float()
    return ((evidence * outside).flatten(1).sum(1) / (evidence.flatten(1).sum(1) + 1e-6)).mean()


def train(
    xs: torch.Tensor,
    ys: torch.Tensor,
    coverage: torch.Tensor,
    epochs: int,
    seed: int = 0,
    batch: int = 32,
    cam_weight: float = CAM_WEIGHT,
) -> torch.nn.Module:
    """Cross-entropy, plus (from half-way, on lesion cases) the off-lesion share of the class map."""
    torch.manual_seed(seed)
    net = build_network()
    feats: list[torch.Tensor] = []
    hook = net.class_layers.relu.register_forward_hook(lambda _m, _i, out: feats.append(out))
    opt = torch.optim.AdamW(net.parameters(), lr=5e-3, weight_decay=1e-4)
    steps = epochs * ((len(xs) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(xs), generator=gen)
        total = 0.0
        for start in range(0, len(xs), batch):
            idx = order[start : start + batch]
            feats.clear()
            loss = F.cross_entropy(net(xs[idx].float()), ys[idx])
            lesion = ys[idx] == 1
            if epoch >= epochs // 2 and bool(lesion.any()):
                loss = loss + cam_weight * off_lesion_share(net, feats[0][lesion], coverage[idx][lesion])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(xs):.4f}", flush=True)
    hook.remove()
    return net.eval()


def pointing_hit_rate(net: torch.nn.Module, cases) -> float:
    """Share of lesion cases whose Grad-CAM peak (on the case's pixel grid) lies inside the lesion."""
    from ..methods import get_method
    from ..methods.targets import ClassTarget
    from ..model.card import Preprocessing
    from ..preprocess.pipeline import prepare_input

    model, gradcam, pre = (
        adapted(net).eval(),
        get_method("gradcam").fn,
        Preprocessing.from_dict(PREPROCESSING),
    )
    hits = []
    for case in cases:
        x = prepare_input(case.volume(), pre).tensor
        cam = gradcam(model, x, ClassTarget(1), layer="tap").map[..., 0].numpy().T  # (rows, columns)
        hits.append(bool(case.mask.flat[int(np.argmax(cam))]))
    return float(np.mean(hits))


def write_outputs(net, out_dir: Path, training: dict, accuracy: dict) -> Path:
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS_NAME
    with atomic_path(weights) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
    os.chmod(weights, 0o644)  # a package asset, readable by everyone
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    write_json(out_dir / ACCURACY_NAME, {**accuracy, "weights_sha256": digest})
    write_json(out_dir / CARD_NAME, model_card(digest, training))
    return out_dir / CARD_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path.cwd().parent / "shared" / "data"))
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--held-out", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ASSETS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    data = Path(args.data)
    missing = [rel for rel in BASE_FILES.values() if not (data / rel).exists()]
    if missing:
        raise SystemExit(f"error: radiographs missing under {data}: {', '.join(missing)} (give --data)")
    base_png = np.rint(load_base(data / BASE_FILES[DEMO_BASE], DEMO_SIZE) * 255).astype(np.uint8)
    bases = {name: load_base(data / rel) for name, rel in BASE_FILES.items() if name != DEMO_BASE}
    bases[DEMO_BASE] = base_png.astype(np.float32) / 255.0  # the demo's image as demo_base() reads it
    cases, xs, ys = make_set(bases, args.cases, TRAIN_SEED_BASE, "training cases")
    net = train(xs, ys, lesion_coverage(cases, CAM_CELLS), args.epochs)
    seconds_train, cpu_train = time.perf_counter() - start, time.process_time() - cpu_start
    held, hx, hy = make_set(bases, args.held_out, HELD_OUT_SEED_BASE, "held-aside cases")
    right = (predict(net, hx) == hy).numpy()
    per_base = {
        name: float(np.mean([r for r, c in zip(right, held, strict=True) if c.base == name]))
        for name in bases
    }
    lesion_cases = [c for c in held if c.label == 1]
    hit = pointing_hit_rate(net, lesion_cases)
    accuracy = {
        "held_out_accuracy": float(right.mean()),
        "held_out_cases": len(held),
        "held_out_accuracy_per_radiograph": per_base,
        "held_out_seeds": f"{HELD_OUT_SEED_BASE}..{HELD_OUT_SEED_BASE + args.held_out - 1}",
        "held_out_what": "fresh lesions and augmentations of the four training radiographs (no unseen patient)",
        "gradcam_pointing_hit_rate": hit,
        "gradcam_pointing_cases": len(lesion_cases),
    }
    training = {
        "seed": 0,
        "cases": args.cases,
        "epochs": args.epochs,
        "train_radiographs": [BASE_FILES[n] for n in bases],
        "train_seeds": f"{TRAIN_SEED_BASE}..{TRAIN_SEED_BASE + args.cases - 1}",
        "base_size": BASE_SIZE,
        "seconds_training": round(seconds_train, 1),
        "cpu_seconds_training": round(cpu_train, 1),  # the wall time depends on what else runs
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "held_out_accuracy": accuracy["held_out_accuracy"],
        "auxiliary_loss": {
            "off_lesion_class_map_share": {"layer": "class_layers.relu", "weight": CAM_WEIGHT}
        },
    }
    card = write_outputs(net, Path(args.out), training, accuracy)
    print(
        f"held-aside accuracy: {accuracy['held_out_accuracy']:.3f} on {len(held)} fresh cases "
        f"({', '.join(f'{k} {v:.3f}' for k, v in per_base.items())}); Grad-CAM hit rate {hit:.3f} on "
        f"{len(lesion_cases)} lesions; training {seconds_train:.0f} s ({cpu_train:.0f} CPU s); wrote {card}"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    raise SystemExit(main())
