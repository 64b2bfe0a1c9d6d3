"""IG completeness error and map error against the number of passes: our rules and Captum's.

Run alone (``python bench/bench_ig.py [--quick] [--cases densenet121 unet meshnet]``) or from
``bench_methods.py``. Every rule here costs exactly ``passes`` forward + backward passes of one path
point and no other pass (the adaptive rule places its later nodes from the passes already made; the
trapezoid-based rules read ``f(input)`` and ``f(baseline)`` from their end nodes), so passes are
comparable across rows. ``map_error`` is the relative L2 distance to a fine trapezoid IG of the same
network (257 nodes, 129 with ``--quick``), so a rule that is only made complete shows it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_setup import CT, ScoreModel, make_input, make_net, region_mask, timed  # noqa: E402
from XAIMedSlicerLib.methods import get_method  # noqa: E402
from XAIMedSlicerLib.methods.targets import ClassTarget, RegionTarget  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MESHNET = CT.parents[1] / "models" / "meshnet" / "model5_gw_ae"
T1 = CT.parents[1] / "brain" / "t1_crop.nii.gz"
OURS = ("adaptive", "completeness_corrected", "gausslegendre", "riemann_trapezoid")
CAPTUM = ("gausslegendre", "riemann_trapezoid")


def ig_case(name: str, size: int = 64):
    """``(model, x, target)``: DenseNet121 (class), UNet (central region) or MeshNet (grey matter)."""
    if name == "meshnet":
        from XAIMedSlicerLib.io.volumes import read_volume
        from XAIMedSlicerLib.model.loader import load_model
        from XAIMedSlicerLib.preprocess import prepare_input

        if not MESHNET.exists() or not T1.exists():
            raise SystemExit(f"benchmark input missing: {MESHNET} or {T1} (the real data in ../shared/data)")
        image = read_volume(T1)
        loaded = load_model(MESHNET, device="cpu")
        centre = image.index_to_ras((127, 128, 110))
        x = prepare_input(image, loaded.card.preprocessing, roi=(centre, (40,) * 3)).tensor
        net = loaded.network.eval()
        with torch.inference_mode():
            mask = net(x)[0].argmax(0) == 2
        return net, x, RegionTarget(2, mask)
    net, x = make_net(name), make_input(size)
    if name == "densenet121":
        with torch.inference_mode():
            return net, x, ClassTarget(int(net(x).argmax(1)))
    return net, x, RegionTarget(1, region_mask(size))


def ig_curve(model, x: torch.Tensor, target, quick: bool, case: str = "") -> list[dict]:
    """Rows ``{case, rule, impl, passes, completeness_error, map_error, seconds}`` (``seconds``: CPU time)."""
    from captum.attr import IntegratedGradients

    with torch.inference_mode():
        delta = float(target(model(x)).sum() - target(model(torch.zeros_like(x))).sum())
    ig = get_method("ig").fn
    ref_steps = 129 if quick else 257
    ref = ig(model, x, target, steps=ref_steps, rule="riemann_trapezoid").map
    passes = [4, 8, 16, 32] if quick else [4, 6, 8, 12, 16, 24, 32]
    plan = [(rule, "ours", p) for rule in OURS for p in passes]
    plan += [(rule, "captum", p) for rule in CAPTUM for p in passes]
    scalar = ScoreModel(model, target).eval()
    rows = []
    for rule, impl, p in plan:
        if impl == "ours":
            result, _wall, sec = timed(
                lambda rule=rule, p=p: ig(model, x, target, steps=p, rule=rule), x.device
            )
            amap = result.map
        else:
            captum = IntegratedGradients(scalar)
            run = lambda rule=rule, p=p, captum=captum: captum.attribute(  # noqa: E731
                x, baselines=0.0, target=0, n_steps=p, method=rule, internal_batch_size=min(p, 8)
            )
            attr, _wall, sec = timed(run, x.device)
            amap = attr.detach()[0].sum(0).cpu()
        rows.append(
            {
                "case": case,
                "rule": rule,
                "impl": impl,
                "passes": p,
                "completeness_error": abs(float(amap.sum()) - delta) / abs(delta),
                "map_error": float((amap - ref).norm() / ref.norm()),
                "reference": f"riemann_trapezoid, {ref_steps} nodes",
                "seconds": sec,
            }
        )
    return rows


def ig_table(rows: list[dict]) -> str:
    """Markdown: one line per case and rule, completeness and map error at each number of passes."""
    passes = sorted({r["passes"] for r in rows})
    head = " | ".join(f"{p}" for p in passes)
    lines = [
        "completeness error / map error (relative L2 to a fine trapezoid IG) against passes",
        "",
        f"| case | rule | implementation | {head} |",
        "|---|---|---|" + "---|" * len(passes),
    ]
    keys = list(dict.fromkeys((r.get("case", ""), r["rule"], r["impl"]) for r in rows))
    for case, rule, impl in keys:
        cells = []
        for p in passes:
            hit = [
                r
                for r in rows
                if (r.get("case", ""), r["rule"], r["impl"], r["passes"]) == (case, rule, impl, p)
            ]
            cells.append(f"{hit[0]['completeness_error']:.1e} / {hit[0]['map_error']:.3f}" if hit else "")
        lines.append(f"| {case} | {rule} | {impl} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="passes 4, 8, 16, 32 and a 129-node reference")
    ap.add_argument("--cases", nargs="+", default=["densenet121", "unet", "meshnet"])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    for case in args.cases:
        model, x, target = ig_case(case, args.size)
        rows += ig_curve(model, x, target, args.quick, case=f"{case} {tuple(x.shape[2:])}")
        print(f"{case} done", flush=True)
    print(ig_table(rows))
    from XAIMedSlicerLib.io.atomic import write_json

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench_ig_{'quick' if args.quick else 'full'}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(out, {"argv": sys.argv[1:], "threads": args.threads, "ig_curve": rows})
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
