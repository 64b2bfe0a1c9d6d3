"""Full-size CT: IG through sliding windows on a 512 x 512 x 300 volume, without hand cropping.

    python bench/bench_fullsize.py [--steps 16] [--roi 96] [--region 48] [--device cpu]

The real abdominal CT from ../shared/data is resampled to 512 x 512 x 300 voxels, a MONAI UNet is
applied by sliding windows (roi ``--roi``^3, overlap 0.25, Gaussian blending), and IG explains class
1's logits summed over a ``--region``^3 box at the centre. Only the windows that touch the region
run. Prints a markdown line and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_setup import make_input, make_net, timed  # noqa: E402
from XAIMedSlicerLib.io.atomic import write_json  # noqa: E402
from XAIMedSlicerLib.methods import get_method  # noqa: E402
from XAIMedSlicerLib.methods.sliding import SlidingWindowModel  # noqa: E402
from XAIMedSlicerLib.methods.targets import RegionTarget  # noqa: E402

SHAPE = (512, 512, 300)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--roi", type=int, default=96)
    ap.add_argument("--region", type=int, default=48)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    small = make_input(128)
    x = F.interpolate(small, size=SHAPE, mode="trilinear", align_corners=False).to(device)
    mask = torch.zeros(SHAPE, dtype=torch.bool, device=device)
    lo = [s // 2 - args.region // 2 for s in SHAPE]
    mask[tuple(slice(a, a + args.region) for a in lo)] = True
    model = SlidingWindowModel(make_net("unet").to(device), (args.roi,) * 3, overlap=0.25, mode="gaussian")
    result, wall, cpu = timed(
        lambda: get_method("ig").fn(model, x, RegionTarget(1, mask), steps=args.steps), device
    )
    info = result.info
    line = (
        f"| IG-{args.steps} | {'x'.join(map(str, SHAPE))} | roi {args.roi}^3 | windows {info['windows']}"
        f"/{info['windows_total']} | {wall:.1f} s wall | {cpu:.1f} s CPU | peak {info['peak_bytes'] / 2**20:.0f} MB | "
        f"completeness error {info['completeness_error']:.3g} |"
    )
    print(line)
    out = (
        Path(__file__).resolve().parent
        / "results"
        / f"bench_fullsize_{args.device}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(exist_ok=True)
    write_json(out, {"args": vars(args), "shape": SHAPE, "seconds": wall, "cpu_seconds": cpu, "info": info})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
