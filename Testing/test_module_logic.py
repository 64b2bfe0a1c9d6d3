"""XAIMedSlicerLogic, headless: real MRML (slicer-core), the real background worker, real networks.

``XAIMedSlicerLogic`` uses no Qt. Its class (with the enums and helpers it needs) is taken from the
module file and run against slicer-core; its Slicer base class is replaced by ``object``, since the only
thing it inherits is parameter-node access, which these tests do not use (the parameters are passed in
as plain attributes, exactly the fields of XAIMedSlicerParameterNode).
"""

from __future__ import annotations

import ast
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from XAIMedSlicerLib.anatomy.stats import structure_statistics
from XAIMedSlicerLib.explain import explain
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import read_volume
from XAIMedSlicerLib.scene import (
    add_segmentation,
    add_volume,
    color_node_rgba,
    create_scene,
    diverging_color_node,
    exact_rows,
    get_provenance,
    volume_from_node,
)
from XAIMedSlicerLib.scene.interaction import slice_view_center

MODULE = Path(__file__).resolve().parents[1] / "XAIMedSlicer" / "XAIMedSlicer.py"
QT_FREE = {"TargetRegion", "ColorMap", "XAIMedSlicerJob", "XAIMedSlicerLogic", "_isSet"}


def load_module_logic() -> types.SimpleNamespace:
    """The Qt-free part of the module file, executed with slicer-core's ``slicer`` and ``vtk``."""
    import slicer
    import vtk

    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    keep = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = {(getattr(node, "module", None) or a.name).split(".")[0] for a in node.names}
            if names <= {
                "enum",
                "logging",
                "os",
                "sys",
                "tempfile",
                "threading",
                "time",
                "pathlib",
                "typing",
            }:
                keep.append(node)
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name in QT_FREE:
            keep.append(node)
    assert {n.name for n in keep if hasattr(n, "name")} == QT_FREE
    namespace = {
        "__file__": str(MODULE),
        "slicer": slicer,
        "vtk": vtk,
        "_": lambda text: text,
        "ScriptedLoadableModuleLogic": object,
    }
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(MODULE), "exec"), namespace)  # noqa: S102
    return types.SimpleNamespace(**{k: namespace[k] for k in QT_FREE})


def parameter_defaults(m) -> dict:
    """Every field of XAIMedSlicerParameterNode with its default (nodes and paths unset)."""
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "XAIMedSlicerParameterNode")
    out = {}
    for field in (n for n in cls.body if isinstance(n, ast.AnnAssign)):
        if field.value is None:
            out[field.target.id] = Path(".") if ast.unparse(field.annotation) == "Path" else None
        elif isinstance(field.value, ast.Attribute):
            out[field.target.id] = getattr(getattr(m, field.value.value.id), field.value.attr)
        else:
            out[field.target.id] = ast.literal_eval(field.value)
    return out


@pytest.fixture(scope="module")
def m():
    return load_module_logic()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from monai.networks.nets import DenseNet

    torch.manual_seed(0)
    net = DenseNet(
        spatial_dims=3, in_channels=1, out_channels=2, init_features=4, growth_rate=4, block_config=(2,)
    )
    path = tmp_path_factory.mktemp("logic") / "tiny.ts"
    torch.jit.script(net.eval()).save(str(path))
    return path


@pytest.fixture
def scene_with_scan():
    """A fresh headless scene with an oblique scan node and a user segmentation of two structures."""
    ss = create_scene()
    rng = np.random.default_rng(1)
    theta = np.deg2rad(-20.0)
    direction = np.array([[1, 0, 0], [0, np.cos(theta), -np.sin(theta)], [0, np.sin(theta), np.cos(theta)]])
    array = rng.normal(0.0, 0.1, (18, 22, 26)).astype(np.float32)
    array[7:11, 9:13, 12:16] += 3.0
    scan = Volume(array, spacing=(1.1, 1.3, 2.2), origin=(-20.0, 15.0, -8.0), direction=direction)
    scan_node = add_volume(ss, scan, "user scan")
    labels = np.zeros(array.shape, dtype=np.uint8)
    labels[5:13, 7:15, 10:18] = 1
    labels[:, :, :6] = 2
    user_segmentation, _ = add_segmentation(
        ss, scan.with_array(labels), {1: "blob", 2: "left band"}, name="user structures", keep_labelmap=False
    )
    return ss, scan_node, scan, labels, user_segmentation


def t1_block(shared_data, start: tuple[int, int, int], size: int) -> Volume:
    """A block of the real T1 (indices i, j, k from ``start``) with its exact geometry."""
    t1 = read_volume(shared_data("brain/t1_crop.nii.gz"))
    i, j, k = start
    block = np.ascontiguousarray(t1.array[k : k + size, j : j + size, i : i + size])
    origin = t1.ijk_to_lps()[:3, :3] @ np.array(start, dtype=float) + np.array(t1.origin)
    return Volume(block, t1.spacing, tuple(origin), t1.direction)


def params(m, **values) -> types.SimpleNamespace:
    fields = parameter_defaults(m)
    unknown = set(values) - set(fields)
    assert not unknown, f"not parameters of the module: {unknown}"
    return types.SimpleNamespace(**{**fields, "device": "cpu", **values})


def test_explain_through_the_module_logic_builds_the_scene(m, tiny_model, scene_with_scan):
    ss, scan_node, scan, labels, user_segmentation = scene_with_scan
    logic = m.XAIMedSlicerLogic(ss)
    before = volume_from_node(scan_node).array.copy()
    p = params(
        m, inputVolume=scan_node, modelPath=tiny_model, method="ig", igSteps=8, structures=user_segmentation
    )
    outcome, node = logic.process(p, timeout=300)
    assert outcome.status == "done", outcome.message
    # the map sits on the scan's grid; the user's scan and segmentation are untouched
    assert np.allclose(volume_from_node(node).ijk_to_ras(), scan.ijk_to_ras(), atol=1e-4)
    np.testing.assert_array_equal(volume_from_node(scan_node).array, before)
    assert user_segmentation.GetSegmentation().GetNumberOfSegments() == 2
    # the same numbers as the pipeline run here, and the table equals a direct statistic
    direct = explain(scan, tiny_model, "ig", device="cpu", seed=0, method_params={"steps": 8})
    np.testing.assert_allclose(volume_from_node(node).array, direct.attribution.array, rtol=1e-5, atol=1e-7)
    bundle = logic.bundleForNode(node)
    rows = exact_rows(bundle.table_node)
    expected = structure_statistics(direct.attribution, scan.with_array(labels), {1: "blob", 2: "left band"})
    assert [r["name"] for r in rows] == [r["name"] for r in expected]
    for got, want in zip(rows, expected, strict=True):
        assert got["voxels"] == want["voxels"]
        assert got["positive_share"] == pytest.approx(want["positive_share"], rel=1e-5)
    provenance = get_provenance(node)
    assert provenance["method"]["name"] == "ig" and provenance["method"]["params"]["steps"] == 8
    assert node.GetAttribute("XAIMed.model_sha256") == provenance["model"]["sha256"]


def test_rerun_keeps_earlier_results_and_bundles_come_back_from_the_scene(m, tiny_model, scene_with_scan):
    ss, scan_node, _scan, _labels, user_segmentation = scene_with_scan
    logic = m.XAIMedSlicerLogic(ss)
    p = params(m, inputVolume=scan_node, modelPath=tiny_model, structures=user_segmentation)
    _, first = logic.process(p, timeout=300)
    first_values = volume_from_node(first).array.copy()
    p.method = "ig"
    p.igSteps = 4
    _, second = logic.process(p, timeout=300)
    assert first.GetID() != second.GetID()
    assert first.GetAttribute("XAIMed.run") != second.GetAttribute("XAIMed.run")
    np.testing.assert_array_equal(volume_from_node(first).array, first_values)
    assert (first.GetAttribute("XAIMed.signed"), second.GetAttribute("XAIMed.signed")) == ("0", "1")
    # after a scene reload the module has no bundles in memory: they are rebuilt from node attributes
    original = logic.bundleForNode(second)
    rebuilt = m.XAIMedSlicerLogic(ss).bundleForNode(second)
    assert rebuilt.table_node is original.table_node
    assert rebuilt.segmentation_node is original.segmentation_node
    assert rebuilt.image_node is scan_node and rebuilt.signed


def test_overlay_controls_and_structure_navigation(m, tiny_model, scene_with_scan):
    ss, scan_node, _scan, labels, user_segmentation = scene_with_scan
    logic = m.XAIMedSlicerLogic(ss)
    p = params(
        m, inputVolume=scan_node, modelPath=tiny_model, method="ig", igSteps=8, structures=user_segmentation
    )
    _, node = logic.process(p, timeout=300)
    bundle = logic.bundleForNode(node)
    values = volume_from_node(node).array
    composites = [ss.composite_node(v) for v in ("Red", "Yellow", "Green")]

    p.opacity, p.threshold = 0.7, 0.3
    shown = logic.applyDisplay(bundle, p)
    assert shown is node and all(c.GetForegroundOpacity() == pytest.approx(0.7) for c in composites)
    assert all(c.GetForegroundVolumeID() == node.GetID() for c in composites)
    assert not node.GetDisplayNode().GetApplyThreshold(), "a signed map is not cut by one threshold range"
    diverging = diverging_color_node(ss.scene)
    assert node.GetDisplayNode().GetColorNodeID() == diverging.GetID()

    p.absoluteValue = True
    absolute = logic.applyDisplay(bundle, p)
    assert absolute is not node
    np.testing.assert_allclose(volume_from_node(absolute).array, np.abs(values), rtol=1e-6)
    display = absolute.GetDisplayNode()
    lo, hi = float(np.abs(values).min()), float(np.abs(values).max())
    assert display.GetApplyThreshold() and display.GetLowerThreshold() == pytest.approx(
        lo + 0.3 * (hi - lo), rel=1e-5
    )
    assert logic.applyDisplay(bundle, p) is absolute, "a derived map is made once"
    assert not np.allclose(color_node_rgba(display.GetColorNode())[-1], color_node_rgba(diverging)[-1])

    p.volumeRendering, p.showLegend = True, False
    logic.applyDisplay(bundle, p)
    rendering = ss.volume_rendering_logic.GetFirstVolumeRenderingDisplayNode(absolute)
    assert rendering is not None and rendering.GetVisibility() and rendering.GetFollowVolumeDisplayNode()
    assert not ss.color_logic.GetColorLegendDisplayNode(absolute).GetVisibility()

    # the first table row: its segment, its peak, and the map only inside it
    segment_ids = logic.segmentsForRows(bundle, [0])
    assert len(segment_ids) == 1 and logic.rowsForSegments(bundle, segment_ids) == [0]
    row = exact_rows(bundle.table_node)[0]
    peak = logic.goToStructure(bundle, 0)
    assert np.allclose(peak, [row["peak_r"], row["peak_a"], row["peak_s"]], atol=1e-6)
    for view in ("Red", "Yellow", "Green"):
        assert np.allclose(slice_view_center(ss.slice_node(view)), peak, atol=1e-3)
    p.onlyInsideSelected = True
    masked = logic.applyDisplay(bundle, p, segment_ids)
    inside = labels == int(row["label"])
    masked_values = volume_from_node(masked).array
    np.testing.assert_allclose(masked_values[inside], np.abs(values)[inside], rtol=1e-6)
    assert not masked_values[~inside].any()
    assert all(c.GetForegroundVolumeID() == masked.GetID() for c in composites)


def test_box_and_point_targets_from_markups(m, scene_with_scan, shared_data, tmp_path):
    """A segmentation network (real MeshNet) explained inside a markups ROI and at a clicked point."""
    ss, *_ = scene_with_scan
    crop = t1_block(shared_data, (100, 110, 100), 24)
    scan_node = add_volume(ss, crop, "t1 crop")
    model = shared_data("models/meshnet/model5_gw_ae")
    logic = m.XAIMedSlicerLogic(ss)
    centre = crop.index_to_ras((11.5, 11.5, 11.5))
    roi = ss.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    roi.SetCenter(*centre)
    roi.SetSize(8.0, 8.0, 8.0)
    p = params(
        m,
        inputVolume=scan_node,
        modelPath=model,
        targetClass="2",
        targetRegion=m.TargetRegion.BOX,
        targetROI=roi,
    )
    outcome, node = logic.process(p, timeout=300)
    assert outcome.status == "done", outcome.message
    provenance = get_provenance(node)
    assert provenance["target"]["region"] == "box" and provenance["target"]["class_index"] == 2
    box = (*(np.array(centre) - 4.0), *(np.array(centre) + 4.0))
    direct = explain(crop, model, "gradcam", 2, region="box", box=box, device="cpu", seed=0)
    np.testing.assert_allclose(volume_from_node(node).array, direct.attribution.array, rtol=1e-5, atol=1e-7)

    point = ss.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "click")
    point.AddControlPoint(*centre)
    p.targetRegion, p.targetPoint = m.TargetRegion.POINT, point
    outcome, node = logic.process(p, timeout=300)
    assert outcome.status == "done", outcome.message
    assert get_provenance(node)["target"]["region"] == "point"
    p.targetPoint = None
    with pytest.raises(ValueError, match="point"):
        logic.startExplain(p)


def test_structures_from_a_label_map_file_and_from_a_segmentation_network(m, shared_data, tmp_path):
    import json

    ss = create_scene()
    logic = m.XAIMedSlicerLogic(ss)
    ct = read_volume(shared_data("ct/example_ct_sm.nii.gz"))
    ct_node = add_volume(ss, ct, "ct")
    names_file = tmp_path / "names.json"
    names = json.loads(shared_data("ct/class_map_total.json").read_text())
    names_file.write_text(json.dumps(names))
    segmentation = logic.importLabelMap(shared_data("ct/example_seg.nii.gz"), names_file, ct_node)
    present = {int(v) for v in np.unique(read_volume(shared_data("ct/example_seg.nii.gz")).array) if v}
    seg = segmentation.GetSegmentation()
    assert seg.GetNumberOfSegments() == len(present)
    segment_names = {seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())}
    from XAIMedSlicerLib.anatomy.labels import parse_label_names

    label_names = parse_label_names(names)
    assert segment_names == {label_names[v] for v in present}

    # a segmentation network run first (MeshNet on a T1 crop) makes the structures
    t1_node = add_volume(ss, t1_block(shared_data, (96, 104, 96), 24), "t1")
    p = params(m, inputVolume=t1_node, segmentationModelPath=shared_data("models/meshnet/model5_gw_ae"))
    job = logic.startSegment(p)
    outcome = job.process.wait(timeout=300)
    assert outcome.status == "done", outcome.message
    structures = logic.finishJob(job, outcome)
    job.cleanup()
    assert not job.folder.root.exists()
    got = structures.GetSegmentation()
    got_names = {got.GetNthSegment(i).GetName() for i in range(got.GetNumberOfSegments())}
    colormap = json.loads((shared_data("models/meshnet/model5_gw_ae") / "colormap3.json").read_text())
    assert got_names and got_names <= set(colormap["labels"][1:])
    for i in range(got.GetNumberOfSegments()):  # the network's own colours, not a palette
        segment = got.GetNthSegment(i)
        index = colormap["labels"].index(segment.GetName())
        want = [colormap[c][index] / 255 for c in "RGB"]
        assert np.allclose(segment.GetColor(), want, atol=1e-3)
