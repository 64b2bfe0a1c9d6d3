"""Chest X-ray localisation benchmark: every registered method on lesions inserted into real radiographs.

    python bench/bench_cxr.py [--quick] [--size 128] [--cases 40] [--model auto|demo|tiny] [--no-dice]

Bases are the four real radiographs of ``../shared/data/cxr`` (two NIH ChestX-ray14 PNGs, the SIIM CR
DICOM, the CC0 example), percentile-scaled to [0, 1] and resized to ``--size`` pixels a side. Each base's
lungs come from the registered CheXmask atlas (``anatomy.cxr_regions``). A case is a base with intensity
jitter (gamma, contrast, noise) and, for lesion cases, a Gaussian nodule (radius 3-7 px at 128 px,
peak +0.3 to +0.6) centred at a random pixel of the lungs; its ground-truth region is where the added
density exceeds a fifth of its peak.

The classifier is the project's demo CXR classifier (``demo/cxr_model.py``) when its weights are there
(``--model demo``, with its card's preprocessing), else a tiny CNN trained here (10 epochs, 2-3 minutes
on two cores) on fresh cases of three bases (the CC0 example held out as an unseen patient). For each
method, on the lesion cases of all four bases (fresh seeds): hit rate and mIoU with 95% percentile
bootstrap CIs (1000 replicates, seeded) as CheXlocalize computes them
(``metrics.pointing``), the IoU threshold tuned on separate validation cases over 0.2-0.7, and the same
figures for the anatomy-weighted map (map x chest prior). The held-out Dice of the atlas against the
CheXmask masks is reported too. Prints markdown tables and writes ``bench/results/bench_cxr.json``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from tqdm import tqdm

from XAIMedSlicerLib.anatomy.cxr_atlas import chexmask_atlas
from XAIMedSlicerLib.anatomy.cxr_evidence import structure_evidence
from XAIMedSlicerLib.anatomy.cxr_holdout import holdout_dice, holdout_variants
from XAIMedSlicerLib.anatomy.cxr_regions import cxr_anatomy
from XAIMedSlicerLib.geometry.axes import volume_tensor, xyz_to_kji
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.atomic import write_json
from XAIMedSlicerLib.io.radiograph import grid_for, read_radiograph
from XAIMedSlicerLib.methods import available_methods, get_method
from XAIMedSlicerLib.methods.targets import ClassTarget
from XAIMedSlicerLib.metrics.pointing import evaluate_pointing, tune_threshold
from XAIMedSlicerLib.model.slice2d import SliceAdapter

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
BASES = {
    "nih_00000001": "cxr/00000001_000.png",
    "nih_00027426": "cxr/00027426_000.png",
    "siim_cr": "cxr/siim_cr_monochrome2.dcm",
    "cc0_pa": "cxr/pa_normal_cc0.jpg",
}
TRAIN_BASES = ("nih_00000001", "nih_00027426", "siim_cr")
NOT_FOR_CNNS = ("attention_rollout", "attention_relevance")  # need transformer attention layers
LESION_CLASS = 1
AMPLITUDE = (0.3, 0.6)  # added peak density of a nodule, on the [0, 1] grey scale


def base_volume(path: Path, size: int) -> Volume:
    """A real radiograph, percentile-scaled to [0, 1], resized to size x size, 1 mm pixels, PA grid."""
    from skimage.transform import resize

    pixels = read_radiograph(path)[0].array[0].astype(np.float64)
    lo, hi = np.percentile(pixels, [0.5, 99.5])
    scaled = np.clip((pixels - lo) / max(hi - lo, 1e-6), 0, 1)
    image = resize(scaled, (size, size), order=1, anti_aliasing=True).astype(np.float32)
    spacing, direction = grid_for(size, size, (1.0, 1.0))
    return Volume(image[None], spacing, (0.0, 0.0, 0.0), direction)


def make_case(base: np.ndarray, lungs: np.ndarray, rng: np.random.Generator, lesion: bool) -> dict:
    """One case: jittered base, and a nodule inside ``lungs`` when ``lesion``."""
    image = np.clip(base, 0, 1) ** rng.uniform(0.8, 1.25) * rng.uniform(0.9, 1.1)
    image = image + rng.normal(0, rng.uniform(0.005, 0.02), image.shape)
    mask = np.zeros(image.shape, bool)
    if lesion:
        scale = image.shape[0] / 128
        radius, amplitude = rng.uniform(3, 7) * scale, rng.uniform(*AMPLITUDE)
        inner = ndimage.binary_erosion(lungs, iterations=max(1, int(radius)))
        candidates = np.argwhere(inner if inner.any() else lungs)
        r0, c0 = candidates[rng.integers(len(candidates))]
        rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
        density = amplitude * np.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (2 * (radius / 1.5) ** 2))
        image, mask = image + density, density > 0.2 * amplitude
    return {"image": image.astype(np.float32), "mask": mask, "label": int(lesion)}


def make_cases(bases: dict, names, n: int, seed: int, lesion_only: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        name = names[i % len(names)]
        lesion = True if lesion_only else bool(rng.integers(2))
        case = make_case(bases[name]["image"], bases[name]["lungs"], rng, lesion)
        cases.append({**case, "base": name})
    return cases


class TinyCxrNet(nn.Module):
    """A small 2D CNN (about 16k parameters): a local high-pass (image minus its 9 x 9 mean), three
    convolutions with batch norm (stride 4 in all), a 1 x 1 class map and a soft maximum over it."""

    LAYER = "features.8"  # the last feature ReLU, for Grad-CAM

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, stride=2, padding=2),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
        )
        self.head = nn.Conv2d(32, 2, 1)

    def forward(self, x):
        local = x - nn.functional.avg_pool2d(x, 9, 1, 4, count_include_pad=False)
        scores = self.head(self.features(local)).flatten(2)
        return torch.logsumexp(4.0 * scores, dim=2) / 4.0


def train_tiny(cases: list[dict], epochs: int, seed: int = 0, batch: int = 32) -> nn.Module:
    torch.manual_seed(seed)
    net = TinyCxrNet()
    xs = torch.from_numpy(np.stack([c["image"] for c in cases]))[:, None]
    ys = torch.tensor([c["label"] for c in cases])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), desc="training the tiny CNN", unit="epoch", leave=False):
        net.train()
        for idx in torch.randperm(len(xs), generator=gen).split(batch):
            loss = nn.functional.cross_entropy(net(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def demo_model() -> tuple[nn.Module, str, Callable] | None:
    """The demo CXR classifier when its module and weights are present (another developer's files),
    with its card's preprocessing (as ``explain()`` runs it)."""
    try:
        from safetensors.torch import load_file

        from XAIMedSlicerLib.demo import cxr_model
    except ImportError:
        return None
    weights = cxr_model.ASSETS / cxr_model.WEIGHTS_NAME
    if not weights.exists():
        return None
    from XAIMedSlicerLib.model.card import Preprocessing
    from XAIMedSlicerLib.preprocess.pipeline import prepare_input

    net = cxr_model.build_network()
    net.load_state_dict(load_file(str(weights)))
    pre = Preprocessing.from_dict(cxr_model.PREPROCESSING)
    spacing, direction = grid_for(1, 1, (1.0, 1.0))

    def prepare(image: np.ndarray) -> torch.Tensor:
        volume = Volume(image[None].astype(np.float32), spacing, (0.0, 0.0, 0.0), direction)
        return prepare_input(volume, pre).tensor.float()

    return cxr_model.adapted(net.eval()).eval(), f"demo CXR classifier ({weights.name})", prepare


def to_input(image: np.ndarray) -> torch.Tensor:
    """A case image (rows, cols) as the network input (1, 1, X, Y, 1), unchanged."""
    return volume_tensor(image[None])


@torch.no_grad()
def accuracy(model: nn.Module, cases: list[dict], prepare: Callable = to_input) -> float:
    preds = [int(model(prepare(c["image"])).argmax(1)) for c in cases]
    return float(np.mean([p == c["label"] for p, c in zip(preds, cases, strict=True)]))


def method_params(name: str, size: int) -> dict:
    window, stride = max(4, size // 8), max(2, size // 16)
    return {
        "gradcam": {"layer": SliceAdapter.TAP},
        "gradcampp": {"layer": SliceAdapter.TAP},
        "ig": {"steps": 16},
        "smoothgrad": {"samples": 8},
        "occlusion": {"window": (window, window, 1), "stride": (stride, stride, 1)},
    }.get(name, {})


def run_method(
    name: str, model, cases: list[dict], size: int, progress, prepare=to_input
) -> list[np.ndarray]:
    spec, params = get_method(name), method_params(name, size)
    maps = []
    for case in cases:
        attribution = spec.fn(model, prepare(case["image"]), ClassTarget(LESION_CLASS), **params)
        amap = xyz_to_kji(attribution.map.float())[0].astype(np.float64)
        if amap.shape != case["image"].shape:
            raise ValueError(f"{name} gave a {amap.shape} map for a {case['image'].shape} case")
        maps.append(amap)
        progress()
    return maps


def summarise(maps, masks, val_maps, val_masks, seed: int) -> dict:
    threshold = tune_threshold(val_maps, val_masks)
    result = evaluate_pointing(maps, masks, threshold=threshold, seed=seed)
    return {"threshold": threshold, **result.to_dict()}


def ci(entry: dict) -> str:
    return f"{entry['mean']:.2f} [{entry['lower']:.2f}, {entry['upper']:.2f}]"


def table(rows: list[dict]) -> str:
    lines = [
        "| method | hit rate [95% CI] | mIoU [95% CI] | thr | hit rate, anatomy-weighted | "
        "mIoU, anatomy-weighted | chest share | s/case |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | {r['error']} | | | | | | |")
            continue
        p, w = r["plain"], r["weighted"]
        lines.append(
            f"| {r['method']} | {ci(p['hit_rate'])} | {ci(p['miou'])} | {p['threshold']:.1f} | "
            f"{ci(w['hit_rate'])} | {ci(w['miou'])} | {r['chest_share']:.2f} | {r['seconds_per_case']:.2f} |"
        )
    return "\n".join(lines)


def dice_table(rows: list[dict]) -> str:
    lines = ["| held-out variant | structure | Dice | Dice before registration |", "|---|---|---|---|"]
    lines += [
        f"| {r['variant']} | {r['structure']} | {r['dice']:.3f} | {r['dice_initial']:.3f} |" for r in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--cases", type=int, default=40, help="lesion test cases (over the four bases)")
    parser.add_argument("--val-cases", type=int, default=16, help="lesion cases for the IoU threshold")
    parser.add_argument("--train-cases", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", choices=("auto", "demo", "tiny"), default="auto")
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--quick", action="store_true", help="12 test cases, 8 validation cases")
    parser.add_argument("--no-dice", action="store_true", help="skip the atlas held-out Dice")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_cxr.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.val_cases = 12, 8
    torch.set_num_threads(args.threads)
    missing = [p for p in BASES.values() if not (args.data / p).exists()]
    if missing:
        print(f"error: radiographs missing in {args.data}: {', '.join(missing)}", file=sys.stderr)
        return 2
    started = time.time()
    atlas = chexmask_atlas(args.data / "cxr")
    bases = {}
    for name, rel in tqdm(BASES.items(), desc="registering the atlas", unit="image", leave=False):
        volume = base_volume(args.data / rel, args.size)
        anatomy = cxr_anatomy(volume, atlas)
        lungs = np.isin(anatomy.labels.array[0], (1, 2))
        bases[name] = {"image": volume.array[0], "lungs": lungs, "anatomy": anatomy, "volume": volume}

    found = demo_model() if args.model in ("auto", "demo") else None
    if args.model == "demo" and found is None:
        print("error: the demo CXR classifier weights are not there", file=sys.stderr)
        return 2
    test = make_cases(bases, list(BASES), 200, args.seed + 2)  # accuracy: half with, half without
    prepare = to_input
    if found is not None:
        model, model_name, prepare = found
        train_info = {"source": model_name, "preprocessing": "the card's (percentile 0.5-99.5 to [0, 1])"}
    else:
        train = make_cases(bases, TRAIN_BASES, args.train_cases, args.seed + 1)
        model = SliceAdapter(train_tiny(train, args.epochs, args.seed), TinyCxrNet.LAYER).eval()
        model_name = f"tiny CNN trained here ({args.train_cases} cases of {', '.join(TRAIN_BASES)})"
        train_info = {"source": model_name, "epochs": args.epochs, "train_cases": args.train_cases}
    acc = {name: accuracy(model, [c for c in test if c["base"] == name], prepare) for name in BASES}
    print(f"model: {model_name}; accuracy per base: " + ", ".join(f"{k} {v:.2f}" for k, v in acc.items()))

    cases = make_cases(bases, list(BASES), args.cases, args.seed + 3, lesion_only=True)
    val = make_cases(bases, list(BASES), args.val_cases, args.seed + 4, lesion_only=True)
    names = [m for m in (args.methods or available_methods())]
    rows = []
    bar = tqdm(total=len(names) * (len(cases) + len(val)), desc="methods", unit="map", leave=False)
    for name in names:
        if name in NOT_FOR_CNNS:
            rows.append({"method": name, "error": "not applicable: no attention layers in a CNN"})
            bar.update(len(cases) + len(val))
            continue
        bar.set_postfix_str(name)
        t0 = time.time()
        try:
            maps = run_method(name, model, cases, args.size, lambda: bar.update(1), prepare)
            seconds = (time.time() - t0) / len(cases)
            val_maps = run_method(name, model, val, args.size, lambda: bar.update(1), prepare)
        except Exception as exc:  # noqa: BLE001 - one failing method is a row, not the end of the run
            rows.append({"method": name, "error": f"failed: {type(exc).__name__}: {str(exc)[:80]}"})
            continue
        priors = [bases[c["base"]]["anatomy"].prior.array[0] for c in cases]
        val_priors = [bases[c["base"]]["anatomy"].prior.array[0] for c in val]
        masks, val_masks = [c["mask"] for c in cases], [c["mask"] for c in val]
        weighted = [m * p for m, p in zip(maps, priors, strict=True)]
        val_weighted = [m * p for m, p in zip(val_maps, val_priors, strict=True)]
        chest = [
            structure_evidence(
                bases[c["base"]]["volume"].with_array(m[None].astype(np.float32)), bases[c["base"]]["anatomy"]
            ).chest_share
            for m, c in zip(maps, cases, strict=True)
        ]
        rows.append(
            {
                "method": name,
                "plain": summarise(maps, masks, val_maps, val_masks, args.seed),
                "weighted": summarise(weighted, masks, val_weighted, val_masks, args.seed),
                "chest_share": float(np.mean(chest)),
                "seconds_per_case": seconds,
                "params": {
                    k: list(v) if isinstance(v, tuple) else v
                    for k, v in method_params(name, args.size).items()
                },
            }
        )
    bar.close()
    dice_rows = (
        []
        if args.no_dice
        else [r for v in holdout_variants((0, 1)) for r in holdout_dice(v, folder=args.data / "cxr")]
    )
    print(
        f"\n### Localisation of inserted nodules ({len(cases)} lesion cases, {args.size} px, {model_name})\n"
    )
    print(table(rows))
    if dice_rows:
        print("\n### Chest atlas: held-out Dice against the CheXmask masks\n")
        print(dice_table(dice_rows))
    result = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "model": train_info,
        "accuracy": acc,
        "methods": rows,
        "dice": dice_rows,
        "conventions": "CheXlocalize: argmax hit, min-max map > tuned threshold, true-positive IoU, "
        "1000 percentile bootstrap replicates",
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": args.threads},
        "seconds": time.time() - started,
    }
    write_json(args.out, result)
    print(f"\nwrote {args.out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
