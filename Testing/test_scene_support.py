"""Shared builders for the scene tests (no tests here): small explanations on built grids."""

from __future__ import annotations

import numpy as np

from XAIMedSlicerLib.anatomy.stats import structure_statistics
from XAIMedSlicerLib.explanation import Explanation
from XAIMedSlicerLib.geometry.volume import Volume

NAMES = {2: "liver", 5: "Left-Thalamus", 9: "kidney_right"}


def labels_for(volume: Volume) -> np.ndarray:
    """Three box-shaped structures filling parts of the grid [k, j, i]."""
    nk, nj, ni = volume.array.shape
    labels = np.zeros((nk, nj, ni), np.int16)
    labels[nk // 4 : 3 * nk // 4, nj // 5 : 4 * nj // 5, ni // 8 : ni // 2] = 2
    labels[nk // 4 : 3 * nk // 4, nj // 5 : 4 * nj // 5, ni // 2 : 7 * ni // 8] = 5
    labels[: nk // 4, : nj // 3, : ni // 3] = 9
    return labels


def plateau_attribution(volume: Volume, signed: bool = False) -> np.ndarray:
    """A map with a flat maximum (value 1) block inside structure 5 and a smooth ramp elsewhere."""
    nk, nj, ni = volume.array.shape
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    ramp = 0.3 * (i / max(ni - 1, 1))
    if signed:
        ramp = ramp - 0.6 * (j / max(nj - 1, 1))
    att = ramp.astype(np.float32)
    att[nk // 2 - 2 : nk // 2 + 2, 2 * nj // 5 : 3 * nj // 5, 5 * ni // 8 : 6 * ni // 8] = 1.0
    return att


def make_explanation(volume: Volume, *, signed: bool = False, method: str = "gradcam") -> Explanation:
    """An Explanation on ``volume``'s grid with labels, statistics and a provenance record."""
    attribution = volume.with_array(plateau_attribution(volume, signed))
    labels = volume.with_array(labels_for(volume))
    rows = structure_statistics(attribution, labels, NAMES)
    provenance = {
        "created": "2026-01-01T00:00:00+00:00",
        "model": {"name": "tiny", "path": "/models/tiny.json", "sha256": "ab" * 32},
        "method": {"name": method, "params": {"layer": "conv2", "steps": 8}},
        "target": {"kind": "class", "index": 1},
        "seed": 7,
        "device": {"type": "cpu"},
    }
    return Explanation(
        image=volume,
        attribution=attribution,
        signed=signed,
        method=method,
        prediction={"task": "classification", "predicted_class": 1},
        target={"kind": "class", "index": 1},
        labels=labels,
        label_names=dict(NAMES),
        structures=rows,
        provenance=provenance,
    )


def constant_scan(shape=(16, 24, 32), spacing=(1.0, 1.0, 2.0), value=100.0, direction=None) -> Volume:
    """A uniform scan (so that blended pixel colours are predictable)."""
    return Volume(
        np.full(shape, value, np.float32),
        spacing,
        (10.0, -20.0, 30.0),
        np.eye(3) if direction is None else direction,
    )
