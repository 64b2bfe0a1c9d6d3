"""Disagreement annotations: .seg.nrrd round trip (also through slicer-core), codes, agreement metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.geometry.resample import resample_to
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.study import (
    DisagreementAnnotation,
    Provenance,
    agreement,
    read_seg_nrrd,
    terminology_entry,
    write_seg_nrrd,
)
from XAIMedSlicerLib.study.coding import parse_terminology_entry, terminology_context

COMMENT = "gas | bubble\n100% sure: not relevant"


def make_annotation(reference: Volume) -> DisagreementAnnotation:
    prov = Provenance(
        case_id="case-7",
        reader="R1",
        method="gradcam",
        model_hash="ab" * 32,
        target={"kind": "class_logit", "class_index": 1},
        attribution_ref="vtkMRMLScalarVolumeNode5",
    )
    ann = DisagreementAnnotation.empty(reference, prov, comment="overall: map too diffuse")
    shape = reference.array.shape
    a = np.zeros(shape, bool)
    a[2:5, 3:9, 4:10] = True
    b = np.zeros(shape, bool)
    b[10:14, 20:26, 15:20] = True
    c = np.zeros(shape, bool)
    c[8, 10:12, 10:12] = True
    ann.add(a, "irrelevant", COMMENT)
    ann.add(b, "missed", "lesion not highlighted")
    ann.add(c, "agree")
    return ann


def test_seg_nrrd_round_trip(tmp_path, oblique_volume):
    ann = make_annotation(oblique_volume)
    path = write_seg_nrrd(ann, tmp_path / "case-7_R1.seg.nrrd")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    back = read_seg_nrrd(path)
    assert back.labels.same_grid(oblique_volume, tol=1e-6)
    np.testing.assert_array_equal(back.labels.array, ann.labels.array)
    assert [(s.label, s.category, s.name, s.comment, s.color) for s in back.segments] == [
        (s.label, s.category, s.name, s.comment, s.color) for s in ann.segments
    ]
    assert back.provenance == ann.provenance
    assert back.comment == "overall: map too diffuse"
    header = path.read_bytes().split(b"\n\n")[0].decode()
    assert (
        "Segment0_Tags:=Segmentation.Status:completed|TerminologyEntry:" + terminology_entry("irrelevant")
        in header
    )
    assert "99XAIMED^XM1002^Model misses a relevant region" in header
    assert "XAIMed.Reader:R1|" in header


def test_failed_write_keeps_existing_file(tmp_path, oblique_volume):
    ann = make_annotation(oblique_volume)
    path = write_seg_nrrd(ann, tmp_path / "a.seg.nrrd")
    before = path.read_bytes()
    arr = ann.labels.array.copy()
    arr[0, 0, 0] = 9  # a label without a segment description
    ann.labels = ann.labels.with_array(arr)
    with pytest.raises(XAIError, match="no segment description"):
        write_seg_nrrd(ann, path)
    assert path.read_bytes() == before
    with pytest.raises(XAIError, match="seg.nrrd"):
        write_seg_nrrd(make_annotation(oblique_volume), tmp_path / "a.nrrd")


def test_slicer_reads_segments_codes_and_geometry(tmp_path, oblique_volume):
    import vtk
    from vtk.util import numpy_support

    from XAIMedSlicerLib.scene.app import create_scene

    ann = make_annotation(oblique_volume)
    path = write_seg_nrrd(ann, tmp_path / "a.seg.nrrd")
    ss = create_scene(set_global=False)
    node = ss.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = ss.scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node) == 1
    seg = node.GetSegmentation()
    assert seg.GetNumberOfSegments() == 3
    for n, ours in enumerate(ann.segments):
        segment = seg.GetNthSegment(n)
        assert segment.GetName() == ours.name
        assert segment.GetLabelValue() == ours.label
        entry = vtk.reference("")
        segment.GetTag("TerminologyEntry", entry)
        assert parse_terminology_entry(str(entry)).key == ours.category
        image = segment.GetRepresentation("Binary labelmap")
        matrix = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(matrix)
        ijk_to_ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        np.testing.assert_allclose(ijk_to_ras, oblique_volume.ijk_to_ras(), atol=1e-4)
        scalars = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
        assert int((scalars == ours.label).sum()) == int((ann.labels.array == ours.label).sum())


def test_agreement_matches_direct_computation(oblique_volume):
    ann = make_annotation(oblique_volume)
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, oblique_volume.array.shape)
    values[2:5, 3:9, 4:10] += 3.0  # the map puts its weight on the "irrelevant" region
    attribution = oblique_volume.with_array(values.astype(np.float32))
    res = agreement(ann, attribution, k_percent=5.0)
    pos = np.clip(attribution.array.astype(np.float64), 0, None)
    irrelevant, missed, agree = (ann.labels.array == v for v in (1, 2, 3))
    k = int(round(values.size * 0.05))
    top = np.zeros(values.size, bool)
    top[np.argsort(-attribution.array.ravel().astype(np.float64), kind="stable")[:k]] = True
    top = top.reshape(values.shape)
    assert res.irrelevant_mass_share == pytest.approx(pos[irrelevant].sum() / pos.sum(), rel=1e-9)
    assert res.missed_share == pytest.approx((missed & ~top).sum() / missed.sum())
    assert res.missed_mass_share == pytest.approx(pos[missed].sum() / pos.sum(), rel=1e-9)
    assert res.dice_irrelevant == pytest.approx(2 * (irrelevant & top).sum() / (irrelevant.sum() + top.sum()))
    assert res.dice_agree == pytest.approx(2 * (agree & top).sum() / (agree.sum() + top.sum()))
    assert res.irrelevant_mass_share > 5 * irrelevant.mean()  # far more mass than its share of the volume
    assert [s.voxels for s in res.segments] == [int(irrelevant.sum()), int(missed.sum()), int(agree.sum())]
    assert json.loads(res.to_json())["case_id"] == "case-7"


def test_agreement_resamples_a_map_on_another_grid(oblique_volume):
    ann = make_annotation(oblique_volume)
    values = np.zeros(oblique_volume.array.shape, np.float32)
    values[10:14, 20:26, 15:20] = 1.0  # exactly the "missed" region
    fine = Volume(
        np.zeros((36, 60, 52), np.float32),
        spacing=tuple(s / 2 for s in oblique_volume.spacing),
        origin=oblique_volume.origin,
        direction=oblique_volume.direction,
    )
    on_fine = resample_to(oblique_volume.with_array(values), fine, "nearest")
    res = agreement(ann, on_fine, k_percent=1.0)
    assert res.missed_mass_share > 0.9
    assert res.irrelevant_mass_share == pytest.approx(0.0, abs=1e-6)


def test_coding_scheme_and_bad_input(oblique_volume):
    assert {c["CodeValue"] for c in terminology_context()["SegmentationCodes"]["Category"][0]["Type"]} == {
        "XM1001",
        "XM1002",
        "XM1003",
    }
    ann = make_annotation(oblique_volume)
    with pytest.raises(XAIError, match="unknown disagreement category"):
        ann.add(np.ones(oblique_volume.array.shape, bool), "maybe")
    with pytest.raises(XAIError, match="empty"):
        ann.add(np.zeros(oblique_volume.array.shape, bool), "agree")
    with pytest.raises(XAIError, match="Volume"):
        agreement(ann, oblique_volume.array)
