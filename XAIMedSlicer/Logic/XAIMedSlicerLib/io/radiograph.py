"""Projection radiographs (PNG, JPEG, DICOM CR/DX) as one-slice Volumes with exact geometry.

Geometry convention (DICOM PS3.3 C.7.6.1.1.1, Patient Orientation of a projection image): the first
letter says where the column index i points (along a row, left to right on the display), the second
where the row index j points (top to bottom). A PA or AP chest is displayed with the patient's right
on the image left, i.e. ``PatientOrientation = L\\F``: i points to the patient's Left (+L in LPS),
j to the Feet (-S). The slice axis k is the cross product i x j (posterior, +P, for L\\F). So in
Slicer the RAS letters are right: the image's left edge is patient Right. When a DICOM file gives
``PatientOrientation`` it is used; PNG/JPEG and DICOM without it get ``L\\F``.

Pixel spacing: DICOM ``PixelSpacing`` (calibrated) first, then ``ImagerPixelSpacing`` (at the
detector); PNG/JPEG have none: 1 mm unless given, and ``RadiographInfo.spacing_source`` says so.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import XAIError
from ..geometry.volume import Volume

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
RADIOGRAPH_MODALITIES = ("CR", "DX", "RG", "PX", "IO")
_LPS_LETTERS = {
    "L": (1.0, 0.0, 0.0),
    "R": (-1.0, 0.0, 0.0),
    "P": (0.0, 1.0, 0.0),
    "A": (0.0, -1.0, 0.0),
    "H": (0.0, 0.0, 1.0),
    "F": (0.0, 0.0, -1.0),
}
DEFAULT_ORIENTATION = ("L", "F")


@dataclass(frozen=True)
class RadiographInfo:
    """How a radiograph was read (goes into provenance)."""

    source_format: str  # "png", "jpeg" or "dicom"
    spacing_source: str  # "PixelSpacing", "ImagerPixelSpacing", "given" or "default (1 mm, not measured)"
    photometric: str  # MONOCHROME1 / MONOCHROME2 / L / RGB->L
    inverted: bool  # MONOCHROME1 was inverted so that bright = dense
    orientation: tuple[str, str]  # letters of the i and j axes
    transfer_syntax: str | None = None
    view_position: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def is_radiograph_path(path: Path) -> bool:
    """True for PNG/JPEG files and single-file DICOM projection radiographs (CR, DX, ...)."""
    if path.is_dir() or not path.is_file():
        return False
    if path.suffix.lower() in RASTER_SUFFIXES:
        return True
    return _is_dicom_radiograph(path)


def _is_dicom_radiograph(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            if fh.read(4) != b"DICM":
                return False
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality", "NumberOfFrames"])
    except Exception:  # noqa: BLE001 - anything unreadable is not ours to claim
        return False
    return (
        str(ds.get("Modality", "")).upper() in RADIOGRAPH_MODALITIES and int(ds.get("NumberOfFrames", 1)) <= 1
    )


def grid_for(
    rows: int, columns: int, spacing: tuple[float, float], orientation: tuple[str, str] = DEFAULT_ORIENTATION
) -> tuple[tuple[float, float, float], np.ndarray]:
    """(i, j, k) spacing and LPS direction of a radiograph of ``rows x columns`` pixels."""
    try:
        col_dir = np.array(_LPS_LETTERS[orientation[0][0]])
        row_dir = np.array(_LPS_LETTERS[orientation[1][0]])
    except (KeyError, IndexError):
        raise XAIError(
            f"unreadable patient orientation {orientation}", "give two letters from L R A P H F"
        ) from None
    if abs(float(col_dir @ row_dir)) > 0.5:
        raise XAIError(f"patient orientation {orientation} names parallel axes", "fix PatientOrientation")
    direction = np.stack([col_dir, row_dir, np.cross(col_dir, row_dir)], axis=1)
    # DICOM spacing is (row spacing, column spacing) = (j, i)
    row_spacing, col_spacing = float(spacing[0]), float(spacing[1])
    return (col_spacing, row_spacing, 1.0), direction


def read_radiograph(
    path: str | os.PathLike, pixel_spacing: float | tuple[float, float] | None = None
) -> tuple[Volume, RadiographInfo]:
    """Read a radiograph as a Volume with array ``[1, rows, columns]`` (float32) and how it was read.

    ``pixel_spacing`` (mm; one number or (row, column)) overrides what the file says.
    """
    path = Path(path)
    if not path.exists():
        raise XAIError(f"file not found: {path}", "check the path")
    given = None
    if pixel_spacing is not None:
        given = (
            (float(pixel_spacing),) * 2 if np.isscalar(pixel_spacing) else tuple(map(float, pixel_spacing))
        )
        if len(given) != 2 or min(given) <= 0:
            raise XAIError(f"invalid pixel spacing {pixel_spacing}", "give one or two positive numbers in mm")
    if path.suffix.lower() in RASTER_SUFFIXES:
        pixels, info = _read_raster(path)
        spacing = given or (1.0, 1.0)
        source = "given" if given else "default (1 mm, not measured)"
    else:
        pixels, info, file_spacing, source = _read_dicom(path)
        spacing = given or file_spacing
        source = "given" if given else source
    info = RadiographInfo(**{**info.to_dict(), "spacing_source": source})
    spacing_ijk, direction = grid_for(pixels.shape[0], pixels.shape[1], spacing, info.orientation)
    volume = Volume(pixels[None].astype(np.float32), spacing_ijk, (0.0, 0.0, 0.0), direction)
    return volume, info


def _read_raster(path: Path) -> tuple[np.ndarray, RadiographInfo]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("L", "I", "I;16", "I;16B", "F"):
                arr = np.asarray(img)
                photometric = mode
            else:
                arr = np.asarray(img.convert("L"))
                photometric = f"{mode}->L"
    except (UnidentifiedImageError, OSError) as exc:
        raise XAIError(f"cannot read {path.name} as an image ({exc})", "give a PNG or JPEG file") from None
    fmt = "png" if path.suffix.lower() == ".png" else "jpeg"
    return np.asarray(arr), RadiographInfo(fmt, "", photometric, False, DEFAULT_ORIENTATION)


def _read_dicom(path: Path):
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001
        raise XAIError(
            f"cannot read {path.name} as DICOM ({type(exc).__name__})", "give a DICOM file"
        ) from None
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2") or int(ds.get("SamplesPerPixel", 1)) != 1:
        raise XAIError(
            f"{path.name} is not a grey radiograph (photometric interpretation {photometric})",
            "give a single-frame MONOCHROME1/2 CR or DX image",
        )
    arr = _stored_pixels(ds, path, syntax)
    if arr.ndim != 2:
        raise XAIError(
            f"{path.name} is not a single-frame radiograph (pixel array of shape {arr.shape})",
            "give a single-frame CR or DX image",
        )
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    arr = arr.astype(np.float64) * slope + intercept
    inverted = photometric == "MONOCHROME1"
    if inverted:  # reflect the stored range so that bright means dense, as in MONOCHROME2
        bits = int(ds.get("BitsStored", 16))
        low, high = (
            (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            if ds.get("PixelRepresentation", 0)
            else (0, 2**bits - 1)
        )
        arr = (low + high) * slope + 2 * intercept - arr
    spacing, source = None, "default (1 mm, not measured)"
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(key)
        if value is not None and len(value) == 2 and min(float(v) for v in value) > 0:
            spacing, source = (float(value[0]), float(value[1])), key
            break
    orientation = DEFAULT_ORIENTATION
    po = ds.get("PatientOrientation")
    if po is not None and len(po) == 2 and all(str(p)[:1].upper() in _LPS_LETTERS for p in po):
        orientation = (str(po[0])[:1].upper(), str(po[1])[:1].upper())
    info = RadiographInfo(
        "dicom", source, photometric, inverted, orientation, syntax, str(ds.get("ViewPosition", "")) or None
    )
    return arr.astype(np.float32), info, spacing or (1.0, 1.0), source


def _stored_pixels(ds, path: Path, syntax: str) -> np.ndarray:
    """Stored pixel values: pydicom's decoders (pillow, pyjpegls, ...), else GDCM inside SimpleITK.

    pydicom has no decoder of its own for JPEG Lossless (Process 14), common in CR/DX archives, without
    pylibjpeg or gdcm; SimpleITK's bundled GDCM decodes it. ITK would also apply the rescale and turn
    MONOCHROME1 into MONOCHROME2, so GDCM reads a temporary copy whose header says MONOCHROME2 with no
    rescale: it returns the stored values, handled below exactly as pydicom's.
    """
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:  # noqa: BLE001 - no decoder for this transfer syntax: try GDCM
        first = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
    import tempfile

    import SimpleITK as sitk

    plain = copy.deepcopy(ds)  # Dataset.copy() shares the elements with ds
    plain.PhotometricInterpretation = "MONOCHROME2"
    for key in ("RescaleSlope", "RescaleIntercept", "ModalityLUTSequence"):
        if key in plain:
            del plain[key]
    with tempfile.TemporaryDirectory(prefix="xaimed_dcm_") as tmp:
        frame = Path(tmp) / "frame.dcm"
        try:
            plain.save_as(frame, enforce_file_format=True)
            arr = sitk.GetArrayFromImage(sitk.ReadImage(str(frame)))
        except (RuntimeError, ValueError, OSError):
            raise XAIError(
                f"cannot decode the pixels of {path.name} (transfer syntax {syntax}: {first})",
                "install a decoder for it (pylibjpeg with pylibjpeg-libjpeg/-openjpeg, or gdcm)",
            ) from None
    return arr[0] if arr.ndim == 3 and arr.shape[0] == 1 else arr


def radiograph_info(path: str | os.PathLike) -> dict | None:
    """Provenance of a radiograph file (None when ``path`` is not one)."""
    path = Path(path)
    if not is_radiograph_path(path):
        return None
    return read_radiograph(path)[1].to_dict()
