"""Scan -> network input with MONAI transforms on a MetaTensor; network grid -> scan grid.

The MetaTensor carries the IJK-to-RAS affine through MONAI's Orientation, Spacing and pad/crop, so
the network-input grid is known exactly. Maps computed on that grid are resampled back onto the
scan's grid in physical space, which inverts orientation, spacing and crop in one step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..geometry.axes import kji_to_xyz, xyz_to_kji
from ..geometry.resample import resample_to
from ..geometry.volume import Volume
from ..model.card import Preprocessing


@dataclass
class ModelInput:
    """The network input and the grid it lives on."""

    tensor: torch.Tensor  # (1, 1, X, Y, Z), float32
    grid: Volume  # the network-input grid (array = the preprocessed intensities, [k, j, i])
    transforms: list[str]


def _intensity_transform(spec: dict):
    from monai.transforms import NormalizeIntensity, ScaleIntensityRange, ScaleIntensityRangePercentiles

    kind = spec.get("type", "zscore")
    if kind == "percentile":
        return ScaleIntensityRangePercentiles(
            lower=float(spec.get("lower", 0.0)),
            upper=float(spec.get("upper", 99.9)),
            b_min=float(spec.get("b_min", 0.0)),
            b_max=float(spec.get("b_max", 1.0)),
            clip=bool(spec.get("clip", True)),
        )
    if kind == "window":
        return ScaleIntensityRange(
            a_min=float(spec["min"]),
            a_max=float(spec["max"]),
            b_min=float(spec.get("b_min", 0.0)),
            b_max=float(spec.get("b_max", 1.0)),
            clip=bool(spec.get("clip", True)),
        )
    if kind == "zscore":
        return NormalizeIntensity(nonzero=bool(spec.get("nonzero", False)))
    return None


def spatial_transforms(pre: Preprocessing, mode: str = "bilinear") -> list:
    """MONAI's Orientation, Spacing and centre pad-or-crop, as the card asks."""
    from monai.transforms import Orientation, ResizeWithPadOrCrop, Spacing

    out = []
    if pre.orientation:
        out.append(Orientation(axcodes=pre.orientation, labels=None))
    if pre.spacing:
        out.append(
            Spacing(pixdim=pre.spacing, mode=mode, padding_mode="border" if mode != "nearest" else "zeros")
        )
    if pre.spatial_size:
        out.append(ResizeWithPadOrCrop(spatial_size=pre.spatial_size))
    return out


def prepare_input(
    image: Volume,
    pre: Preprocessing,
    device: torch.device | str = "cpu",
    roi: tuple[tuple[float, float, float], tuple[int, int, int]] | None = None,
) -> ModelInput:
    """Apply the card's preprocessing to ``image`` and return the tensor with its grid.

    ``roi = (centre_ras_mm, size_voxels)`` crops the preprocessed volume around a point, after
    intensity scaling (so scaling sees the whole scan), for networks too costly on the full scan.
    """
    from monai.data import MetaTensor
    from monai.transforms import SpatialCrop

    data = kji_to_xyz(image.array.astype(np.float32))[None]
    tensor = MetaTensor(
        torch.from_numpy(data), affine=torch.as_tensor(image.ijk_to_ras(), dtype=torch.float64)
    )
    steps = spatial_transforms(pre)
    intensity = _intensity_transform(pre.intensity)
    # intensity after resampling, before the final pad/crop (padding value stays 0 after scaling)
    if intensity is not None:
        steps.insert(len(steps) - (1 if pre.spatial_size else 0), intensity)
    for transform in steps:
        tensor = transform(tensor)
    if roi is not None:
        centre_ras, size = roi
        inverse = np.linalg.inv(np.asarray(tensor.affine, dtype=float))
        centre = np.rint(inverse @ np.append(np.asarray(centre_ras, dtype=float), 1.0))[:3].astype(int)
        crop = SpatialCrop(roi_center=centre.tolist(), roi_size=[int(s) for s in size])
        tensor = crop(tensor)
        steps.append(crop)
        if min(tensor.shape[1:]) == 0:
            from ..errors import XAIError

            raise XAIError("the region of interest lies outside the scan", "centre the ROI inside the image")
    affine = np.asarray(tensor.affine, dtype=float)
    arr = np.asarray(tensor.as_tensor()[0], dtype=np.float32)
    grid = Volume.from_ras_affine(xyz_to_kji(arr), affine)
    x = tensor.as_tensor()[None].float().to(device)
    return ModelInput(x, grid, [type(t).__name__ for t in steps])


def map_to_model_grid(volume: Volume, grid: Volume, interpolation: str = "nearest") -> Volume:
    """Resample a volume (e.g. a region mask) from the scan's grid onto the network grid."""
    return resample_to(volume, grid, interpolation, default=0)


def to_input_grid(values_xyz: torch.Tensor | np.ndarray, grid: Volume, image: Volume) -> Volume:
    """A map on the network grid (indexed x, y, z) resampled onto the scan's grid (linear)."""
    model_map = grid.with_array(xyz_to_kji(values_xyz).astype(np.float32))
    return resample_to(model_map, image, "linear", default=0.0)
