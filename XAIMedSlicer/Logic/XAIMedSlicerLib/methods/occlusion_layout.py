"""Where occlusion boxes go: Captum's and MONAI's window layouts, and subsampled positions.

``captum_axes`` and ``monai_axes`` give the windows along each axis exactly as Captum's ``Occlusion``
and MONAI's ``OcclusionSensitivity`` place them; ``boxes_of`` makes the boxes in their order.
``kept_indices`` and ``interpolate_scores`` serve ``subsample=k``: score every k-th position along
each axis and interpolate the others multilinearly in the position index.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from monai.inferers.utils import _get_scan_interval

from ..errors import XAIError
from .boxes import Box


def captum_axes(shape: tuple[int, ...], window: tuple[int, ...], stride: tuple[int, ...]) -> list[list]:
    """Captum's windows per axis: starts at multiples of ``stride``, ``ceil((n - w) / s) + 1`` of them."""
    axes = []
    for n, w, s in zip(shape, window, stride, strict=True):
        if w > n:
            raise XAIError(f"occlusion window {w} is larger than the volume ({n})", "use a smaller window")
        count = -(-(n - w) // s) + 1
        axes.append([(i * s, min(n, i * s + w)) for i in range(count)])
    return axes


def monai_axes(shape: tuple[int, ...], window: tuple[int, ...], overlap: float) -> list[list]:
    """MONAI's windows per axis (``sliding_window_inference`` / ``dense_patch_slices`` positions)."""
    if any(w > n for w, n in zip(window, shape, strict=True)):
        raise XAIError(f"occlusion window {window} is larger than the volume {shape}", "use a smaller window")
    interval = _get_scan_interval(shape, window, len(shape), (overlap,) * len(shape))
    axes = []
    for n, w, step in zip(shape, window, interval, strict=True):
        count = next((d for d in range(-(-n // step)) if d * step + w >= n), 0) + 1
        starts = [i * step - max(i * step + w - n, 0) for i in range(count)]
        axes.append([(a, a + w) for a in starts])
    return axes


def boxes_of(axes: list[list]) -> list[Box]:
    """All boxes of per-axis windows, first axis slowest (the order of Captum and MONAI)."""
    return [tuple(b) for b in itertools.product(*axes)]


def kept_indices(count: int, subsample: int) -> list[int]:
    """Every ``subsample``-th window position along an axis, and the last one."""
    return sorted(set(range(0, count, subsample)) | {count - 1})


def interpolate_scores(kept: torch.Tensor, keep: list[list[int]], counts: list[int]) -> torch.Tensor:
    """Scores of all window positions, multilinear in the position index between the kept ones."""
    grid = kept.numpy()
    for d, (k, n) in enumerate(zip(keep, counts, strict=True)):
        grid = np.apply_along_axis(lambda v, k=k, n=n: np.interp(np.arange(n), k, v), d, grid)
    return torch.from_numpy(np.ascontiguousarray(grid)).reshape(-1)
