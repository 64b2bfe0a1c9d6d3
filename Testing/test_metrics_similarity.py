"""Spearman and SSIM against SciPy and scikit-image on 2D and 3D maps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from skimage.metrics import structural_similarity

from XAIMedSlicerLib.metrics import normalise_map, spearman, ssim


@pytest.mark.parametrize("shape", [(20, 17), (12, 14, 10)])
def test_ssim_matches_skimage(shape):
    rng = np.random.default_rng(2)
    a = rng.random(shape)
    b = np.clip(a + rng.normal(0, 0.2, shape), 0, 1)
    ours = ssim(a, b, data_range=1.0)
    ref = structural_similarity(a, b, data_range=1.0)
    assert ours == pytest.approx(ref, abs=1e-10)
    assert ssim(a, a) == pytest.approx(1.0)


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, size=(6, 7, 5)).astype(float)  # many ties
    b = a + rng.normal(0, 1.0, a.shape)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)
    assert np.isnan(spearman(np.ones(5), np.arange(5)))


def test_normalise_map():
    a = np.array([-4.0, 2.0, 1.0])
    np.testing.assert_allclose(normalise_map(a), [1.0, 0.5, 0.25])
    np.testing.assert_allclose(normalise_map(a, absolute=False), [0.0, 1.0, 5 / 6])
