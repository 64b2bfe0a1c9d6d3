"""Read NIfTI, NRRD, MetaImage and DICOM series into Volumes; write them back exactly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import XAIError
from ..geometry.sitk_bridge import from_sitk, to_sitk
from ..geometry.volume import Volume
from .atomic import atomic_path
from .radiograph import is_radiograph_path, read_radiograph

WRITABLE_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")


def read_volume(path: str | os.PathLike, *, allow_nonfinite: bool = False) -> Volume:
    """Read a 3D scalar volume from a file or a DICOM series folder, keeping its geometry."""
    path = Path(path)
    if not path.exists():
        raise XAIError(f"file not found: {path}", "check the path")
    if is_radiograph_path(path):  # PNG/JPEG/DICOM CR-DX: a one-slice volume (io/radiograph.py)
        return read_radiograph(path)[0]
    try:
        image = _read_dicom_series(path) if path.is_dir() else sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown reader error"
        raise XAIError(
            f"cannot read {path} as an image ({first[:160]})", "give a NIfTI, NRRD or DICOM series"
        ) from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise XAIError(
            f"{path.name} has {image.GetNumberOfComponentsPerPixel()} components per voxel",
            "give a scalar (grey-level) volume",
        )
    dim = image.GetDimension()
    if dim == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
        dim = 3
    if dim != 3:
        raise XAIError(
            f"{path.name} is a {dim}D image of size {image.GetSize()}, but a 3D volume is expected",
            "give a single 3D volume (extract one frame of a 4D series; stack 2D slices into a series)",
        )
    volume = from_sitk(image)
    if not allow_nonfinite and np.issubdtype(volume.array.dtype, np.floating):
        bad = int((~np.isfinite(volume.array)).sum())
        if bad:
            raise XAIError(
                f"{path.name} contains {bad} NaN or Inf voxels",
                "replace them (for example with the background value) before explaining",
            )
    return volume


def _read_dicom_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise XAIError(
            f"no DICOM series found in folder {folder}", "point to a folder holding one DICOM series"
        )
    # the series with the most files is the scan
    files = max((reader.GetGDCMSeriesFileNames(str(folder), s) for s in series), key=len)
    reader.SetFileNames(files)
    return reader.Execute()


def write_volume(volume: Volume, path: str | os.PathLike, *, compress: bool = True) -> Path:
    """Write a volume atomically (NRRD, NIfTI or MetaImage, chosen by the suffix)."""
    path = Path(path)
    name = path.name.lower()
    if not name.endswith(WRITABLE_SUFFIXES):
        raise XAIError(f"cannot write {path.name}", f"use one of {', '.join(WRITABLE_SUFFIXES)}")
    with atomic_path(path) as tmp:
        sitk.WriteImage(to_sitk(volume), str(tmp), compress)
    return path
