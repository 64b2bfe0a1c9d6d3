"""Networks, inputs, timing and lower bounds shared by the method benchmark."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
CT = REPO.parent / "shared" / "data" / "ct" / "example_ct.nii.gz"
# DenseNet121's last convolution is 2^3 at 64^3; transition2 (8^3 at 64^3) gives a map worth comparing
GRADCAM_LAYER = {"densenet121": "features.transition2.conv", "unet": None}


def trained_like(model: nn.Module, seed: int) -> nn.Module:
    """Give batch norms non-trivial statistics and shifts, as after training.

    A freshly initialised network has identity batch norms and no biases in DenseNet, so it is
    positively homogeneous and every IG rule is exact along the path; that hides the quadrature error.
    """
    gen = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.running_mean.normal_(0.0, 0.3, generator=gen)
            mod.running_var.uniform_(0.5, 2.0, generator=gen)
            mod.weight.data.uniform_(0.5, 1.5, generator=gen)
            mod.bias.data.normal_(0.0, 0.3, generator=gen)
    return model.eval()


def make_net(kind: str, seed: int = 0) -> nn.Module:
    """MONAI DenseNet121 (3D, 2 classes) or a MONAI UNet (3 classes, batch norm)."""
    from monai.networks.nets import DenseNet121, UNet

    torch.manual_seed(seed)
    if kind == "densenet121":
        return trained_like(DenseNet121(spatial_dims=3, in_channels=1, out_channels=2), seed)
    if kind == "unet":
        net = UNet(3, 1, 3, (16, 32, 64, 128, 256), (2, 2, 2, 2), num_res_units=2, norm="batch")
        return trained_like(net, seed)
    raise ValueError(f"unknown network {kind}")


def make_input(size: int) -> torch.Tensor:
    """The real abdominal CT from ../shared/data, windowed to [-1, 2] and resized to ``size``^3.

    With ``XAIMED_BENCH_INPUTS`` set to a folder holding ``ct_<size>.pt`` (this function's output saved
    by ``torch.save``), that tensor is used: the device machine has neither ../shared nor SimpleITK.
    """
    cached = Path(os.environ.get("XAIMED_BENCH_INPUTS", "/nonexistent")) / f"ct_{size}.pt"
    if cached.exists():
        return torch.load(cached)
    if not CT.exists():
        raise SystemExit(f"benchmark input missing: {CT} (the real data in ../shared/data)")
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(CT))).astype(np.float32)  # [k, j, i]
    arr = np.clip((arr.transpose(2, 1, 0) + 200.0) / 400.0, -1.0, 2.0)
    x = torch.from_numpy(np.ascontiguousarray(arr))[None, None]
    return F.interpolate(x, size=(size,) * 3, mode="trilinear", align_corners=False)


def region_mask(size: int) -> torch.Tensor:
    """A central box of a quarter of the volume per axis: the segmentation target region."""
    mask = torch.zeros((size,) * 3, dtype=torch.bool)
    lo, hi = 3 * size // 8, 5 * size // 8
    mask[lo:hi, lo:hi, lo:hi] = True
    return mask


class ScoreModel(nn.Module):
    """``(B, 1)`` target scores, so Captum and MONAI explain the same scalar as our methods.

    Written out (not by calling the target) so that ``torch.fx`` can trace it for incremental occlusion.
    """

    def __init__(self, model: nn.Module, target) -> None:
        super().__init__()
        self.model, self.index = model, int(target.index)
        mask = getattr(target, "mask", None)
        self.register_buffer("mask", None if mask is None else mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)[:, self.index]
        if self.mask is not None:
            out = (out * self.mask).flatten(1).sum(1)
        return out[:, None]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[object, float, float]:
    """``(result, wall seconds, CPU seconds of this process)`` of one call.

    On a shared machine the wall time swells with other people's load; the process CPU time does not,
    so ratios are reported on CPU time (both are kept in the JSON).
    """
    sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start, time.process_time() - cpu


def lower_bounds(model: nn.Module, x: torch.Tensor, target, repeat: int = 3) -> dict:
    """Per-item wall and CPU seconds of one forward pass (inference mode) and one forward + backward.

    Measured at batch 1 (``forward``, ``forward_backward``, with ``_cpu`` variants) and at the batch the
    memory budget allows, at most 8 (``..._batched``): on the CPU, PyTorch runs small batch-1 3D
    convolutions on a slower path than batched ones, so a method that batches n > 1 items has the
    batched per-item cost as its floor. Each figure is the minimum over ``repeat`` runs.
    """
    from XAIMedSlicerLib.methods.budget import MemoryBudget
    from XAIMedSlicerLib.methods.gradients import gradient_bytes_per_point

    device = x.device
    batch = MemoryBudget().chunk_size(gradient_bytes_per_point(model, x), 8, device)

    def forward(b):
        with torch.inference_mode():
            return target(model(x.expand(b, *x.shape[1:])))

    def forward_backward(b):
        point = x.expand(b, *x.shape[1:]).clone().requires_grad_(True)
        score = target(model(point)).sum()
        return torch.autograd.grad(score, point)[0]

    out = {"batch": batch}
    for name, fn in (("forward", forward), ("forward_backward", forward_backward)):
        for b, suffix in ((1, ""), (batch, "_batched")):
            fn(b)  # first call at this shape builds kernels
            runs = [timed(lambda b=b, fn=fn: fn(b), device)[1:] for _ in range(repeat)]
            out[name + suffix] = min(w for w, _ in runs) / b
            out[name + suffix + "_cpu"] = min(c for _, c in runs) / b
    return out


def corr(a, b) -> float:
    """Pearson correlation of two maps."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
