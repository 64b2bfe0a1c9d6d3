"""DICOM SEG export of disagreement segments reads back with pydicom and highdicom: frames, codes, places."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.io.volumes import read_volume
from XAIMedSlicerLib.study import DisagreementAnnotation, Provenance, export_dicom_seg
from XAIMedSlicerLib.study.dicom_seg import read_source_series

SERIES = "dicom/ct_abdomen_series"


@pytest.fixture(scope="module")
def ct(shared_data):
    return read_volume(shared_data(SERIES))


def annotation_on(reference, reader="R1") -> DisagreementAnnotation:
    ann = DisagreementAnnotation.empty(reference, Provenance("abdomen-1", reader, "gradcam", "c" * 64))
    shape = reference.array.shape
    a = np.zeros(shape, bool)
    a[3:6, 200:260, 100:180] = True
    b = np.zeros(shape, bool)
    b[10:12, 300:340, 300:350] = True
    ann.add(a, "irrelevant", "bowel gas")
    ann.add(b, "missed", "liver lesion")
    return ann


def test_dicom_seg_frames_and_codes(tmp_path, shared_data, ct):
    ann = annotation_on(ct)
    out = export_dicom_seg(ann, shared_data(SERIES), tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SEG" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert ds.SegmentationType == "BINARY"
    expected_frames = sum(
        int((ann.labels.array[k] == s.label).any()) for s in ann.segments for k in range(ct.array.shape[0])
    )
    assert int(ds.NumberOfFrames) == expected_frames == 5
    codes = [
        (
            s.SegmentNumber,
            s.SegmentLabel,
            s.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
            s.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator,
            s.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning,
        )
        for s in ds.SegmentSequence
    ]
    assert codes == [
        (1, "Irrelevant region used", "XM1000", "99XAIMED", "XM1001", "Model relies on an irrelevant region"),
        (2, "Relevant region missed", "XM1000", "99XAIMED", "XM1002", "Model misses a relevant region"),
    ]
    sources = read_source_series(shared_data(SERIES))
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert str(ds.ContentCreatorName) == "R1^"

    seg = hd.seg.segread(out)
    pixels = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], combine_segments=True)
    np.testing.assert_array_equal(pixels, ann.labels.array)
    assert seg.get_segment_description(2).segmented_property_type.value == "XM1002"


def test_annotation_on_flipped_nifti_grid_lands_in_the_same_place(tmp_path, shared_data, ct):
    """The label map NIfTI covers the series' physical space with its y axis flipped."""
    labels = read_volume(shared_data("dicom/example_seg_dicom.nii.gz"))
    assert not labels.same_grid(ct)
    structure = (
        int(np.bincount(labels.array.ravel().astype(np.int64))[1:].argmax()) + 1
    )  # the largest structure
    ann = DisagreementAnnotation.empty(labels, Provenance("abdomen-1", "R2", "ig", "d" * 64))
    ann.add(labels.array == structure, "missed")
    out = export_dicom_seg(ann, shared_data(SERIES), tmp_path / "flipped.dcm")
    seg = hd.seg.segread(out)
    sources = read_source_series(shared_data(SERIES))
    pixels = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], combine_segments=True)
    # centroid in LPS mm from the SEG frames and the DICOM headers ...
    points = []
    for frame, src in zip(pixels, sources, strict=True):
        rows, cols = np.nonzero(frame)
        iop = np.asarray(src.ImageOrientationPatient, float)
        dr, dc = (float(v) for v in src.PixelSpacing)
        pos = np.asarray(src.ImagePositionPatient, float)
        points.append(pos + np.outer(cols * dc, iop[:3]) + np.outer(rows * dr, iop[3:]))
    centroid_seg = np.concatenate(points).mean(axis=0)
    # ... and from the NIfTI label map in its own grid
    k, j, i = np.nonzero(labels.array == structure)
    ijk = np.stack([i, j, k, np.ones_like(i)]).astype(float)
    centroid_nifti = (labels.ijk_to_lps() @ ijk)[:3].mean(axis=1)
    np.testing.assert_allclose(centroid_seg, centroid_nifti, atol=1.0)  # within a voxel (0.98 x 0.98 x 2 mm)


def test_nifti_only_case_is_refused(tmp_path, shared_data):
    image = read_volume(shared_data("ct/example_ct_sm.nii.gz"))
    ann = DisagreementAnnotation.empty(image, Provenance("ct-sm", "R1", "gradcam", "e" * 64))
    mask = np.zeros(image.array.shape, bool)
    mask[5, 10:20, 10:20] = True
    ann.add(mask, "agree")
    with pytest.raises(XAIError, match="source DICOM series"):
        export_dicom_seg(ann, shared_data("ct/example_ct_sm.nii.gz"), tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()
