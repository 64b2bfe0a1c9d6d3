"""Benchmark of the attribution methods against their lower bounds, Captum and MONAI.

One command (``--quick`` for a short run)::

    python bench/bench_methods.py [--quick] [--sizes 64 96 128] [--nets densenet121 unet] [--device cpu]

For every network and size it measures each method's time and peak memory, its lower bound in the
same run (n x (forward + backward) for gradient methods, the forward passes occlusion needs), the
ratio, and the same work done by Captum and MONAI (speed ratio and output correlation). It also
records IG's completeness error against the number of passes, for our rules and Captum's. It prints
markdown tables and writes JSON to ``bench/results/``. References whose estimated time exceeds
``--max-ref-seconds`` are skipped and listed as skipped.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ig import ig_case, ig_curve, ig_table  # noqa: E402
from bench_report import fmt, method_table, reference_columns  # noqa: E402
from bench_setup import (
    GRADCAM_LAYER,
    ScoreModel,
    corr,
    lower_bounds,
    make_input,
    make_net,
    region_mask,
    timed,
)  # noqa: E402
from XAIMedSlicerLib.methods import get_method  # noqa: E402
from XAIMedSlicerLib.methods.activations import default_layer  # noqa: E402
from XAIMedSlicerLib.methods.budget import PeakMemory  # noqa: E402
from XAIMedSlicerLib.methods.occlusion_layout import boxes_of, captum_axes, monai_axes  # noqa: E402
from XAIMedSlicerLib.methods.targets import ClassTarget, RegionTarget  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("gradcam", "gradcampp", "saliency", "ig", "smoothgrad", "occlusion", "occlusion_monai")


def settings(quick: bool) -> dict:
    if quick:
        return {
            "steps": 16,
            "samples": 8,
            "window": 16,
            "stride": 16,
            "monai_overlap": 0.25,
            "ig_curve": True,
        }
    return {"steps": 32, "samples": 25, "window": 16, "stride": 16, "monai_overlap": 0.6, "ig_curve": True}


def cold_call(fn, device: torch.device) -> float | None:
    """On a GPU, one untimed-for-the-table call first: its wall seconds (cuDNN tuning, allocator growth).

    The table then reports the second (warm) call, as a session that explains several targets sees it.
    On the CPU nothing is run twice (``None``).
    """
    if device.type != "cuda":
        return None
    return timed(fn, device)[1]


def ours(name: str, model, x, target, **params):
    """Run one of our methods: ``(map, (wall, cpu) seconds, peak bytes, info)``; info has ``cold_seconds``."""
    method = get_method(name).fn

    def call():
        return method(model, x, target, **params)

    cold = cold_call(call, x.device)
    with PeakMemory(x.device) as peak:
        result, wall, cpu = timed(call, x.device)
    return result.map, (wall, cpu), peak.peak_bytes, {**result.info, "cold_seconds": cold}


def reference(fn, device):
    """Run a reference implementation: ``(map as CPU tensor, (wall, cpu) seconds, peak bytes, cold s)``."""
    cold = cold_call(fn, device)
    with PeakMemory(device) as peak:
        out, wall, cpu = timed(fn, device)
    return out.detach().float().cpu(), (wall, cpu), peak.peak_bytes, cold


def bench_case(
    kind: str, size: int, cfg: dict, device: torch.device, max_ref: float, rows: list, log
) -> dict:
    model = make_net(kind).to(device)
    x = make_input(size).to(device)
    if kind == "densenet121":
        with torch.inference_mode():
            cls = int(model(x).argmax(1))
        target = ClassTarget(cls)
    else:
        target = RegionTarget(1, region_mask(size).to(device))
    scalar = ScoreModel(model, target).eval()
    layer = GRADCAM_LAYER[kind] or default_layer(model)
    bounds = lower_bounds(model, x, target)
    t_f, t_fb = bounds["forward"], bounds["forward_backward"]
    unit = {"f": (t_f, bounds["forward_cpu"]), "fb": (t_fb, bounds["forward_backward_cpu"])}
    unit_batched = {
        "f": (bounds["forward_batched"], bounds["forward_batched_cpu"]),
        "fb": (bounds["forward_backward_batched"], bounds["forward_backward_batched_cpu"]),
    }
    log(
        f"[{kind} {size}^3] per item, CPU s: forward {unit['f'][1]:.3f} (batch 1), "
        f"{unit_batched['f'][1]:.3f} (batch {bounds['batch']}); forward+backward {unit['fb'][1]:.3f} (batch 1), "
        f"{unit_batched['fb'][1]:.3f} (batch {bounds['batch']})"
    )
    sigma = 0.15 * float(x.max() - x.min())
    S, N = cfg["steps"], cfg["samples"]
    win, stride = (cfg["window"],) * 3, (cfg["stride"],) * 3
    shape = tuple(x.shape[2:])
    n_occ = len(boxes_of(captum_axes(shape, win, stride)))
    n_monai = len(boxes_of(monai_axes(shape, win, cfg["monai_overlap"])))

    def run_ref(name, fn, estimate, transform=None) -> dict:
        """Run a reference unless its estimated time is over the limit."""
        if fn is None:
            return {}
        if estimate > max_ref:
            return {"reference": name, "reference_skipped": f"estimated {estimate:.0f} s > {max_ref:.0f} s"}
        ref_map, ref_sec, ref_peak, ref_cold = reference(fn, device)
        ref_map = transform(ref_map) if transform is not None else ref_map
        return {
            "reference": name,
            "ref_map": ref_map,
            "ref_seconds": ref_sec[0],
            "ref_cpu_seconds": ref_sec[1],
            "ref_peak_mb": ref_peak / 2**20,
            "ref_cold_seconds": ref_cold,
        }

    def row(method, params, passes, ref=None, model_=None, target_=None):
        """One of our methods against ``passes`` (n, "fb" or "f") lower-bound passes and a reference.

        ``ref``: a reference's result dict, or a function returning it (run only if the row is wanted).
        """
        key = "occlusion_monai" if params.get("style") == "monai" else method
        if key not in cfg["methods"]:
            return
        ref = ref() if callable(ref) else ref
        amap, (wall, cpu), peak, info = ours(method, model_ or model, x, target_ or target, **params)
        if passes is None:  # occlusion: the forward passes it runs (boxes scored, plus the input)
            passes = (info["forward_passes"], "f")
        n, kind_ = passes
        # one item cannot be batched; n items take the cheaper of single and batched passes
        per_item = unit[kind_] if n == 1 else min(unit[kind_], unit_batched[kind_], key=lambda u: u[1])
        bound_wall, bound_cpu = n * per_item[0], n * per_item[1]
        r = {
            "net": kind,
            "size": size,
            "method": method,
            "params": {k: v for k, v in params.items() if k != "layer"},
            "seconds": wall,
            "cpu_seconds": cpu,
            "peak_mb": peak / 2**20,
            "bound": f"{n} x {'forward + backward' if kind_ == 'fb' else 'forward'}",
            "bound_seconds": bound_wall,
            "bound_cpu_seconds": bound_cpu,
            "ratio": wall / bound_wall,
            "ratio_cpu": cpu / bound_cpu,
            "incremental": info.get("incremental"),
            "forward_passes": info.get("forward_passes"),
            "precision": info.get("precision"),
            "cold_seconds": info.get("cold_seconds"),
        }
        ref = dict(ref or {})
        ref_map = ref.pop("ref_map", None)
        r.update(ref)
        if ref_map is not None:
            r["speedup"] = ref["ref_seconds"] / wall
            r["speedup_cpu"] = ref["ref_cpu_seconds"] / cpu
            r["correlation"] = corr(amap, ref_map)
        rows.append(r)
        log(_line(r))

    from captum.attr import (
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        NoiseTunnel,
        Occlusion,
        Saliency,
    )
    from monai.visualize import GradCAM, OcclusionSensitivity, SmoothGrad

    def captum_gradcam():
        cam = LayerGradCam(scalar, dict(scalar.named_modules())["model." + layer]).attribute(
            x, target=0, relu_attributions=True
        )
        return LayerAttribution.interpolate(cam, shape, interpolate_mode="trilinear")[0, 0]

    def monai_cam():
        return GradCAM(scalar, "model." + layer, postprocessing=lambda m: m)(x, class_idx=0)[0, 0]

    def captum_ig():
        ig = IntegratedGradients(scalar)
        return ig.attribute(x, baselines=0.0, target=0, n_steps=S, internal_batch_size=min(S, 8))[0].sum(0)

    row(
        "gradcam",
        {"layer": layer},
        (1, "fb"),
        lambda: run_ref("Captum LayerGradCam", captum_gradcam, 2 * t_fb),
    )
    row("gradcam", {"layer": layer}, (1, "fb"), lambda: run_ref("MONAI GradCAM", monai_cam, 2 * t_fb))
    row("gradcampp", {"layer": layer}, (1, "fb"))
    sal = lambda: Saliency(scalar).attribute(x, target=0, abs=True)[0].amax(0)  # noqa: E731
    row("saliency", {}, (1, "fb"), lambda: run_ref("Captum Saliency", sal, 2 * t_fb))
    row(
        "ig",
        {"steps": S},
        (S, "fb"),
        lambda: run_ref(f"Captum IG (GL, internal batch {min(S, 8)})", captum_ig, 1.3 * S * t_fb),
    )
    row("ig", {"steps": 8, "rule": "adaptive"}, (8, "fb"))

    def captum_nt():
        torch.manual_seed(0)
        sal = NoiseTunnel(Saliency(scalar))
        return sal.attribute(
            x, nt_type="smoothgrad", nt_samples=N, stdevs=sigma, target=0, nt_samples_batch_size=4
        )[0].amax(0)

    row(
        "smoothgrad",
        {"samples": N, "stdev": sigma, "seed": 0},
        (N, "fb"),
        lambda: run_ref("Captum NoiseTunnel(Saliency)", captum_nt, 1.3 * N * t_fb),
    )

    def monai_sg():
        torch.manual_seed(0)
        return SmoothGrad(scalar, n_samples=N, verbose=False)(x.clone(), index=0)[0, 0]

    monai_sg_ref: dict = {}

    def monai_sg_once() -> dict:  # one MONAI run for both precisions
        if not monai_sg_ref:
            monai_sg_ref.update(run_ref(f"MONAI SmoothGrad (n_samples={N})", monai_sg, 1.3 * N * t_fb))
        return monai_sg_ref

    sg_monai = {"samples": N, "base": "gradient", "aggregate": "rms", "noise": 0.15, "seed": 0}
    row("smoothgrad", sg_monai, (N, "fb"), monai_sg_once)
    # bf16 passes (channels-last on the CPU), accepted up to a 0.5 relative gradient error at x:
    # SmoothGrad's own sampling error is larger (two 25-sample seeds correlate about 0.84)
    row("smoothgrad", {**sg_monai, "precision": "bf16", "tolerance": 0.5}, (N, "fb"), monai_sg_once)
    occ = {"window": cfg["window"], "stride": cfg["stride"]}

    def captum_occ():
        occlusion = Occlusion(scalar)
        return occlusion.attribute(
            x, sliding_window_shapes=(1, *win), strides=(1, *stride), baselines=0.0, target=0
        )[0, 0]

    row(
        "occlusion",
        occ,
        None,
        lambda: run_ref("Captum Occlusion (same windows)", captum_occ, 1.2 * n_occ * t_f),
    )
    # MONAI applies a sigmoid (one input channel); a region sum of logits saturates it, so the
    # segmentation network is compared without activation on both sides
    activate = kind == "densenet121"
    with torch.inference_mode():
        s = scalar(x)[0, 0]
        p0 = float(torch.sigmoid(s) if activate else s)

    def monai_occ():
        sens = OcclusionSensitivity(
            scalar, mask_size=cfg["window"], overlap=cfg["monai_overlap"], verbose=False, activate=activate
        )
        return sens(x)[0][0, 0]

    monai_name = f"MONAI OcclusionSensitivity (mask {cfg['window']}, overlap {cfg['monai_overlap']})"
    estimate = 1.2 * n_monai * unit_batched["f"][0]
    case = {"net": kind, "size": size, "bounds": bounds, "n_occlusion_boxes": n_occ, "n_monai_boxes": n_monai}
    if "occlusion_monai" not in cfg["methods"]:
        return case
    monai_ref = run_ref(monai_name, monai_occ, estimate, transform=lambda m: p0 - m)
    for sub in (1, 2):
        params = {
            "window": cfg["window"],
            "style": "monai",
            "overlap": cfg["monai_overlap"],
            "subsample": sub,
            "activate": "auto" if activate else "none",
        }
        if sub == 1 and estimate > max_ref:  # the same passes as MONAI: as long, and nothing to compare
            rows.append({"net": kind, "size": size, "method": "occlusion", "params": params, **monai_ref})
            log(f"| {kind} | {size}^3 | occlusion | {params} | skipped: {monai_ref['reference_skipped']} |")
            continue
        # without an activation ours explains the network's own region target (the same scalar that
        # MONAI gets through the wrapper), so it can run the last layers on the region only
        row(
            "occlusion",
            params,
            None,
            monai_ref,
            model_=scalar if activate else model,
            target_=ScoreTarget() if activate else target,
        )
    return case


class ScoreTarget:
    """The first (only) output of :class:`ScoreModel` as the target."""

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return output[:, 0]


def _line(r: dict) -> str:
    params = ",".join(f"{k}={v}" for k, v in r["params"].items() if k not in ("seed", "stdev"))
    ref_part = reference_columns(r) + "|"
    return (
        f"| {r['net']} | {r['size']}^3 | {r['method']} | {params} | {fmt(r['cpu_seconds'], '.1f')} | "
        f"{fmt(r['seconds'], '.1f')} | {fmt(r['peak_mb'], '.0f')} | {r['bound']}: {fmt(r['bound_cpu_seconds'], '.1f')} | "
        f"{fmt(r['ratio_cpu'])} | {ref_part}"
    )


HEADER = (
    "| net | size | method | params | CPU s | wall s | peak MB | lower bound (CPU s) | ratio | reference | "
    "ref CPU s | speed-up | correlation |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64^3 only, fewer steps, samples and windows")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--nets", nargs="+", default=["densenet121", "unet"], choices=["densenet121", "unet"])
    ap.add_argument("--device", default="cpu")
    # one thread: on a shared machine two OpenMP threads wait for each other at every barrier (30x slower)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-ref-seconds", type=float, default=600.0)
    ap.add_argument("--no-ig-curve", action="store_true")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="rows to run")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = {**settings(args.quick), "methods": list(args.methods)}
    sizes = args.sizes or ([64] if args.quick else [64, 96, 128])
    rows: list[dict] = []
    cases, curves = [], []
    print(HEADER, flush=True)
    for kind in args.nets:
        for size in sizes:
            cases.append(
                bench_case(
                    kind, size, cfg, device, args.max_ref_seconds, rows, lambda s: print(s, flush=True)
                )
            )
    if cfg["ig_curve"] and not args.no_ig_curve:
        for case in (*args.nets, "meshnet"):
            model, x, target = ig_case(case, min(sizes))
            # on the CPU: the curve is about accuracy per pass, not speed
            curves += ig_curve(model, x, target, args.quick, case=f"{case} {tuple(x.shape[2:])}")
        print("\n" + ig_table(curves))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"bench_methods_{args.device}_{'quick' if args.quick else 'full'}_{stamp}.json"
    meta = {
        "argv": sys.argv[1:],
        "settings": cfg,
        "device": str(device),
        "threads": args.threads,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_count": __import__("os").cpu_count(),
    }
    from XAIMedSlicerLib.io.atomic import write_json

    result = {"meta": meta, "cases": cases, "rows": rows, "ig_curve": curves}
    write_json(out, result)
    print("\n" + method_table(result))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
