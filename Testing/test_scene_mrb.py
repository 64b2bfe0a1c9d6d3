"""build_scene -> .mrb -> reload: same geometry, colour node, provenance, segments, terminology, table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_scene_support import NAMES, make_explanation
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.scene import (
    SEQUENTIAL,
    build_scene,
    color_node_rgba,
    exact_rows,
    get_provenance,
    load_mrb,
    parse_terminology,
    save_mrb,
    segment_ids,
    table_rows,
    volume_from_node,
    xaimed_attributes,
)
from XAIMedSlicerLib.scene.segmentation import segment_tag

TOL = 1e-4


@pytest.fixture
def saved(oblique_volume, tmp_path):
    explanation = make_explanation(oblique_volume)
    bundle = build_scene(explanation, closed_surface=False)
    path = save_mrb(bundle.ss, tmp_path / "scene.mrb")
    return explanation, bundle, path


def _segments(segmentation) -> dict[str, object]:
    seg = segmentation.GetSegmentation()
    return {seg.GetSegment(s).GetName(): seg.GetSegment(s) for s in segment_ids(segmentation)}


def test_reload_keeps_geometry_and_voxels(saved):
    explanation, bundle, path = saved
    loaded = load_mrb(path)
    for node, volume in (
        (bundle.image_node, explanation.image),
        (bundle.attribution_node, explanation.attribution),
        (bundle.labelmap_node, explanation.labels),
    ):
        back = loaded.scene.GetFirstNodeByName(node.GetName())
        assert back is not None, node.GetName()
        reloaded = volume_from_node(back)
        assert reloaded.size == volume.size
        np.testing.assert_allclose(reloaded.ijk_to_ras(), volume.ijk_to_ras(), atol=TOL)
        np.testing.assert_array_equal(reloaded.array, volume.array)


def test_reload_keeps_colour_map_and_window(saved):
    _, bundle, path = saved
    loaded = load_mrb(path)
    node = loaded.scene.GetFirstNodeByName(bundle.attribution_node.GetName())
    display = node.GetDisplayNode()
    color = display.GetColorNode()
    assert color is not None and color.GetName() == SEQUENTIAL
    assert color.GetNumberOfColors() == 256
    np.testing.assert_allclose(color_node_rgba(color), color_node_rgba(bundle.color_node), atol=1e-6)
    original = bundle.attribution_node.GetDisplayNode()
    assert display.GetAutoWindowLevel() == 0
    assert display.GetWindow() == pytest.approx(original.GetWindow())
    assert display.GetLevel() == pytest.approx(original.GetLevel())
    assert display.GetApplyThreshold() == original.GetApplyThreshold() == 1
    assert display.GetLowerThreshold() == pytest.approx(original.GetLowerThreshold())
    legends = loaded.scene.GetNodesByClass("vtkMRMLColorLegendDisplayNode")
    assert legends.GetNumberOfItems() == 1


def test_reload_keeps_provenance_attributes(saved):
    explanation, bundle, path = saved
    loaded = load_mrb(path)
    node = loaded.scene.GetFirstNodeByName(bundle.attribution_node.GetName())
    assert xaimed_attributes(node) == xaimed_attributes(bundle.attribution_node)
    record = get_provenance(node)
    assert record == json.loads(json.dumps(explanation.provenance))
    attrs = xaimed_attributes(node)
    assert attrs["XAIMed.model"] == explanation.provenance["model"]["name"]
    assert attrs["XAIMed.model_sha256"] == explanation.provenance["model"]["sha256"]
    assert attrs["XAIMed.method"] == explanation.method
    assert json.loads(attrs["XAIMed.parameters"]) == explanation.provenance["method"]["params"]
    assert json.loads(attrs["XAIMed.target"]) == explanation.provenance["target"]
    assert attrs["XAIMed.time"] == explanation.provenance["created"]
    assert attrs["XAIMed.run"] == bundle.run_name


def test_reload_keeps_segments_names_colours_terminology(saved):
    _, bundle, path = saved
    loaded = load_mrb(path)
    segmentation = loaded.scene.GetFirstNodeByName(bundle.segmentation_node.GetName())
    before, after = _segments(bundle.segmentation_node), _segments(segmentation)
    assert set(after) == set(NAMES.values())
    for name, segment in after.items():
        np.testing.assert_allclose(segment.GetColor(), before[name].GetColor(), atol=1e-6)
        assert segment_tag(segment, "XAIMed.label") == segment_tag(before[name], "XAIMed.label")
        assert parse_terminology(segment.GetTerminology()) == parse_terminology(before[name].GetTerminology())
    assert parse_terminology(after["liver"].GetTerminology())["type"] == ("SCT", "10200004", "Liver")


def test_reload_keeps_table(saved):
    explanation, bundle, path = saved
    loaded = load_mrb(path)
    table = loaded.scene.GetFirstNodeByName(bundle.table_node.GetName())
    rows = table_rows(table)
    expected = sorted(explanation.structures, key=lambda r: -r["positive_share"])
    assert [r["label"] for r in rows] == [r["label"] for r in expected]
    assert [r["name"] for r in rows] == [r["name"] for r in expected]
    for got, want in zip(rows, expected, strict=True):
        for key in ("voxels", "volume_ml", "positive_share", "peak", "peak_r", "peak_a", "peak_s"):
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-4), key
    assert exact_rows(table) == json.loads(json.dumps(expected))


def test_save_is_atomic_and_checks_the_name(saved, tmp_path):
    _, bundle, path = saved
    before = path.read_bytes()
    with pytest.raises(XAIError, match=r"\.mrb"):
        save_mrb(bundle.ss, tmp_path / "scene.zip")
    assert not (tmp_path / "scene.zip").exists()
    assert path.read_bytes() == before
    again = save_mrb(bundle.scene, path)  # a plain vtkMRMLScene works too; replaces the file
    assert again == path and path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.mrb"]  # no temporary left behind
    with pytest.raises(XAIError, match="does not exist"):
        load_mrb(tmp_path / "missing.mrb")


def test_real_ct_scene_round_trip(shared_data, tmp_path):
    from XAIMedSlicerLib.anatomy.stats import structure_statistics
    from XAIMedSlicerLib.explanation import Explanation
    from XAIMedSlicerLib.io.volumes import read_volume

    ct = read_volume(shared_data("ct/example_ct_sm.nii.gz"))
    seg = read_volume(shared_data("ct/example_seg.nii.gz"))
    names = {
        int(k): v for k, v in json.loads(shared_data("ct/class_map_total.json").read_text())["total"].items()
    }
    rng = np.random.default_rng(3)
    attribution = ct.with_array(rng.normal(0, 1, ct.array.shape).astype(np.float32))
    labels = seg.with_array(seg.array.astype(np.int16))
    rows = structure_statistics(attribution, labels, names)
    explanation = Explanation(ct, attribution, True, "ig", {}, {}, labels, names, rows, {"created": "t"})
    bundle = build_scene(explanation)
    present = {names[int(v)] for v in np.unique(seg.array) if v}
    segments = _segments(bundle.segmentation_node)
    assert set(segments) == present
    assert bundle.segmentation_node.GetSegmentation().ContainsRepresentation("Closed surface")
    path = save_mrb(bundle.ss, tmp_path / "ct.mrb")
    loaded = load_mrb(path)
    for node, volume in ((bundle.image_node, ct), (bundle.attribution_node, attribution)):
        back = volume_from_node(loaded.scene.GetFirstNodeByName(node.GetName()))
        np.testing.assert_allclose(back.ijk_to_ras(), volume.ijk_to_ras(), atol=TOL)
        np.testing.assert_array_equal(back.array, volume.array)
    reloaded = _segments(loaded.scene.GetFirstNodeByName(bundle.segmentation_node.GetName()))
    assert set(reloaded) == present
    liver = parse_terminology(reloaded["liver"].GetTerminology())
    assert liver["type"] == ("SCT", "10200004", "Liver")
    kidney = parse_terminology(reloaded["kidney_left"].GetTerminology())
    assert kidney["type"][1] == "64033007" and kidney["modifier"][1] == "7771000"
