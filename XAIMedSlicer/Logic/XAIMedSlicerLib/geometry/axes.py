"""Axis order: the one place where a Volume's ``[k, j, i]`` array meets a network's ``(X, Y, Z)`` order.

A :class:`~.volume.Volume` stores its array as ITK/SimpleITK and VTK do, slowest axis first:
``array[k, j, i]``. MONAI and the networks index ``tensor[..., i, j, k]`` (channel first, then x, y, z).
Every conversion between the two goes through these functions, as LPS/RAS goes through ``frames``.
"""

from __future__ import annotations

import numpy as np
import torch


def kji_to_xyz(array: np.ndarray) -> np.ndarray:
    """A ``[k, j, i]`` array (a Volume's) as a contiguous ``[i, j, k]`` array (a network's)."""
    a = np.asarray(array)
    if a.ndim != 3:
        raise ValueError(f"expected a 3D [k, j, i] array, got shape {a.shape}")
    return np.ascontiguousarray(a.transpose(2, 1, 0))


def xyz_to_kji(array: np.ndarray | torch.Tensor) -> np.ndarray:
    """A network's ``[i, j, k]`` array or tensor as a contiguous ``[k, j, i]`` array (a Volume's)."""
    a = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if a.ndim != 3:
        raise ValueError(f"expected a 3D [i, j, k] array, got shape {a.shape}")
    return np.ascontiguousarray(a.transpose(2, 1, 0))


def volume_tensor(array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A Volume's ``[k, j, i]`` array as a network input ``(1, 1, X, Y, Z)``."""
    return torch.from_numpy(kji_to_xyz(array)).to(dtype)[None, None]
