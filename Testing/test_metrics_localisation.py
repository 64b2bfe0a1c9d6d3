"""Localisation metrics against hand-computed values on small 2D and 3D maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.metrics import (
    energy_pointing_game,
    evaluate_localisation,
    pointing_game,
    relevance_rank_accuracy,
    top_k_overlap,
    top_k_region,
)


def small_volume():
    """A 4x3x2 map with values 0..23 (peak 23 at [3, 2, 1]) and a 2x2x2 mask in the corner."""
    a = np.arange(24, dtype=float).reshape(4, 3, 2)
    mask = np.zeros_like(a, dtype=bool)
    mask[2:4, 1:3, :] = True  # values 14..17 and 20..23 -> contains 23
    return a, mask


def test_pointing_game_hand_values():
    a, mask = small_volume()
    assert pointing_game(a, mask) == 1.0
    assert pointing_game(a, ~mask) == 0.0
    # a tie for the maximum counts as a hit when any tied voxel is inside (Quantus semantics)
    b = a.copy()
    b[0, 0, 0] = 23.0
    outside = np.zeros_like(mask)
    outside[0, 0, 0] = True
    assert pointing_game(b, outside) == 1.0


def test_energy_pointing_game_hand_values():
    a, mask = small_volume()
    signed = a - 10.0  # positive part: values 1..13 at original 11..23
    pos = np.clip(signed, 0, None)
    expected = pos[mask].sum() / pos.sum()  # mask holds 14..17, 20..23 -> 4+5+6+7 + 10+11+12+13 = 68 of 91
    assert expected == pytest.approx(68 / 91)
    assert energy_pointing_game(signed, mask) == pytest.approx(expected, rel=1e-12)
    assert np.isnan(energy_pointing_game(-np.abs(signed) - 1, mask))


def test_relevance_rank_accuracy_and_top_k_hand_values():
    a, mask = small_volume()
    # mask has 8 voxels; the top 8 values are 16..23, of which 16, 17, 20..23 are in the mask -> 6/8
    assert relevance_rank_accuracy(a, mask) == pytest.approx(0.75)
    k_percent = 25.0  # 6 of 24 voxels: values 18..23 -> 20..23 inside (4)
    o = top_k_overlap(a, mask, k_percent)
    assert o["intersection"] == 4
    assert o["precision"] == pytest.approx(4 / 6)
    assert o["iou"] == pytest.approx(4 / (6 + 8 - 4))
    assert o["dice"] == pytest.approx(2 * 4 / (6 + 8))
    region = top_k_region(a, k_percent)
    np.testing.assert_array_equal(region, a >= 18)


def test_2d_and_batched_maps():
    rng = np.random.default_rng(5)
    maps = rng.normal(size=(3, 9, 7))
    masks = np.zeros_like(maps, dtype=bool)
    masks[:, 2:5, 1:4] = True
    batched = relevance_rank_accuracy(maps, masks, batched=True)
    singles = [relevance_rank_accuracy(m, s) for m, s in zip(maps, masks, strict=True)]
    np.testing.assert_allclose(batched, singles)
    for m, s, v in zip(maps, masks, batched, strict=True):
        top = np.argsort(-m.ravel())[: s.sum()]
        assert v == pytest.approx(s.ravel()[top].mean())


def test_evaluate_localisation_serialises_and_uses_absolute_values():
    a, mask = small_volume()
    signed = -a  # most negative values sit in the mask
    res = evaluate_localisation(signed, mask, k_percent=25.0, absolute=True)
    assert res.pointing_game is True and res.used_absolute_values
    assert res.mask_voxels == 8
    assert res.top_k_iou == pytest.approx(4 / 10)
    back = json.loads(res.to_json())
    assert back["relevance_rank_accuracy"] == pytest.approx(0.75)
    assert evaluate_localisation(signed, mask, k_percent=25.0).pointing_game is False


def test_bad_input_gives_one_line_errors():
    a, mask = small_volume()
    with pytest.raises(XAIError, match="mask is empty"):
        pointing_game(a, np.zeros_like(mask))
    with pytest.raises(XAIError, match="differ"):
        pointing_game(a, mask[:3])
    bad = a.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(XAIError, match="NaN"):
        energy_pointing_game(bad, mask)
    with pytest.raises(XAIError, match="k_percent"):
        top_k_overlap(a, mask, 0)
