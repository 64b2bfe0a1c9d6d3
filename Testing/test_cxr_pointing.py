"""Hit rate and mIoU with bootstrap CIs (metrics/pointing.py) against direct computations."""

from __future__ import annotations

import numpy as np
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.metrics import pointing


def _cases(n=24, shape=(40, 36), seed=3):
    """Smooth random maps and blob regions; some maps peak inside their region, some do not."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    maps, masks = [], []
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    for _ in range(n):
        a = ndimage.gaussian_filter(rng.normal(size=shape), 3) + rng.normal(scale=1e-3, size=shape)
        r, c, radius = rng.integers(8, shape[0] - 8), rng.integers(8, shape[1] - 8), rng.integers(3, 8)
        masks.append((rows - r) ** 2 + (cols - c) ** 2 <= radius**2)
        maps.append(a + masks[-1] * rng.uniform(0, 0.4))
    return maps, masks


def _direct_otsu(grey: np.ndarray) -> int:
    """Otsu's threshold of an 8-bit image by exhaustive search: class 0 is grey <= t."""
    best, best_t = -1.0, 0
    values = grey.ravel().astype(np.float64)
    for t in range(int(values.min()), int(values.max())):
        low, high = values[values <= t], values[values > t]
        if low.size == 0 or high.size == 0:
            continue
        w0, w1 = low.size / values.size, high.size / values.size
        between = w0 * w1 * (low.mean() - high.mean()) ** 2
        if between > best + 1e-12:
            best, best_t = between, t
    return best_t


def test_hit_is_the_region_value_at_the_argmax():
    maps, masks = _cases()
    for a, m in zip(maps, masks, strict=True):
        x, y = np.unravel_index(np.argmax(a, axis=None), a.shape)
        assert pointing.hit(a, m) == float(m[x][y])
        assert pointing.hit(a[None], m[None]) == float(m[x][y])  # one-slice volume layout
    hits = [pointing.hit(a, m) for a, m in zip(maps, masks, strict=True)]
    assert 0 < sum(hits) < len(hits)  # the cases are mixed, so the rate is informative
    assert np.isnan(pointing.hit(maps[0], np.zeros_like(masks[0])))


def test_segmentation_and_iou_equal_a_direct_computation():
    maps, masks = _cases()
    for a, m in zip(maps, masks, strict=True):
        norm = (a - a.min()) / (a.max() - a.min())
        for t in (0.2, 0.5, 0.7):
            pred = norm > t
            assert np.array_equal(pointing.segment(a, t), pred)
            p, g = set(zip(*np.nonzero(pred), strict=True)), set(zip(*np.nonzero(m), strict=True))
            expected = len(p & g) / len(p | g)
            assert pointing.iou(pred, m) == pytest.approx(expected, abs=1e-12)
        grey = np.uint8(255 * norm)
        assert np.array_equal(pointing.segment(a), grey > _direct_otsu(grey))
    empty = np.zeros_like(masks[0])
    assert np.isnan(pointing.iou(empty, masks[0]))  # true positives only: an empty prediction is left out
    assert pointing.iou(empty, masks[0], true_positive_only=False) == 0.0
    assert np.isnan(pointing.iou(masks[0], empty, true_positive_only=False))


def test_bootstrap_ci_equals_a_direct_resampling():
    rng = np.random.default_rng(11)
    values = rng.uniform(size=37)
    values[[3, 8]] = np.nan  # cases without a value are skipped inside each replicate
    ci = pointing.bootstrap_ci(values, replicates=400, confidence=0.9, seed=5)
    draw = np.random.default_rng(5)
    means = []
    for _ in range(400):
        sample = values[draw.integers(0, values.size, size=values.size)]
        means.append(np.nanmean(sample))
    means = sorted(means)
    assert ci.lower == pytest.approx(means[int(0.05 * 400) - 1], abs=1e-12)
    assert ci.upper == pytest.approx(means[int(0.95 * 400) - 1], abs=1e-12)
    assert ci.bootstrap_mean == pytest.approx(np.mean(means), abs=1e-12)
    assert ci.mean == pytest.approx(np.nanmean(values), abs=1e-12)
    assert ci.n == 35 and ci.lower < ci.mean < ci.upper
    again = pointing.bootstrap_ci(values, replicates=400, confidence=0.9, seed=5)
    assert again.to_dict() == ci.to_dict()  # seeded
    constant = pointing.bootstrap_ci(np.ones(10))
    assert (constant.lower, constant.mean, constant.upper) == (1.0, 1.0, 1.0)


def test_evaluate_pointing_and_threshold_tuning():
    maps, masks = _cases()
    result = pointing.evaluate_pointing(maps, masks, threshold=0.5, replicates=200, seed=1)
    direct_hits = [float(m.ravel()[np.argmax(a.ravel())]) for a, m in zip(maps, masks, strict=True)]
    assert result.hit_rate.mean == pytest.approx(np.mean(direct_hits), abs=1e-12)
    direct_ious = []
    for a, m in zip(maps, masks, strict=True):
        pred = (a - a.min()) / (a.max() - a.min()) > 0.5
        direct_ious.append(np.logical_and(pred, m).sum() / np.logical_or(pred, m).sum())
    assert result.miou.mean == pytest.approx(np.mean(direct_ious), abs=1e-12)
    assert result.hit_rate.lower <= result.hit_rate.mean <= result.hit_rate.upper
    best = pointing.tune_threshold(maps, masks)
    scores = {t: np.nanmean(pointing.ious(maps, masks, t)) for t in pointing.TUNING_THRESHOLDS}
    assert scores[best] == max(scores.values())
    assert result.to_dict()["miou"]["n"] == len(maps)


def test_bad_input_is_one_clear_error():
    maps, masks = _cases(n=2)
    with pytest.raises(XAIError, match="differ"):
        pointing.hit(maps[0], masks[0][:-1])
    with pytest.raises(XAIError, match="one region per map"):
        pointing.evaluate_pointing(maps, masks[:1])
    with pytest.raises(XAIError, match="threshold"):
        pointing.segment(maps[0], 1.5)
