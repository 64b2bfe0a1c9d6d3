"""Segmentation target regions on the network grid: predicted mask, given mask, box or point."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..errors import XAIError
from ..geometry.axes import kji_to_xyz
from ..geometry.volume import Volume
from .pipeline import map_to_model_grid

REGIONS = ("predicted", "mask", "box", "point")


def grid_ras_points(grid: Volume) -> np.ndarray:
    """RAS coordinates of every voxel centre of ``grid``, shaped (X, Y, Z, 3)."""
    i, j, k = np.meshgrid(*[np.arange(n) for n in grid.size], indexing="ij")
    ijk1 = np.stack([i, j, k, np.ones_like(i)], axis=-1).astype(float)
    return (ijk1 @ grid.ijk_to_ras().T)[..., :3]


def predicted_region(output: torch.Tensor, index: int) -> torch.Tensor:
    """Voxels where class ``index`` wins the argmax, shaped (X, Y, Z)."""
    return output[0].argmax(0) == index


def mask_region(mask: Volume, grid: Volume) -> torch.Tensor:
    """A user mask (on any grid) as a boolean region on the network grid."""
    on_grid = map_to_model_grid(mask.with_array((mask.array > 0).astype(np.uint8)), grid, "nearest")
    region = torch.from_numpy(kji_to_xyz(on_grid.array > 0))
    if not region.any():
        raise XAIError("the target mask does not overlap the network input", "draw the mask inside the scan")
    return region


def box_region(box_ras: tuple, grid: Volume) -> torch.Tensor:
    """Voxels whose centres lie inside an axis-aligned RAS box ``(r0, a0, s0, r1, a1, s1)`` in mm."""
    lo = np.minimum(box_ras[:3], box_ras[3:])
    hi = np.maximum(box_ras[:3], box_ras[3:])
    pts = grid_ras_points(grid)
    region = torch.from_numpy(np.all((pts >= lo) & (pts <= hi), axis=-1))
    if not region.any():
        raise XAIError("the target box holds no voxel of the network input", "draw the box inside the scan")
    return region


def point_region(point_ras, grid: Volume, predicted: torch.Tensor, radius_mm: float = 10.0) -> torch.Tensor:
    """The connected predicted component containing a clicked point, else a sphere around it."""
    pts = grid_ras_points(grid)
    dist = np.linalg.norm(pts - np.asarray(point_ras, dtype=float), axis=-1)
    nearest = np.unravel_index(int(np.argmin(dist)), dist.shape)
    if dist[nearest] > max(grid.spacing):
        raise XAIError("the target point lies outside the network input", "click inside the scan")
    pred = predicted.cpu().numpy()
    if pred[nearest]:
        components, _ = ndimage.label(pred)
        return torch.from_numpy(components == components[nearest])
    return torch.from_numpy(dist <= radius_mm)


def target_region(
    region: str, output: torch.Tensor, index: int, mask, box, point, grid: Volume
) -> torch.Tensor:
    """The boolean region (on the network grid) of a segmentation target, as ``region`` asks."""
    predicted = predicted_region(output, index)
    if region == "mask":
        if mask is None:
            raise XAIError("region 'mask' needs a mask", "pass --mask PATH")
        return mask_region(mask if isinstance(mask, Volume) else _read(mask), grid)
    if region == "box":
        if box is None or len(box) != 6:
            raise XAIError("region 'box' needs six RAS numbers", "pass --box r0 a0 s0 r1 a1 s1 (mm)")
        return box_region(tuple(box), grid)
    if region == "point":
        if point is None or len(point) != 3:
            raise XAIError("region 'point' needs a RAS point", "pass --point r a s (mm)")
        return point_region(point, grid, predicted)
    if not predicted.any():
        raise XAIError(
            f"class {index} is predicted nowhere, so its region is empty",
            "choose a mask, box or point region",
        )
    return predicted


def _read(path) -> Volume:
    from ..io.volumes import read_volume

    return read_volume(path)
