"""What replaces removed voxels (a blurred copy or a baseline value) and in which order voxels go."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..errors import XAIError
from .arrays import as_numpy, descending_order

REPLACEMENTS = ("blur", "baseline", "mean")


def replacement_input(
    x: torch.Tensor, mode: str | torch.Tensor = "blur", *, baseline: float = 0.0, blur_sigma: float = 5.0
) -> torch.Tensor:
    """The input with everything removed: ``x`` shape ``(1, C, *spatial)`` (2D or 3D spatial).

    * ``blur``: a Gaussian-blurred copy (``blur_sigma`` in voxels, per channel), as in RISE insertion;
    * ``baseline``: the constant ``baseline`` everywhere;
    * ``mean``: each channel's mean;
    * a tensor shaped like ``x``: that input (e.g. the same scan without the finding, when it is known).
    """
    check_input(x)
    if isinstance(mode, torch.Tensor):
        if mode.shape != x.shape:
            raise XAIError(
                f"replacement shape {tuple(mode.shape)} differs from the input {tuple(x.shape)}",
                "give an input-shaped tensor",
            )
        return mode.to(x.device, x.dtype)
    if mode == "blur":
        arr = x.detach().cpu().numpy().astype(np.float32)
        sigma = (0, 0) + (float(blur_sigma),) * (x.ndim - 2)
        return torch.from_numpy(ndimage.gaussian_filter(arr, sigma=sigma, mode="nearest")).to(
            x.device, x.dtype
        )
    if mode == "baseline":
        return torch.full_like(x, float(baseline))
    if mode == "mean":
        dims = tuple(range(2, x.ndim))
        return x.mean(dim=dims, keepdim=True).expand_as(x).clone()
    raise XAIError(f"unknown replacement '{mode}'", f"choose one of {', '.join(REPLACEMENTS)}")


def check_input(x: torch.Tensor) -> None:
    """Inputs must be one batch element with channels and a 2D or 3D grid."""
    if not isinstance(x, torch.Tensor) or x.ndim not in (4, 5) or x.shape[0] != 1:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise XAIError(
            f"expected an input tensor of shape (1, C, X, Y[, Z]), got {shape}",
            "pass the preprocessed model input with a batch axis of size 1",
        )


def attribution_order(attribution, spatial_shape: tuple[int, ...], *, absolute: bool = False) -> np.ndarray:
    """Flat spatial indices from the most to the least relevant voxel."""
    a = as_numpy(attribution, np.float64)
    if a.shape != tuple(spatial_shape):
        raise XAIError(
            f"attribution shape {a.shape} differs from the input grid {tuple(spatial_shape)}",
            "give the attribution on the model-input grid",
        )
    if absolute:
        a = np.abs(a)
    return descending_order(a.reshape(1, -1))[0]


def random_orders(n_voxels: int, n: int, seed: int) -> list[np.ndarray]:
    """``n`` random voxel orders from a seeded generator (the random baseline)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n_voxels) for _ in range(n)]


def step_counts(n_voxels: int, steps: int) -> np.ndarray:
    """Voxels replaced after each of ``steps`` equal steps, starting with 0 and ending with all."""
    if steps < 1:
        raise XAIError(f"steps must be at least 1, got {steps}", "use for example 50 steps")
    return np.round(np.linspace(0, n_voxels, steps + 1)).astype(np.int64)
