"""Conversion between Volume and SimpleITK images (both in LPS, so no flip happens here)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .volume import Volume


def to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image with the volume's voxels and geometry."""
    arr = volume.array
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    image = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(volume.direction.ravel()))
    return image


def from_sitk(image: sitk.Image) -> Volume:
    """A Volume from a 3D scalar SimpleITK image."""
    direction = np.array(image.GetDirection(), dtype=float).reshape(image.GetDimension(), -1)
    return Volume(sitk.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(), direction)
