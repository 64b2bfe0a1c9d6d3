"""Shared helpers of the method tests (no tests here): one thread, and the correlation of two maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One thread: on a shared 2-core machine, two OpenMP threads wait on each other at every barrier."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def corr(a, b) -> float:
    """Pearson correlation of two maps."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])
