"""The module's logic (``XAIMedSlicerLib.slicerlogic.ExplainSession``), headless: real MRML (slicer-core),
the real background worker, real networks (a MONAI DenseNet, MeshNet on a real T1 crop), real CT data.

``XAIMedSlicerLogic`` in the module file only holds a session and adds what needs the desktop
application (parameter node, dependency installation), so these tests drive the session directly with an
``ExplainRequest``, which has exactly the parameter node's fields (checked below against the module).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from XAIMedSlicerLib.anatomy.labels import parse_label_names
from XAIMedSlicerLib.anatomy.stats import structure_statistics
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explain import explain
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import read_volume
from XAIMedSlicerLib.scene import (
    SEQUENTIAL,
    add_segmentation,
    add_volume,
    color_node_rgba,
    create_scene,
    diverging_color_node,
    exact_rows,
    get_provenance,
    volume_from_node,
)
from XAIMedSlicerLib.scene.interaction import highlighted_segment, slice_view_center
from XAIMedSlicerLib.scene.threshold import level_ranges, window_bounds
from XAIMedSlicerLib.slicerlogic import ExplainRequest, ExplainSession
from XAIMedSlicerLib.slicerlogic.devices import DeviceProbe
from XAIMedSlicerLib.slicerlogic.requirements import missing_requirements, read_requirements

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "XAIMedSlicer" / "XAIMedSlicer.py"
REQUIREMENTS = REPO / "XAIMedSlicer" / "Resources" / "requirements.txt"
VIEWS = ("Red", "Yellow", "Green")


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


def request(**values) -> ExplainRequest:
    return ExplainRequest(**{"device": "cpu", **values})


def module_parameter_defaults() -> dict:
    """Every field of the module's @parameterNodeWrapper class with its default (unset: None)."""
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    wrapped = [
        c for c in classes.values() if any(ast.unparse(d) == "parameterNodeWrapper" for d in c.decorator_list)
    ]
    assert len(wrapped) == 1
    out = {}
    for field in (n for n in wrapped[0].body if isinstance(n, ast.AnnAssign)):
        if field.value is None:
            out[field.target.id] = None
        elif isinstance(field.value, ast.Attribute):  # an enum member: its value
            members = {
                m.targets[0].id: ast.literal_eval(m.value)
                for m in classes[field.value.value.id].body
                if isinstance(m, ast.Assign)
            }
            out[field.target.id] = members[field.value.attr]
        else:
            out[field.target.id] = ast.literal_eval(field.value)
    return out


def test_request_has_exactly_the_parameter_node_fields_and_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(ExplainRequest)}
    assert fields == module_parameter_defaults()


def test_session_side_loads_without_torch():
    """The session and scene code run inside Slicer's process: no PyTorch there (the worker has it)."""
    code = (
        "import sys, XAIMedSlicerLib.slicerlogic, XAIMedSlicerLib.scene\n"
        "print(sorted(m for m in ('torch', 'monai', 'captum') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_explain_through_the_session_builds_the_scene(tiny_model, scene_with_scan):
    ss, scan_node, scan, labels, user_segmentation = scene_with_scan
    session = ExplainSession(ss)
    before = volume_from_node(scan_node).array.copy()
    p = request(
        inputVolume=scan_node, modelPath=tiny_model, method="ig", igSteps=8, structures=user_segmentation
    )
    messages = []
    outcome, node = session.process(p, timeout=300, on_message=messages.append)
    assert outcome.status == "done", outcome.message
    fractions = [m["fraction"] for m in messages if m.get("type") == "progress"]
    assert len(fractions) > 3 and fractions[-1] == 1.0
    # the map sits on the scan's grid; the user's scan and segmentation are untouched
    assert np.allclose(volume_from_node(node).ijk_to_ras(), scan.ijk_to_ras(), atol=1e-4)
    np.testing.assert_array_equal(volume_from_node(scan_node).array, before)
    assert user_segmentation.GetSegmentation().GetNumberOfSegments() == 2
    # the same numbers as the pipeline run here, and the table equals a direct statistic
    direct = explain(scan, tiny_model, "ig", device="cpu", seed=0, method_params={"steps": 8})
    np.testing.assert_allclose(volume_from_node(node).array, direct.attribution.array, rtol=1e-5, atol=1e-7)
    bundle = session.bundle_for_node(node)
    rows = exact_rows(bundle.table_node)
    expected = structure_statistics(direct.attribution, scan.with_array(labels), {1: "blob", 2: "left band"})
    assert [r["name"] for r in rows] == [r["name"] for r in expected]
    for got, want in zip(rows, expected, strict=True):
        assert got["voxels"] == want["voxels"]
        assert got["positive_share"] == pytest.approx(want["positive_share"], rel=1e-5)
    provenance = get_provenance(node)
    assert provenance["method"]["name"] == "ig" and provenance["method"]["params"]["steps"] == 8
    assert node.GetAttribute("XAIMed.model_sha256") == provenance["model"]["sha256"]
    # the input the module proposes is the user's scan, never a result or a label map
    assert session.default_input_volume() is scan_node


def test_rerun_keeps_earlier_results_and_bundles_come_back_from_the_scene(tiny_model, scene_with_scan):
    ss, scan_node, _scan, _labels, user_segmentation = scene_with_scan
    session = ExplainSession(ss)
    p = request(inputVolume=scan_node, modelPath=tiny_model, structures=user_segmentation)
    _, first = session.process(p, timeout=300)
    first_values = volume_from_node(first).array.copy()
    p.method, p.igSteps = "ig", 4
    _, second = session.process(p, timeout=300)
    assert first.GetID() != second.GetID()
    assert first.GetAttribute("XAIMed.run") != second.GetAttribute("XAIMed.run")
    np.testing.assert_array_equal(volume_from_node(first).array, first_values)
    assert (first.GetAttribute("XAIMed.signed"), second.GetAttribute("XAIMed.signed")) == ("0", "1")
    # a new session (a reopened module) has no bundles in memory: they are rebuilt from node attributes
    original = session.bundle_for_node(second)
    rebuilt = ExplainSession(ss).bundle_for_node(second)
    assert rebuilt is not original and rebuilt.attribution_node is second
    assert rebuilt.table_node is original.table_node
    assert rebuilt.segmentation_node is original.segmentation_node
    assert rebuilt.image_node is scan_node and rebuilt.signed
    assert rebuilt.structures == exact_rows(original.table_node)
    assert ExplainSession(ss).bundle_for_node(first).run_name == first.GetAttribute("XAIMed.run")
    assert session.bundle_for_node(scan_node) is None and session.bundle_for_node(None) is None


def test_overlay_controls_and_structure_navigation(tiny_model, scene_with_scan):
    ss, scan_node, _scan, labels, user_segmentation = scene_with_scan
    session = ExplainSession(ss)
    p = request(
        inputVolume=scan_node, modelPath=tiny_model, method="ig", igSteps=8, structures=user_segmentation
    )
    _, node = session.process(p, timeout=300)
    p.result = node
    bundle = session.bundle_for_node(node)
    values = volume_from_node(node).array
    composites = [ss.composite_node(v) for v in VIEWS]

    # signed map: diverging colours, opacity, and the symmetric threshold |value| < 0.3 max|value|
    p.opacity, p.threshold = 0.7, 0.3
    shown = session.apply_display(bundle, p)
    assert shown is node and all(c.GetForegroundOpacity() == pytest.approx(0.7) for c in composites)
    assert all(c.GetForegroundVolumeID() == node.GetID() for c in composites)
    assert not node.GetDisplayNode().GetApplyThreshold(), "one threshold range cannot hide a band around 0"
    table = node.GetDisplayNode().GetColorNode()
    diverging = diverging_color_node(ss.scene)
    assert table.GetAttribute("XAIMed.threshold_base") == diverging.GetID()
    start, end = level_ranges(*window_bounds(node))
    t = 0.3 * float(np.abs(values).max())
    np.testing.assert_array_equal(color_node_rgba(table)[:, 3] == 0, (start > -t) & (end <= t))
    np.testing.assert_allclose(color_node_rgba(table)[:, :3], color_node_rgba(diverging)[:, :3])

    # |map|: a derived node, one-sided threshold, sequential colours, made once
    p.absoluteValue = True
    absolute = session.apply_display(bundle, p)
    assert absolute is not node
    np.testing.assert_allclose(volume_from_node(absolute).array, np.abs(values), rtol=1e-6)
    display = absolute.GetDisplayNode()
    lo, hi = float(np.abs(values).min()), float(np.abs(values).max())
    assert display.GetApplyThreshold()
    assert display.GetLowerThreshold() == pytest.approx(lo + 0.3 * (hi - lo), rel=1e-5)
    assert session.apply_display(bundle, p) is absolute, "a derived map is made once"
    assert display.GetColorNode().GetName() == SEQUENTIAL
    assert session.bundle_for_node(absolute) is bundle, "the derived map belongs to the same result"

    p.volumeRendering, p.showLegend = True, False
    session.apply_display(bundle, p)
    rendering = ss.volume_rendering_logic.GetFirstVolumeRenderingDisplayNode(absolute)
    assert rendering is not None and rendering.GetVisibility() and rendering.GetFollowVolumeDisplayNode()
    assert not ss.color_logic.GetColorLegendDisplayNode(absolute).GetVisibility()

    # picking the first table row: its segment, the views at its peak, the map only inside it
    segment_ids = session.segments_for_rows(bundle, [0])
    assert len(segment_ids) == 1 and session.rows_for_segments(bundle, segment_ids) == [0]
    row = exact_rows(bundle.table_node)[0]
    p.onlyInsideSelected = True
    assert session.select_rows(bundle, [0], p) == segment_ids
    peak = [row["peak_r"], row["peak_a"], row["peak_s"]]
    for view in VIEWS:
        assert np.allclose(slice_view_center(ss.slice_node(view)), peak, atol=1e-3)
    assert highlighted_segment(bundle) == segment_ids[0]
    masked = ss.scene.GetNodeByID(composites[0].GetForegroundVolumeID())
    assert masked.GetAttribute("XAIMed.masked_to_segment_ids") == segment_ids[0]
    inside = labels == int(row["label"])
    masked_values = volume_from_node(masked).array
    np.testing.assert_allclose(masked_values[inside], np.abs(values)[inside], rtol=1e-6)
    assert not masked_values[~inside].any()
    assert all(c.GetForegroundVolumeID() == masked.GetID() for c in composites)
    np.testing.assert_array_equal(volume_from_node(node).array, values)


def test_box_and_point_targets_from_markups(scene_with_scan, shared_data):
    """A segmentation network (real MeshNet) explained inside a markups ROI and at a clicked point."""
    ss, *_ = scene_with_scan
    crop = t1_block(shared_data, (100, 110, 100), 24)
    scan_node = add_volume(ss, crop, "t1 crop")
    model = shared_data("models/meshnet/model5_gw_ae")
    session = ExplainSession(ss)
    centre = crop.index_to_ras((11.5, 11.5, 11.5))
    roi = ss.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    roi.SetCenter(*centre)
    roi.SetSize(8.0, 8.0, 8.0)
    p = request(inputVolume=scan_node, modelPath=model, targetClass="2", targetRegion="box", targetROI=roi)
    outcome, node = session.process(p, timeout=300)
    assert outcome.status == "done", outcome.message
    provenance = get_provenance(node)
    assert provenance["target"]["region"] == "box" and provenance["target"]["class_index"] == 2
    box = (*(np.array(centre) - 4.0), *(np.array(centre) + 4.0))
    direct = explain(crop, model, "gradcam", 2, region="box", box=box, device="cpu", seed=0)
    np.testing.assert_allclose(volume_from_node(node).array, direct.attribution.array, rtol=1e-5, atol=1e-7)

    point = ss.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "click")
    point.AddControlPoint(*centre)
    p.targetRegion, p.targetPoint = "point", point
    outcome, node = session.process(p, timeout=300)
    assert outcome.status == "done", outcome.message
    assert get_provenance(node)["target"]["region"] == "point"
    p.targetPoint = None
    with pytest.raises(XAIError, match="point"):
        session.start_explain(p)
    p.targetRegion, p.targetSegmentID = "mask", ""
    with pytest.raises(XAIError, match="segment"):
        session.start_explain(p)


def test_structures_from_a_label_map_file_and_from_a_segmentation_network(shared_data, tmp_path):
    ss = create_scene()
    session = ExplainSession(ss)
    ct = read_volume(shared_data("ct/example_ct_sm.nii.gz"))
    ct_node = add_volume(ss, ct, "ct")
    names_file = tmp_path / "names.json"
    names = json.loads(shared_data("ct/class_map_total.json").read_text())
    names_file.write_text(json.dumps(names))
    segmentation = session.import_label_map(shared_data("ct/example_seg.nii.gz"), names_file, ct_node)
    present = {int(v) for v in np.unique(read_volume(shared_data("ct/example_seg.nii.gz")).array) if v}
    seg = segmentation.GetSegmentation()
    assert seg.GetNumberOfSegments() == len(present)
    segment_names = {seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())}
    label_names = parse_label_names(names)
    assert segment_names == {label_names[v] for v in present}

    # a segmentation network run first (MeshNet on a T1 crop) makes the structures
    t1_node = add_volume(ss, t1_block(shared_data, (96, 104, 96), 24), "t1")
    meshnet = shared_data("models/meshnet/model5_gw_ae")
    p = request(inputVolume=t1_node, segmentationModelPath=meshnet)
    job = session.start_segment(p)
    outcome = job.process.wait(timeout=300)
    assert outcome.status == "done", outcome.message
    percent, progress, polled = job.poll()
    assert (percent, progress["stage"], polled) == (100, "write", outcome)
    structures = session.finish_job(job, outcome, p)
    job.cleanup()
    assert not job.folder.root.exists()
    assert p.structures is structures
    got = structures.GetSegmentation()
    got_names = {got.GetNthSegment(i).GetName() for i in range(got.GetNumberOfSegments())}
    colormap = json.loads((meshnet / "colormap3.json").read_text())
    assert got_names and got_names <= set(colormap["labels"][1:])
    for i in range(got.GetNumberOfSegments()):  # the network's own colours, not a palette
        segment = got.GetNthSegment(i)
        index = colormap["labels"].index(segment.GetName())
        want = [colormap[c][index] / 255 for c in "RGB"]
        assert np.allclose(segment.GetColor(), want, atol=1e-3)
    with pytest.raises(XAIError, match="segmentation network"):
        session.start_segment(request(inputVolume=t1_node))


def test_requirements_check_reads_installed_package_metadata(tmp_path):
    wanted = read_requirements(REQUIREMENTS)
    lines = [line.strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()]
    assert wanted == [line for line in lines if line and not line.startswith("#")]
    assert missing_requirements(wanted) == [], "this environment has what the module needs"
    import numpy

    too_new = f"numpy>={int(numpy.__version__.split('.')[0]) + 1}"
    checked = ["numpy>=1.0", too_new, "xaimed-no-such-distribution>=1", "scikit-image>=0.1"]
    assert missing_requirements(checked) == [too_new, "xaimed-no-such-distribution>=1"]


def test_device_probe_answers_in_the_background():
    probe = DeviceProbe().start()
    devices = probe.wait(timeout=120)
    assert devices is not None and devices[0]["device"] == "cpu" and probe.error is None
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert len(probe.gpus) == cuda == len(devices) - 1
