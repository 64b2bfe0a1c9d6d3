"""Export a disagreement annotation as a DICOM Segmentation (highdicom) over its source DICOM series.

A DICOM SEG refers to the images it segments, so the case must come from a DICOM series: the
annotation's label map is resampled (nearest neighbour, in physical space) onto that series' grid
and each slice becomes the frames of its source image. Segments carry the XAIMED codes
(``99XAIMED``) as segmented property category and type, the reader as content creator. Cases that
exist only as NIfTI/NRRD have no source images: export their ``.seg.nrrd`` instead (Slicer reads it
with the same codes), or convert the case to a DICOM series first.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.uid import generate_uid

from .. import __version__
from ..errors import XAIError
from ..geometry.resample import resample_to
from ..io.atomic import atomic_path
from ..io.volumes import read_volume
from .annotation import DisagreementAnnotation
from .coding import FINDING, category


def read_source_series(folder: str | os.PathLike) -> list[pydicom.Dataset]:
    """The image datasets of the largest series in ``folder`` (headers only), sorted along the slice normal."""
    folder = Path(folder)
    if not folder.is_dir():
        raise XAIError(
            f"DICOM SEG needs the case's source DICOM series, but {folder} is not a folder",
            "export the .seg.nrrd instead, or give the folder of the case's DICOM series",
        )
    series: dict[str, list[pydicom.Dataset]] = defaultdict(list)
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not a DICOM file: skip it
            continue
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            _fill_from_file_meta(ds)
            series[str(ds.SeriesInstanceUID)].append(ds)
    if not series:
        raise XAIError(f"no DICOM images found in {folder}", "give the folder of the case's DICOM series")
    datasets = max(series.values(), key=len)
    iop = np.asarray(datasets[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    return sorted(datasets, key=lambda d: float(np.dot(normal, np.asarray(d.ImagePositionPatient, float))))


def _fill_from_file_meta(ds: pydicom.Dataset) -> None:
    """Anonymisers sometimes blank the SOP class and instance UIDs; the file meta keeps them (in memory only)."""
    meta = getattr(ds, "file_meta", None) or {}
    for key, meta_key in (
        ("SOPClassUID", "MediaStorageSOPClassUID"),
        ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
    ):
        if not ds.get(key) and meta.get(meta_key):
            setattr(ds, key, meta[meta_key].value if hasattr(meta[meta_key], "value") else meta[meta_key])
    if not ds.get("SOPClassUID") or not ds.get("SOPInstanceUID"):
        raise XAIError(
            f"DICOM image {getattr(ds, 'filename', '')} has no SOP instance UID",
            "give the original DICOM files",
        )


def _frames_on_source(
    annotation: DisagreementAnnotation, folder: Path, datasets: list[pydicom.Dataset]
) -> np.ndarray:
    """Label map slices (frames, rows, columns) matching ``datasets`` one to one."""
    grid = read_volume(folder)
    labels = annotation.labels
    if not labels.same_grid(grid):
        labels = resample_to(labels, grid, "nearest")
    to_index = np.linalg.inv(grid.ijk_to_lps())
    frames = []
    for ds in datasets:
        i, j, k = (to_index @ np.append(np.asarray(ds.ImagePositionPatient, float), 1.0))[:3]
        kk = int(round(k))
        if abs(i) > 1e-3 or abs(j) > 1e-3 or abs(k - kk) > 1e-3 or not 0 <= kk < labels.array.shape[0]:
            raise XAIError(
                f"DICOM image {ds.SOPInstanceUID} does not lie on the series grid",
                "give a single, regular DICOM series",
            )
        if (int(ds.Rows), int(ds.Columns)) != labels.array.shape[1:]:
            raise XAIError(
                "DICOM image size differs from the series grid", "give a single, regular DICOM series"
            )
        frames.append(labels.array[kk])
    return np.stack(frames)


def export_dicom_seg(
    annotation: DisagreementAnnotation,
    source_series: str | os.PathLike,
    path: str | os.PathLike,
    *,
    series_number: int = 900,
    series_description: str = "XAIMed disagreement",
) -> Path:
    """Write the annotation's segments as a binary DICOM SEG referencing ``source_series``."""
    annotation.validate()
    segments = sorted(annotation.segments, key=lambda s: s.label)
    if not segments:
        raise XAIError("the annotation has no segments to export", "draw at least one disagreement region")
    folder = Path(source_series)
    datasets = read_source_series(folder)
    frames = _frames_on_source(annotation, folder, datasets)
    numbered = np.zeros(frames.shape, np.uint8)  # label values -> segment numbers 1..n
    for number, seg in enumerate(segments, start=1):
        numbered[frames == seg.label] = number
    p = annotation.provenance
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=seg.name[:64],
            segmented_property_category=hd.sr.CodedConcept(FINDING.value, FINDING.scheme, FINDING.meaning),
            segmented_property_type=hd.sr.CodedConcept(
                category(seg.category).code.value,
                category(seg.category).code.scheme,
                category(seg.category).code.meaning,
            ),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            display_color=hd.color.CIELabColor.from_rgb(*seg.color),
        )
        for number, seg in enumerate(segments, start=1)
    ]
    what = p.method or (f"blinded map {p.blinded_label}" if p.blinded_label else "attribution")
    seg_ds = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=numbered,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=int(series_number),
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="XAIMedSlicer",
        manufacturer_model_name="XAIMedSlicer disagreement annotation",
        software_versions=__version__,
        device_serial_number="0",
        content_label="DISAGREE",
        content_description=f"{what} / reader {p.reader}"[:64],
        content_creator_name=(p.reader if "^" in p.reader else f"{p.reader}^")[:64],
        series_description=series_description[:64],
    )
    out = Path(path)
    with atomic_path(out) as tmp:
        seg_ds.save_as(str(tmp))
    return out
