"""Localisation as chest X-ray papers report it: hit rate (pointing game) and mIoU with bootstrap CIs.

Conventions follow CheXlocalize (Saporta et al. 2022, rajpurkarlab/cheXlocalize ``eval.py`` and
``heatmap_to_segmentation.py``):

* hit: 1 when the map's maximum (``argmax``, the first in C order on ties) lies inside the ground-truth
  region, else 0; NaN when the region is empty (the case is left out of the rate);
* segmentation of a map: min-max normalised to [0, 1], then ``> threshold``; without a threshold,
  Otsu's threshold of the 8-bit map (``uint8(255 * map)``); the threshold can be tuned on validation
  cases over 0.2, 0.3, ..., 0.7 to maximise mIoU (``tune_threshold``);
* IoU of the segmentation and the region; with ``true_positive_only`` (CheXlocalize's default) NaN when
  either is empty, otherwise NaN only for an empty region; mIoU is the mean over non-NaN cases;
* CIs: ``replicates`` bootstrap resamples of the cases (seeded), each replicate's NaN-skipping mean, and
  the sorted replicates at ``int(alpha/2 * n) - 1`` and ``int((1 - alpha/2) * n) - 1`` (percentile).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.filters import threshold_otsu

from ..errors import XAIError
from .arrays import as_numpy
from .results import JSONResult

TUNING_THRESHOLDS = tuple(np.round(np.arange(0.2, 0.8, 0.1), 1))


def _pair(attribution, mask) -> tuple[np.ndarray, np.ndarray]:
    a = as_numpy(attribution, np.float64)
    m = as_numpy(mask).astype(bool)
    if a.shape != m.shape:
        raise XAIError(
            f"map shape {a.shape} and region shape {m.shape} differ", "resample the region onto the map grid"
        )
    if not np.all(np.isfinite(a)):
        raise XAIError("the map contains NaN or Inf values", "recompute the attribution")
    return a, m


def hit(attribution, mask) -> float:
    """1.0 when the map's (first) maximum lies inside ``mask``, 0.0 when not, NaN for an empty mask."""
    a, m = _pair(attribution, mask)
    if not m.any():
        return float("nan")
    return float(m.reshape(-1)[int(np.argmax(a.reshape(-1)))])


def minmax(attribution) -> np.ndarray:
    """The map scaled to [0, 1] by its minimum and maximum (a constant map gives zeros)."""
    a = as_numpy(attribution, np.float64)
    low, high = float(a.min()), float(a.max())
    return (a - low) / (high - low) if high > low else np.zeros_like(a)


def segment(attribution, threshold: float | None = None) -> np.ndarray:
    """Binary region of a map: min-max normalised ``> threshold``, or Otsu on the 8-bit map (None)."""
    norm = minmax(attribution)
    if threshold is None:
        grey = np.uint8(255 * norm)
        if grey.min() == grey.max():
            return np.zeros(norm.shape, bool)
        return grey > threshold_otsu(grey)
    if not 0.0 <= threshold < 1.0:
        raise XAIError(
            f"threshold must be in [0, 1), got {threshold}", "give for example 0.5, or none for Otsu"
        )
    return norm > threshold


def iou(predicted, truth, *, true_positive_only: bool = True) -> float:
    """Intersection over union of two regions (NaN rules as CheXlocalize, see the module docstring)."""
    p, t = as_numpy(predicted).astype(bool), as_numpy(truth).astype(bool)
    if p.shape != t.shape:
        raise XAIError(f"region shapes {p.shape} and {t.shape} differ", "give regions on one grid")
    if not t.any() or (true_positive_only and not p.any()):
        return float("nan")
    return float(np.logical_and(p, t).sum() / np.logical_or(p, t).sum())


def ious(maps, masks, threshold: float | None = None, *, true_positive_only: bool = True) -> np.ndarray:
    """IoU of each map's segmentation against its region."""
    return np.array(
        [
            iou(segment(a, threshold), m, true_positive_only=true_positive_only)
            for a, m in zip(maps, masks, strict=True)
        ]
    )


def tune_threshold(maps, masks, thresholds=TUNING_THRESHOLDS) -> float:
    """The threshold giving the highest mIoU on these (validation) cases; the lowest one on ties."""
    scores = [np.nanmean(ious(maps, masks, t)) if len(maps) else np.nan for t in thresholds]
    scores = np.where(np.isnan(scores), -np.inf, scores)
    return float(thresholds[int(np.argmax(scores))])


@dataclass
class BootstrapCI(JSONResult):
    """A mean over cases and its percentile bootstrap interval."""

    mean: float  # NaN-skipping mean over all cases
    lower: float
    upper: float
    bootstrap_mean: float
    n: int  # cases with a value (not NaN)
    replicates: int
    confidence: float
    seed: int


def bootstrap_ci(values, *, replicates: int = 1000, confidence: float = 0.95, seed: int = 0) -> BootstrapCI:
    """Percentile bootstrap CI of the NaN-skipping mean of ``values`` (cases resampled with replacement)."""
    v = np.asarray(values, np.float64).reshape(-1)
    if replicates < 1 or not 0 < confidence < 1:
        raise XAIError("need at least one replicate and a confidence in (0, 1)", "use 1000 and 0.95")
    n_valid = int(np.isfinite(v).sum())
    if n_valid == 0:
        nan = float("nan")
        return BootstrapCI(nan, nan, nan, nan, 0, replicates, confidence, seed)
    rng = np.random.default_rng(seed)
    samples = v[rng.integers(0, v.size, size=(replicates, v.size))]
    valid = np.isfinite(samples)
    counts = valid.sum(axis=1)
    sums = np.where(valid, samples, 0.0).sum(axis=1)
    means = np.sort(sums[counts > 0] / counts[counts > 0])
    alpha = round(1.0 - confidence, 10)  # 1 - 0.9 is 0.0999...: keep the indices CheXlocalize takes
    lower = means[max(int(alpha / 2 * len(means)) - 1, 0)]
    upper = means[max(int((1 - alpha / 2) * len(means)) - 1, 0)]
    return BootstrapCI(
        mean=float(np.nanmean(v)),
        lower=float(lower),
        upper=float(upper),
        bootstrap_mean=float(means.mean()),
        n=n_valid,
        replicates=replicates,
        confidence=confidence,
        seed=seed,
    )


@dataclass
class PointingResult(JSONResult):
    """Hit rate and mIoU of one method over a set of cases, with the per-case values."""

    hit_rate: BootstrapCI
    miou: BootstrapCI
    threshold: float | None  # None: Otsu per map
    hits: list[float] = field(default_factory=list)
    ious: list[float] = field(default_factory=list)


def evaluate_pointing(
    maps,
    masks,
    *,
    threshold: float | None = None,
    true_positive_only: bool = True,
    replicates: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PointingResult:
    """Hit rate and mIoU (with bootstrap CIs) of ``maps`` against their ground-truth ``masks``."""
    maps, masks = list(maps), list(masks)
    if len(maps) != len(masks) or not maps:
        raise XAIError(f"got {len(maps)} maps and {len(masks)} regions", "give one region per map")
    hits = np.array([hit(a, m) for a, m in zip(maps, masks, strict=True)])
    overlaps = ious(maps, masks, threshold, true_positive_only=true_positive_only)
    ci = {"replicates": replicates, "confidence": confidence, "seed": seed}
    return PointingResult(
        hit_rate=bootstrap_ci(hits, **ci),
        miou=bootstrap_ci(overlaps, **ci),
        threshold=threshold,
        hits=hits.tolist(),
        ious=overlaps.tolist(),
    )
