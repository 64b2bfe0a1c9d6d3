"""The one check of occlusion's fast runners: their scores equal full forward passes on chosen boxes."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .boxes import Box


def agrees_with_full_passes(
    fast: Callable[[list[int]], torch.Tensor],
    model,
    x: torch.Tensor,
    boxes: list[Box],
    picks: list[int],
    occlude,
    score,
    rtol: float = 1e-4,
) -> bool:
    """``fast(picks)`` (one score per picked box) against full passes; False where the runner fails."""
    with torch.inference_mode():
        try:
            got = fast(picks)
        except Exception:  # noqa: BLE001 - a shape the fast path cannot handle: the caller falls back
            return False
        for b, i in enumerate(picks):
            full = x.clone()
            occlude(full, boxes[i], (0,) * (x.ndim - 2))
            if not scores_agree(got[b : b + 1], score(model(full)), rtol):
                return False
    return True


def scores_agree(got: torch.Tensor, ref: torch.Tensor, rtol: float) -> bool:
    """A fast path's scores equal full passes' up to float rounding (relative to the score's size)."""
    return torch.allclose(got, ref, rtol=rtol, atol=rtol * (1e-3 + float(ref.abs().max())))
