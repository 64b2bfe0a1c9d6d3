"""Localisation against a mask: pointing game, energy pointing game, relevance rank accuracy, top-k IoU.

Every function takes one map and one mask of the same shape (a 2D image or a 3D volume), or a batch
of them with ``batched=True`` (first axis), and returns one value per map. Definitions follow
Quantus 0.6.0 (``PointingGame``, ``AttributionLocalisation`` with ``positive_attributions=True``,
``RelevanceRankAccuracy``, ``TopKIntersection``) so that the numbers agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrays import as_numpy, descending_order, flatten_pair, top_k_count
from .results import JSONResult


def pointing_game(attribution, mask, *, batched: bool = False) -> np.ndarray:
    """1.0 when a voxel holding the map's maximum lies inside the mask (Zhang et al. 2018), else 0.0."""
    a, m = flatten_pair(attribution, mask, batched=batched)
    peak = a == a.max(axis=1, keepdims=True)
    return _out((peak & m).any(axis=1).astype(float), batched)


def energy_pointing_game(attribution, mask, *, batched: bool = False) -> np.ndarray:
    """Share of the positive attribution energy inside the mask (Wang et al. 2020, Score-CAM).

    NaN where the map has no positive value.
    """
    a, m = flatten_pair(attribution, mask, batched=batched)
    pos = np.clip(a, 0, None)
    total = pos.sum(axis=1)
    inside = (pos * m).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)
    return _out(share, batched)


def relevance_rank_accuracy(attribution, mask, *, batched: bool = False) -> np.ndarray:
    """Share of the K highest-ranked voxels that lie in the mask, K = mask size (Arras et al. 2022)."""
    a, m = flatten_pair(attribution, mask, batched=batched)
    order = descending_order(a)
    sizes = m.sum(axis=1)
    ranked_inside = np.take_along_axis(m, order, axis=1)
    hits = np.array([ranked_inside[b, : sizes[b]].sum() for b in range(len(a))], dtype=float)
    return _out(hits / sizes, batched)


def top_k_region(attribution, k_percent: float) -> np.ndarray:
    """Boolean map of the ``k_percent`` % highest-valued voxels (same shape as ``attribution``)."""
    a = as_numpy(attribution)
    flat = a.reshape(-1).astype(np.float64)
    k = top_k_count(flat.size, k_percent)
    region = np.zeros(flat.size, dtype=bool)
    region[descending_order(flat[None])[0, :k]] = True
    return region.reshape(a.shape)


def top_k_overlap(
    attribution, mask, k_percent: float = 5.0, *, batched: bool = False
) -> dict[str, np.ndarray]:
    """Top-k% region against the mask: ``intersection`` (voxels), ``precision`` (= Quantus TopKIntersection
    with k voxels), ``iou`` and ``dice``."""
    a, m = flatten_pair(attribution, mask, batched=batched)
    k = top_k_count(a.shape[1], k_percent)
    top = np.take_along_axis(m, descending_order(a)[:, :k], axis=1)
    inter = top.sum(axis=1).astype(float)
    sizes = m.sum(axis=1).astype(float)
    result = {
        "intersection": inter,
        "precision": inter / k,
        "iou": inter / (k + sizes - inter),
        "dice": 2 * inter / (k + sizes),
    }
    return {key: _out(v, batched) for key, v in result.items()}


@dataclass
class LocalisationResult(JSONResult):
    """All localisation scores of one map against one mask."""

    pointing_game: bool
    energy_inside: float
    relevance_rank_accuracy: float
    top_k_percent: float
    top_k_iou: float
    top_k_precision: float
    top_k_dice: float
    mask_voxels: int
    used_absolute_values: bool


def evaluate_localisation(
    attribution, mask, *, k_percent: float = 5.0, absolute: bool = False
) -> LocalisationResult:
    """Every localisation score of one map; ``absolute`` ranks by |attribution| (signed maps)."""
    a = np.abs(as_numpy(attribution)) if absolute else as_numpy(attribution)
    overlap = top_k_overlap(a, mask, k_percent)
    return LocalisationResult(
        pointing_game=bool(pointing_game(a, mask) == 1.0),
        energy_inside=float(energy_pointing_game(a, mask)),
        relevance_rank_accuracy=float(relevance_rank_accuracy(a, mask)),
        top_k_percent=float(k_percent),
        top_k_iou=float(overlap["iou"]),
        top_k_precision=float(overlap["precision"]),
        top_k_dice=float(overlap["dice"]),
        mask_voxels=int(as_numpy(mask).astype(bool).sum()),
        used_absolute_values=absolute,
    )


def _out(values: np.ndarray, batched: bool):
    return values if batched else values[0]
