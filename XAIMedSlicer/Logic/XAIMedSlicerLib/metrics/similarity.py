"""Similarity of two attribution maps: Spearman rank correlation and SSIM (2D or 3D)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats

from ..errors import XAIError
from .arrays import as_numpy


def normalise_map(a, *, absolute: bool = True) -> np.ndarray:
    """Map to [0, 1]: |a| / max|a| when ``absolute``, else min-max scaling (constant maps give zeros)."""
    a = as_numpy(a, np.float64)
    if absolute:
        a = np.abs(a)
        top = a.max()
        return a / top if top > 0 else np.zeros_like(a)
    low, high = a.min(), a.max()
    return (a - low) / (high - low) if high > low else np.zeros_like(a)


def spearman(a, b) -> float:
    """Spearman rank correlation of two maps (average ranks for ties); NaN when one is constant."""
    x, y = _pair(a, b)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def ssim(a, b, *, data_range: float = 1.0, win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean structural similarity (Wang et al. 2004) of two 2D or 3D maps.

    Same definition as ``skimage.metrics.structural_similarity`` with its defaults: a uniform
    ``win_size`` window, sample covariance, and the mean over voxels at least half a window from the border.
    """
    x, y = as_numpy(a, np.float64), as_numpy(b, np.float64)
    if x.shape != y.shape:
        raise XAIError(f"maps of different shapes {x.shape} and {y.shape}", "compare maps on one grid")
    if min(x.shape) < win_size:
        raise XAIError(
            f"map of shape {x.shape} is smaller than the SSIM window {win_size}", "use a smaller win_size"
        )
    n = win_size**x.ndim
    cov_norm = n / (n - 1.0)
    mean = lambda v: ndimage.uniform_filter(v, size=win_size)  # noqa: E731
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    inner = tuple(slice(pad, dim - pad) for dim in s.shape)
    return float(s[inner].mean())


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_numpy(a, np.float64), as_numpy(b, np.float64)
    if x.shape != y.shape:
        raise XAIError(f"maps of different shapes {x.shape} and {y.shape}", "compare maps on one grid")
    return x.reshape(-1), y.reshape(-1)
