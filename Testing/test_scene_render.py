"""Rendered PNGs: overlay colours blended at the chosen opacity where the map is high, segment outlines
in the segment colours, centring on the peak, atomic output; and the offscreen 3D screenshot."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from test_scene_support import constant_scan, make_explanation
from XAIMedSlicerLib.scene import (
    add_volume,
    build_scene,
    color_node_rgba,
    create_scene,
    render_views,
    segment_ids,
    slice_view_center,
)
from XAIMedSlicerLib.scene.render import attribution_peak_ras, pixel_of_ras

SCAN_VALUE, WINDOW = 100.0, (0.0, 200.0)


def read_png(path: Path) -> np.ndarray:
    import vtk
    from vtk.util import numpy_support

    reader = vtk.vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    width, height, _ = image.GetDimensions()
    pixels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)
    return pixels[::-1, :, :3].astype(int)


def _scene(direction=None):
    scan = constant_scan(value=SCAN_VALUE, direction=direction)
    explanation = make_explanation(scan)
    ss = create_scene()
    user_scan = add_volume(ss, scan, "scan")
    user_scan.GetDisplayNode().SetAutoWindowLevel(0)
    user_scan.GetDisplayNode().SetWindowLevelMinMax(*WINDOW)
    bundle = build_scene(explanation, ss=ss, image_node=user_scan, closed_surface=False)
    return explanation, bundle


def _plateau_center_ras(explanation) -> np.ndarray:
    k, j, i = np.nonzero(explanation.attribution.array == explanation.attribution.array.max())
    return explanation.attribution.index_to_ras(
        ((i.min() + i.max()) / 2, (j.min() + j.max()) / 2, (k.min() + k.max()) / 2)
    )


def _pixel_ras(slice_node, row: int, col: int, height: int) -> np.ndarray:
    matrix = slice_node.GetXYToRAS()
    xy_to_ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    return (xy_to_ras @ np.array([col, height - 1 - row, 0.0, 1.0]))[:3]


@pytest.mark.parametrize("opacity", [0.5, 0.8])
def test_high_attribution_pixels_show_the_top_colour_blended(tmp_path, opacity):
    theta = np.deg2rad(25.0)
    rotation = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    explanation, bundle = _scene(rotation)
    center = _plateau_center_ras(explanation)
    paths = render_views(bundle, tmp_path, opacity=opacity, center_ras=center)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "overlay_axial.png",
        "overlay_coronal.png",
        "overlay_sagittal.png",
    ]
    top = color_node_rgba(bundle.color_node)[-1, :3] * 255
    grey = (SCAN_VALUE - WINDOW[0]) / (WINDOW[1] - WINDOW[0]) * 255
    expected = opacity * top + (1 - opacity) * grey
    low = color_node_rgba(bundle.color_node)[0, :3] * 255
    for view, path in paths.items():
        pixels = read_png(path)
        height, width, _ = pixels.shape
        assert max(height, width) == 512
        layout = {"axial": "Red", "coronal": "Green", "sagittal": "Yellow"}[view]
        r, c = pixel_of_ras(bundle.ss.slice_node(layout), center, pixels.shape)
        assert abs(r - (height - 1) / 2) <= 1 and abs(c - (width - 1) / 2) <= 1  # centred on the plateau
        patch = pixels[r - 1 : r + 2, c - 1 : c + 2].reshape(-1, 3)
        np.testing.assert_allclose(patch, np.tile(expected, (9, 1)), atol=2.0, err_msg=view)
        assert np.abs(expected - (opacity * low + (1 - opacity) * grey)).max() > 40  # the test can tell
        for node_name in ("Red", "Yellow", "Green"):
            np.testing.assert_allclose(slice_view_center(bundle.ss.slice_node(node_name)), center, atol=1e-4)


def test_segment_outlines_have_segment_colours(tmp_path):
    explanation, bundle = _scene()
    center = _plateau_center_ras(explanation)
    paths = render_views(bundle, tmp_path, opacity=0.5, center_ras=center)
    pixels = read_png(paths["axial"])
    height = pixels.shape[0]
    slice_node = bundle.ss.slice_node("Red")
    labels = explanation.labels
    seg = bundle.segmentation_node.GetSegmentation()
    found = 0
    for segment_id in segment_ids(bundle.segmentation_node):
        segment = seg.GetSegment(segment_id)
        value = int(bundle.segmentation_node.GetSegmentation().GetSegment(segment_id).GetLabelValue())
        colour = np.round(np.array(segment.GetColor()) * 255)
        hits = np.argwhere(np.abs(pixels - colour).max(axis=2) <= 1)
        k_plane = labels.ras_to_index(center)[2]
        if not np.any(labels.array[int(round(k_plane))] == value):
            continue  # this structure does not cross the axial plane
        found += 1
        assert len(hits) > 50, segment.GetName()
        on_boundary = 0
        for row, col in hits[:: max(1, len(hits) // 200)]:
            i, j, k = np.round(labels.ras_to_index(_pixel_ras(slice_node, row, col, height))).astype(int)
            block = labels.array[max(k - 1, 0) : k + 2, max(j - 1, 0) : j + 2, max(i - 1, 0) : i + 2]
            on_boundary += bool(np.any(block == value) and np.any(block != value))
        assert on_boundary >= 0.9 * len(hits[:: max(1, len(hits) // 200)]), segment.GetName()
    assert found >= 2


def test_default_centre_is_the_attribution_peak(tmp_path):
    explanation, bundle = _scene()
    render_views(bundle, tmp_path, opacity=0.5)
    peak = np.asarray(explanation.peak_ras())
    np.testing.assert_allclose(attribution_peak_ras(bundle.attribution_node), peak, atol=1e-4)
    for node_name in ("Red", "Yellow", "Green"):
        np.testing.assert_allclose(slice_view_center(bundle.ss.slice_node(node_name)), peak, atol=1e-4)


def test_rendered_on_real_ct(shared_data, tmp_path):
    """A map peaking deep inside the real liver: the peak pixel is the top colour over the CT's grey."""
    from scipy.ndimage import distance_transform_edt

    from XAIMedSlicerLib.explanation import Explanation
    from XAIMedSlicerLib.io.volumes import read_volume

    ct = read_volume(shared_data("ct/example_ct_sm.nii.gz"))
    seg = read_volume(shared_data("ct/example_seg.nii.gz"))
    liver = np.pad(seg.array == 5, 1)  # the crop's faces count as outside
    depth = distance_transform_edt(liver, sampling=np.array(ct.spacing)[::-1])[1:-1, 1:-1, 1:-1]
    peak = np.array(np.unravel_index(int(np.argmax(depth)), depth.shape))  # [k, j, i], deep in the liver
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in ct.array.shape], indexing="ij"), -1)
    distance = np.linalg.norm((grid - peak) * np.array(ct.spacing)[::-1], axis=-1)
    attribution = ct.with_array(np.exp(-(distance**2) / (2 * 30.0**2)).astype(np.float32))  # flat at the top
    labels = seg.with_array(seg.array.astype(np.int16))
    explanation = Explanation(ct, attribution, False, "gradcam", {}, {}, labels, {5: "liver", 1: "spleen"})
    bundle = build_scene(explanation, closed_surface=False)
    paths = render_views(bundle, tmp_path, opacity=0.6)
    top = color_node_rgba(bundle.color_node)[-1, :3] * 255
    scan_display = bundle.image_node.GetDisplayNode()
    lo, hi = scan_display.GetWindowLevelMin(), scan_display.GetWindowLevelMax()
    value = float(ct.array[tuple(peak)])
    grey = np.clip((value - lo) / (hi - lo), 0, 1) * 255
    expected = 0.6 * top + 0.4 * grey
    peak_ras = ct.index_to_ras(peak[::-1])
    for layout, view in (("Red", "axial"), ("Green", "coronal"), ("Yellow", "sagittal")):
        pixels = read_png(paths[view])
        row, col = pixel_of_ras(bundle.ss.slice_node(layout), peak_ras, pixels.shape)
        np.testing.assert_allclose(pixels[row, col], expected, atol=3.0, err_msg=view)


SCREENSHOT = """
import numpy as np, sys
sys.path.insert(0, {testing!r})
from test_scene_support import make_explanation, constant_scan
from XAIMedSlicerLib.scene import build_scene
from XAIMedSlicerLib.scene.render3d import render_3d
bundle = build_scene(make_explanation(constant_scan()))
render_3d(bundle, {path!r}, size=(320, 240))
"""


def test_3d_screenshot_offscreen(tmp_path):
    """Runs in a child process, so that a broken OpenGL driver fails this test and nothing else."""
    path = tmp_path / "three_d.png"
    script = textwrap.dedent(SCREENSHOT.format(testing=str(Path(__file__).parent), path=str(path)))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    pixels = read_png(path)
    assert pixels.shape == (240, 320, 3)
    lit = pixels.max(axis=2) > 30
    assert 0.01 < lit.mean() < 0.9  # something rendered, not a blank or saturated frame


def test_scene_without_labels_renders_and_saves(tmp_path, oblique_volume):
    from XAIMedSlicerLib.explanation import Explanation
    from XAIMedSlicerLib.scene import load_mrb, save_mrb, volume_from_node

    k, j, i = np.meshgrid(*[np.arange(n) for n in oblique_volume.array.shape], indexing="ij")
    offset = (np.stack([i, j, k], -1) - (12, 15, 9)) * oblique_volume.spacing  # mm along the grid axes
    smooth = np.exp(-(offset**2).sum(-1) / (2 * 6.0**2))  # smooth, so pixels near the peak are near top
    attribution = oblique_volume.with_array(smooth.astype(np.float32))
    explanation = Explanation(oblique_volume, attribution, False, "gradcam", {}, {})
    bundle = build_scene(explanation)
    assert bundle.segmentation_node is None and bundle.table_node is None and bundle.labelmap_node is None
    paths = render_views(bundle, tmp_path, opacity=1.0)
    top_end = np.round(color_node_rgba(bundle.color_node)[-3:, :3] * 255)  # last 3 of 256 entries
    peak = explanation.peak_ras()
    for layout, view in (("Red", "axial"), ("Green", "coronal"), ("Yellow", "sagittal")):
        pixels = read_png(paths[view])
        row, col = pixel_of_ras(bundle.ss.slice_node(layout), peak, pixels.shape)
        # opacity 1: the pure colour of the map's top end (sub-pixel interpolation may give entry 254)
        assert np.abs(top_end - pixels[row, col]).max(axis=1).min() <= 2, (view, pixels[row, col])
    loaded = load_mrb(save_mrb(bundle.ss, tmp_path / "scene.mrb"))
    back = volume_from_node(loaded.scene.GetFirstNodeByName(bundle.attribution_node.GetName()))
    np.testing.assert_allclose(back.ijk_to_ras(), oblique_volume.ijk_to_ras(), atol=1e-4)
