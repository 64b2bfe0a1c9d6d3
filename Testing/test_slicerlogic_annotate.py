"""The "Annotate disagreement" controller on a real slicer-core scene and a real study database:
strokes painted into a vtkMRMLSegmentationNode the way the Segment Editor's paint effect applies them
(``SetBinaryLabelmapToSegment`` with the stroke's own extent) are saved with exact voxels and geometry,
the agreement equals numpy, reader agreement equals numpy Dice, and DICOM SEG matches the voxels."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.io.volumes import read_volume
from XAIMedSlicerLib.metrics.localisation import top_k_region
from XAIMedSlicerLib.scene import add_attribution_node, add_volume, create_scene
from XAIMedSlicerLib.scene.segmentation import segment_tag
from XAIMedSlicerLib.slicerlogic.annotate import (
    CODE_TAG,
    AnnotationController,
    agreement_text,
    code_choices,
)
from XAIMedSlicerLib.study.agreement import attribution_mass
from XAIMedSlicerLib.study.coding import CATEGORIES

SERIES = "dicom/ct_abdomen_series"


def paint(node, segment_id, reference_node, mask: np.ndarray) -> None:
    """Apply one brush stroke: ``mask`` [k, j, i] on the reference lattice, cropped to its bounding box."""
    import slicer
    import vtk
    from vtk.util import numpy_support

    idx = np.argwhere(mask)
    (k0, j0, i0), (k1, j1, i1) = idx.min(0), idx.max(0)
    crop = np.ascontiguousarray(mask[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1].astype(np.uint8))
    stroke = slicer.vtkOrientedImageData()
    matrix = vtk.vtkMatrix4x4()
    reference_node.GetIJKToRASMatrix(matrix)
    stroke.SetImageToWorldMatrix(matrix)
    stroke.SetExtent(int(i0), int(i1), int(j0), int(j1), int(k0), int(k1))
    stroke.GetPointData().SetScalars(numpy_support.numpy_to_vtk(crop.ravel(), deep=True))
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    assert logic.SetBinaryLabelmapToSegment(stroke, node, segment_id, logic.MODE_MERGE_MASK)


def sphere(volume, centre_ras, radius_mm) -> np.ndarray:
    """Voxels whose centres lie within ``radius_mm`` of a RAS point (a round brush)."""
    k, j, i = np.indices(volume.array.shape)
    ijk = np.stack([i, j, k, np.ones_like(i)], -1).reshape(-1, 4).T
    ras = (volume.ijk_to_ras() @ ijk)[:3].T
    return (np.linalg.norm(ras - np.asarray(centre_ras), axis=1) <= radius_mm).reshape(volume.array.shape)


def ras_centroid(volume, mask) -> np.ndarray:
    k, j, i = np.nonzero(mask)
    ijk = np.stack([i, j, k, np.ones_like(i)]).astype(float)
    return (volume.ijk_to_ras() @ ijk)[:3].mean(axis=1)


@pytest.fixture
def painted(oblique_volume, tmp_path):
    ss = create_scene()
    scan_node = add_volume(ss, oblique_volume, "scan")
    rng = np.random.default_rng(4)
    attr = oblique_volume.with_array(rng.gamma(2.0, 1.0, oblique_volume.array.shape).astype(np.float32))
    map_node = add_attribution_node(
        ss, attr, signed=False, name="gradcam map", provenance={"method": "gradcam"}
    )
    controller = AnnotationController(ss)
    controller.open_study(tmp_path / "study.sqlite", methods=["gradcam", "ig"])
    drawing = controller.new_drawing(scan_node)
    centre = oblique_volume.index_to_ras((12, 16, 9))
    missed = sphere(oblique_volume, centre, 3.0)
    irrelevant = np.zeros(missed.shape, bool)
    irrelevant[2:5, 3:9, 18:24] = True
    sid_missed = controller.add_region(drawing, "missed")
    sid_irrelevant = controller.add_region(drawing, "agree")
    controller.set_code(drawing, sid_irrelevant, "irrelevant")  # recoded from the combo
    paint(drawing, sid_missed, scan_node, missed)
    paint(drawing, sid_irrelevant, scan_node, irrelevant)
    return ss, controller, drawing, scan_node, map_node, attr, missed, irrelevant, centre


def test_painted_segments_saved_exactly_with_agreement(painted, oblique_volume):
    ss, controller, drawing, scan_node, map_node, attr, missed, irrelevant, centre = painted
    seg = drawing.GetSegmentation()
    assert [segment_tag(seg.GetNthSegment(i), CODE_TAG) for i in range(2)] == ["missed", "irrelevant"]
    red = [c / 255 for c in CATEGORIES["irrelevant"].color]
    assert np.allclose(seg.GetNthSegment(1).GetColor(), red)
    n_nodes = ss.scene.GetNumberOfNodes()
    saved = controller.save(
        drawing, scan_node, case_id="c1", method="gradcam", reader="R1", note="misses the lesion",
        attribution_node=map_node,
    )  # fmt: skip
    assert ss.scene.GetNumberOfNodes() == n_nodes  # no temporary node left, no user node changed
    rows = controller.study.annotations()
    assert [(r["id"], r["case_id"], r["reader"], r["method"], r["version"]) for r in rows] == [
        (saved.annotation_id, "c1", "R1", "gradcam", 1)
    ]
    # the case was added with the map written beside the database, equal to the node's voxels
    ref = controller.study.attribution_ref("c1", "gradcam")
    assert read_volume(ref).same_grid(oblique_volume)
    assert np.array_equal(read_volume(ref).array, attr.array)
    ann = controller.study.load_annotation(saved.annotation_id)
    assert np.array_equal(ann.mask("missed"), missed) and np.array_equal(ann.mask("irrelevant"), irrelevant)
    assert np.abs(ann.labels.ijk_to_ras() - oblique_volume.ijk_to_ras()).max() < 1e-4
    assert (
        np.abs(ras_centroid(ann.labels, ann.mask("missed")) - ras_centroid(oblique_volume, missed)).max()
        < 1e-4
    )
    assert np.linalg.norm(ras_centroid(ann.labels, ann.mask("missed")) - centre) < 0.5  # the brush's centre
    assert ann.provenance.reader == "R1" and ann.comment == "misses the lesion"
    # the agreement equals a direct numpy computation on the map
    values = attr.array.astype(np.float64)
    top = top_k_region(values, 5.0)
    mass = attribution_mass(values, "positive")
    assert saved.agreement["missed_share"] == pytest.approx((missed & ~top).sum() / missed.sum())
    assert saved.agreement["irrelevant_mass_share"] == pytest.approx(mass[irrelevant].sum() / mass.sum())
    dice = 2 * (irrelevant & top).sum() / (irrelevant.sum() + top.sum())
    assert saved.agreement["dice_irrelevant"] == pytest.approx(dice)
    text = agreement_text(saved.agreement)
    assert f"{saved.agreement['missed_share']:.3f}" in text
    assert [k for k, _ in code_choices()] == list(CATEGORIES)


def test_versions_reader_agreement_and_bad_input(painted, oblique_volume):
    ss, controller, drawing, scan_node, map_node, attr, missed, irrelevant, centre = painted
    args = {"case_id": "c1", "method": "gradcam", "attribution_node": map_node}
    first = controller.save(drawing, scan_node, reader="R1", **args)
    second = controller.save(drawing, scan_node, reader="R1", **args)
    assert second.annotation_id != first.annotation_id
    assert [r["version"] for r in controller.study.annotations(latest=False)] == [1, 2]
    other = controller.new_drawing(scan_node)
    sid = controller.add_region(other, "missed")
    shifted = np.roll(missed, 2, axis=2)
    paint(other, sid, scan_node, shifted)
    controller.save(other, scan_node, reader="R2", **args)
    both, mine = missed | irrelevant, shifted
    pairs = controller.reader_agreement("c1", "gradcam")
    assert [(p["reader_a"], p["reader_b"]) for p in pairs] == [("R1", "R2")]
    assert pairs[0]["dice"] == pytest.approx(2 * (both & mine).sum() / (both.sum() + mine.sum()))
    empty = controller.new_drawing(scan_node)
    controller.add_region(empty, "agree")
    n_rows = len(controller.study.annotations(latest=False))
    for bad in (
        lambda: controller.save(empty, scan_node, reader="R3", **args),  # nothing painted
        lambda: controller.save(drawing, scan_node, reader=" ", **args),  # no reader
        lambda: controller.save(drawing, scan_node, reader="R1", case_id="c9", method="occlusion"),
        lambda: controller.add_region(drawing, "nonsense"),
    ):
        with pytest.raises(XAIError) as err:
            bad()
        assert "\n" not in str(err.value)
    assert len(controller.study.annotations(latest=False)) == n_rows
    controller.close()
    with pytest.raises(XAIError, match="no study database is open"):
        controller.case_ids()


def test_export_dicom_seg_of_a_painted_ct(tmp_path, shared_data):
    ct = read_volume(shared_data(SERIES))
    ss = create_scene()
    ct_node = add_volume(ss, ct, "CT")
    controller = AnnotationController(ss)
    controller.open_study(tmp_path / "ct.sqlite", methods=["gradcam"])
    drawing = controller.new_drawing(ct_node)
    mask = np.zeros(ct.array.shape, bool)
    mask[4:7, 200:240, 150:190] = True
    paint(drawing, controller.add_region(drawing, "missed"), ct_node, mask)
    saved = controller.save(drawing, ct_node, case_id="ct", method="gradcam", reader="R1")
    assert saved.agreement == {}  # no map for this case: agreement not computed
    assert "not computed" in agreement_text(saved.agreement)
    out = controller.export_seg(saved.annotation_id, shared_data(SERIES), tmp_path / "seg.dcm")
    seg = hd.seg.segread(out)
    assert int(np.asarray(seg.pixel_array).sum()) == int(mask.sum())
    with pytest.raises(XAIError, match="already exists"):
        controller.export_seg(saved.annotation_id, shared_data(SERIES), out)
    with pytest.raises(XAIError, match="DICOM series"):
        controller.export_seg(saved.annotation_id, tmp_path / "nowhere", tmp_path / "b.dcm")
    controller.close()
