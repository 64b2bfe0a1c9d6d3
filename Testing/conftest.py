"""Shared fixtures: the real data beside the repository, and small built volumes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("XAIMED_SHARED_DATA", REPO.parent / "shared" / "data"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def shared_data():
    """Return a function mapping a path relative to ../shared/data to an existing Path, or fail."""

    def get(relative: str) -> Path:
        path = SHARED_DATA / relative
        if not path.exists():
            pytest.fail(
                f"required test data missing: {path}. The tests read the real data in ../shared/data "
                "(or set XAIMED_SHARED_DATA to its location)."
            )
        return path

    return get


@pytest.fixture
def oblique_volume():
    """A built oblique, anisotropic volume in LPS with a bright blob at a known voxel."""
    from XAIMedSlicerLib.geometry.volume import Volume

    rng = np.random.default_rng(0)
    theta = np.deg2rad(20.0)
    rot_z = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    phi = np.deg2rad(-12.0)
    rot_x = np.array([[1, 0, 0], [0, np.cos(phi), -np.sin(phi)], [0, np.sin(phi), np.cos(phi)]])
    direction = rot_z @ rot_x
    arr = rng.normal(0, 0.05, size=(18, 30, 26)).astype(np.float32)  # [k, j, i]
    arr[8:11, 14:18, 10:14] += 2.0
    return Volume(arr, spacing=(1.1, 0.9, 2.5), origin=(12.5, -30.25, 40.0), direction=direction)
