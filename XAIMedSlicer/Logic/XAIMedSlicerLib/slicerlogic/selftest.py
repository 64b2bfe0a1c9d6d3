"""The scenarios behind the module's ``XAIMedSlicerTest`` (run inside 3D Slicer), Qt-free.

Each ``check_*`` runs one real scenario (a built oblique scan, a tiny MONAI DenseNet saved as
TorchScript, the real background worker, a real study database) and returns the measured numbers;
the module's test methods assert on them, and ``Testing/test_slicerlogic_selftest.py`` runs the same
scenarios headless with slicer-core. PyTorch is imported inside functions only.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..geometry.volume import Volume

# what each measured value must be for the scenario to pass (the module's test and Testing/ use these)
CRITERIA = {
    "status": lambda v: v == "done",
    "progress_messages": lambda v: v > 3,
    "last_fraction": lambda v: v == 1.0,
    "grid_error_mm": lambda v: v < 1e-4,
    "input_unchanged": bool,
    "role": lambda v: v == "attribution",
    "method_matches": bool,
    "difference_to_direct": lambda v: v < 1e-5,
    "new_node": bool,
    "first_unchanged": bool,
    "rows": lambda v: v == 2,
    "alpha_matches_threshold": bool,
    "opacity": lambda v: abs(v - 0.7) < 1e-6,
    "foreground_is_shown": bool,
    "absolute_error": lambda v: v == 0.0,
    "row_round_trip": bool,
    "centre_error_mm": lambda v: v < 1e-3,
    "cancel_seconds": lambda v: v < 2.0,
    "cancel_status": lambda v: v == "cancelled",
    "output_left": lambda v: not v,
    "crash_status": lambda v: v == "failed",
    "crash_node": lambda v: v is None,
    "crash_message": lambda v: "crashed" in v,
    "voxels_equal": bool,
    "codes": lambda v: v == ["missed"],
}


def failures(result: dict) -> list[str]:
    """``key=value`` of every measured value in ``result`` that misses its criterion."""
    return [f"{k}={result[k]!r}" for k, ok in CRITERIA.items() if k in result and not ok(result[k])]


def test_scan() -> Volume:
    """A 32x28x24 oblique scan (15 degrees about S) with a bright blob; spacing 1.2, 0.9, 2.0 mm."""
    array = np.random.default_rng(0).normal(0.0, 0.1, (24, 28, 32)).astype(np.float32)  # [k, j, i]
    array[10:14, 12:16, 18:22] += 3.0
    c, s = np.cos(np.deg2rad(15.0)), np.sin(np.deg2rad(15.0))
    ras = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) * np.array([1.2, 0.9, 2.0])
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3], ijk_to_ras[:3, 3] = ras, (-12.0, 8.0, 30.0)
    return Volume.from_ras_affine(array, ijk_to_ras)


def tiny_model(folder: str | Path) -> Path:
    """A MONAI DenseNet (2 classes, fixed random weights, seed 0) saved as TorchScript in ``folder``."""
    import torch
    from monai.networks.nets import DenseNet

    torch.manual_seed(0)
    net = DenseNet(
        spatial_dims=3, in_channels=1, out_channels=2, init_features=4, growth_rate=4, block_config=(2,)
    )
    path = Path(folder) / "tiny_densenet.ts"
    torch.jit.script(net.eval()).save(str(path))
    return path


def add_test_case(ss, folder) -> tuple[object, Path]:
    """(scan node, model path) of the test case in the scene ``ss``."""
    from ..scene.volumes import add_volume

    return add_volume(ss, test_scan(), "XAIMedTestScan"), tiny_model(folder)


def check_explain(session, p) -> dict:
    """Explain in the background worker; the map against the scan's grid and a direct ``explain`` call."""
    from ..explain import explain
    from ..scene.volumes import volume_from_node

    before = volume_from_node(p.inputVolume).array.copy()
    messages = []
    outcome, node = session.process(p, on_message=messages.append, timeout=600)
    out = {"status": outcome.status, "message": outcome.message}
    if node is None:
        return out
    fractions = [m["fraction"] for m in messages if m.get("type") == "progress"]
    scan, result = volume_from_node(p.inputVolume), volume_from_node(node)
    direct = explain(scan, p.modelPath, p.method, device="cpu", seed=0)
    return {
        **out,
        "progress_messages": len(fractions),
        "last_fraction": fractions[-1] if fractions else None,
        "grid_error_mm": float(np.abs(result.ijk_to_ras() - scan.ijk_to_ras()).max()),
        "input_unchanged": bool(np.array_equal(scan.array, before)),
        "role": node.GetAttribute("XAIMed.role"),
        "method": node.GetAttribute("XAIMed.method"),
        "method_matches": node.GetAttribute("XAIMed.method") == p.method,
        "difference_to_direct": float(np.abs(result.array - direct.attribution.array).max()),
        "node": node,
    }


def test_labels(shape) -> np.ndarray:
    """Two structures on the test scan's grid: a box around the blob (1) and a band at low i (2)."""
    labels = np.zeros(shape, np.uint8)
    labels[8:16, 10:18, 16:24] = 1
    labels[:, :, :8] = 2
    return labels


def check_display(session, p, labels: np.ndarray | None = None, first=None) -> dict:
    """Two runs (Grad-CAM, or its result ``first``, then IG with structures): earlier results kept,
    threshold, |map|, navigation."""
    from ..scene.segmentation import add_segmentation
    from ..scene.threshold import level_ranges, window_bounds
    from ..scene.volumes import volume_from_node

    if first is None:
        outcome, first = session.process(p, timeout=600)
    first_array = volume_from_node(first).array.copy()
    scan = volume_from_node(p.inputVolume)
    labels = test_labels(scan.array.shape) if labels is None else labels
    p.structures, _ = add_segmentation(session.ss, scan.with_array(labels), {1: "blob", 2: "band"})
    p.method = "ig"
    outcome, node = session.process(p, timeout=600)
    bundle = session.bundle_for_node(node)
    p.opacity, p.threshold = 0.7, 0.25
    shown = session.apply_display(bundle, p)
    values = volume_from_node(node).array
    table = shown.GetDisplayNode().GetColorNode().GetLookupTable()
    start, end = level_ranges(*window_bounds(shown))
    t = 0.25 * np.abs(values).max()
    alpha = np.array([table.GetTableValue(i)[3] for i in range(len(start))])
    composite = next(iter(session.ss.slice_logics.values())).GetSliceCompositeNode()
    out = {
        "status": outcome.status,
        "message": outcome.message,
        "new_node": first.GetID() != node.GetID(),
        "first_unchanged": bool(np.array_equal(volume_from_node(first).array, first_array)),
        "rows": bundle.table_node.GetNumberOfRows(),
        "alpha_matches_threshold": bool(np.array_equal(alpha == 0, (start > -t) & (end <= t))),
        "opacity": composite.GetForegroundOpacity(),
        "foreground_is_shown": composite.GetForegroundVolumeID() == shown.GetID(),
    }
    p.absoluteValue = True
    shown = session.apply_display(bundle, p)
    out["absolute_error"] = float(np.abs(volume_from_node(shown).array - np.abs(values)).max())
    segment_ids = session.segments_for_rows(bundle, [0])
    out["row_round_trip"] = session.rows_for_segments(bundle, segment_ids) == [0]
    peak = session.go_to_structure(bundle, 0)
    from ..scene.interaction import slice_view_center

    centres = [slice_view_center(logic.GetSliceNode()) for logic in session.ss.slice_logics.values()]
    out["centre_error_mm"] = float(max(np.abs(c - peak).max() for c in centres))
    return out


def check_cancel_and_crash(session, p) -> dict:
    """Cancel an IG run once it is explaining (seconds to stop), then a worker segfault is a clean failure."""
    p.method, p.igSteps, p.chunkSize = "ig", 512, 1
    job = session.start_explain(p)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and job.process.last_progress.get("stage") != "explain":
        job.process.poll()
        time.sleep(0.05)
    start = time.monotonic()
    job.process.cancel()
    outcome = job.process.wait(timeout=10)
    out = {
        "cancel_seconds": time.monotonic() - start,
        "cancel_status": outcome.status,
        "output_left": job.folder.out_dir.exists(),
    }
    job.cleanup()
    outcome, node = session.process(p, fault="segfault", timeout=300)
    return {**out, "crash_status": outcome.status, "crash_node": node, "crash_message": outcome.message}


def check_annotation(ss, folder, scan_node) -> dict:
    """Paint a box into a drawing, save it to a new study, read it back: voxels and geometry."""
    import slicer
    import vtk

    from ..scene.volumes import volume_from_node
    from .annotate import AnnotationController

    controller = AnnotationController(ss)
    controller.open_study(Path(folder) / "selftest.sqlite", methods=["gradcam"])
    drawing = controller.new_drawing(scan_node)
    segment_id = controller.add_region(drawing, "missed")
    stroke = slicer.vtkOrientedImageData()
    matrix = vtk.vtkMatrix4x4()
    scan_node.GetIJKToRASMatrix(matrix)
    stroke.SetImageToWorldMatrix(matrix)
    stroke.SetExtent(18, 21, 12, 15, 10, 13)  # i, j, k: the blob
    stroke.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    stroke.GetPointData().GetScalars().Fill(1)
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    logic.SetBinaryLabelmapToSegment(stroke, drawing, segment_id, logic.MODE_MERGE_MASK)
    saved = controller.save(drawing, scan_node, case_id="selftest", method="gradcam", reader="R1")
    annotation = controller.study.load_annotation(saved.annotation_id)
    expected = np.zeros(annotation.labels.array.shape, bool)
    expected[10:14, 12:16, 18:22] = True
    scan = volume_from_node(scan_node)
    controller.close()
    return {
        "voxels_equal": bool(np.array_equal(annotation.mask("missed"), expected)),
        "grid_error_mm": float(np.abs(annotation.labels.ijk_to_ras() - scan.ijk_to_ras()).max()),
        "codes": [s.category for s in annotation.segments],
    }
