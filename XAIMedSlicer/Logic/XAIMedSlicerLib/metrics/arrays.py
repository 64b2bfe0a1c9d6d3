"""Small array helpers shared by the metrics: numpy conversion and (batch, voxels) flattening."""

from __future__ import annotations

import numpy as np

from ..errors import XAIError


def as_numpy(a, dtype=None) -> np.ndarray:
    """A numpy copy-free view of a numpy array, torch tensor or Volume (its ``array``)."""
    if hasattr(a, "array") and not isinstance(a, np.ndarray):  # Volume
        a = a.array
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=dtype)


def flatten_pair(attribution, mask, *, batched: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Attribution (float64) and mask (bool) as ``(B, N)`` arrays; both must share one shape.

    Without ``batched`` the inputs are one map (2D image or 3D volume) and ``B`` is 1.
    """
    a = as_numpy(attribution, np.float64)
    m = as_numpy(mask).astype(bool)
    if a.shape != m.shape:
        raise XAIError(
            f"attribution shape {a.shape} and mask shape {m.shape} differ",
            "resample the mask onto the attribution grid first",
        )
    if not batched:
        a, m = a[None], m[None]
    a, m = a.reshape(a.shape[0], -1), m.reshape(m.shape[0], -1)
    if not np.all(np.isfinite(a)):
        raise XAIError("the attribution map contains NaN or Inf values", "recompute the attribution")
    empty = ~m.any(axis=1)
    if empty.any():
        raise XAIError(
            f"the mask is empty for {int(empty.sum())} of {len(m)} maps",
            "give a mask with at least one voxel inside the region",
        )
    return a, m


def top_k_count(n_voxels: int, k_percent: float) -> int:
    """Number of voxels in the top ``k_percent`` % of ``n_voxels`` (at least 1)."""
    if not 0 < k_percent <= 100:
        raise XAIError(f"k_percent must be in (0, 100], got {k_percent}", "give a percentage such as 5")
    return max(1, int(round(n_voxels * k_percent / 100.0)))


def descending_order(a: np.ndarray) -> np.ndarray:
    """Indices sorting each row of ``a`` (B, N) from highest to lowest value (stable for ties)."""
    return np.argsort(-a, axis=-1, kind="stable")
