"""Axis order lives in one place: a voxel at index (i, j, k) is at tensor[..., i, j, k] and back."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from XAIMedSlicerLib.geometry.axes import kji_to_xyz, volume_tensor, xyz_to_kji
from XAIMedSlicerLib.model.card import Preprocessing
from XAIMedSlicerLib.preprocess import prepare_input, to_input_grid

PACKAGE = Path(__file__).resolve().parents[1] / "XAIMedSlicer" / "Logic" / "XAIMedSlicerLib"


def test_index_order_round_trip():
    rng = np.random.default_rng(0)
    kji = rng.normal(size=(5, 6, 7)).astype(np.float32)  # k=5, j=6, i=7
    xyz = kji_to_xyz(kji)
    assert xyz.shape == (7, 6, 5) and xyz.flags["C_CONTIGUOUS"]
    assert xyz[3, 2, 1] == kji[1, 2, 3]
    np.testing.assert_array_equal(xyz_to_kji(xyz), kji)
    np.testing.assert_array_equal(xyz_to_kji(torch.from_numpy(xyz)), kji)
    t = volume_tensor(kji)
    assert tuple(t.shape) == (1, 1, 7, 6, 5) and t[0, 0, 3, 2, 1] == kji[1, 2, 3]
    with pytest.raises(ValueError, match="3D"):
        kji_to_xyz(kji[None])


def test_a_planted_voxel_keeps_its_ras_position_through_the_network_grid(oblique_volume):
    """A bright voxel at a known RAS point sits at the same RAS point on the network grid and back."""
    array = np.zeros(oblique_volume.array.shape, np.float32)
    k, j, i = 7, 11, 9
    array[k, j, i] = 1.0
    image = oblique_volume.with_array(array)
    ras = image.index_to_ras((i, j, k))
    model_input = prepare_input(image, Preprocessing(orientation="RAS"), device="cpu")
    x = model_input.tensor[0, 0].numpy()
    peak_xyz = np.unravel_index(int(np.argmax(x)), x.shape)
    np.testing.assert_allclose(model_input.grid.index_to_ras(peak_xyz), ras, atol=1e-4)
    back = to_input_grid(model_input.tensor[0, 0], model_input.grid, image)
    assert np.unravel_index(int(np.argmax(back.array)), back.array.shape) == (k, j, i)


def test_no_other_module_transposes_volume_axes():
    """Only geometry/axes.py swaps [k, j, i] and (X, Y, Z); a new hand-written transpose fails here."""
    pattern = re.compile(r"transpose\(\s*2,\s*1,\s*0\s*\)|permute\(\s*2,\s*1,\s*0\s*\)")
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name != "axes.py" and pattern.search(p.read_text())
    ]
    assert offenders == [], f"use geometry.axes instead of a transpose in: {offenders}"
