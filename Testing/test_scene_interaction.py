"""Table <-> segments <-> slice views: centring on a structure's peak, highlighting, row lookup."""

from __future__ import annotations

import numpy as np
import pytest

from test_scene_support import NAMES, make_explanation
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.scene import (
    build_scene,
    center_on_structure,
    center_slice_views,
    clear_highlight,
    highlighted_segment,
    row_for_segment,
    segment_for_row,
    segment_ids,
    slice_view_center,
    table_rows,
)
from XAIMedSlicerLib.scene.segmentation import segment_label

TOL = 1e-4


@pytest.fixture
def bundle(oblique_volume):
    return build_scene(make_explanation(oblique_volume), closed_surface=False)


def _slice_nodes(scene):
    nodes = scene.GetNodesByClass("vtkMRMLSliceNode")
    return [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]


def test_table_values_equal_the_rows(bundle, oblique_volume):
    expected = sorted(make_explanation(oblique_volume).structures, key=lambda r: -r["positive_share"])
    assert table_rows(bundle.table_node) == expected  # exact, in share order
    shares = [row["positive_share"] for row in table_rows(bundle.table_node)]
    assert shares == sorted(shares, reverse=True)


def test_scene_starts_centred_on_the_attribution_peak(bundle, oblique_volume):
    peak = make_explanation(oblique_volume).peak_ras()
    nodes = _slice_nodes(bundle.scene)
    assert {n.GetLayoutName() for n in nodes} >= {"Red", "Yellow", "Green"}
    for node in nodes:
        np.testing.assert_allclose(slice_view_center(node), peak, atol=TOL)


@pytest.mark.parametrize("pick", ["row", "label", "name"])
def test_centre_on_structure_puts_every_view_at_its_peak(bundle, pick):
    for row in table_rows(bundle.table_node):
        key = {"row": row, "label": row["label"], "name": row["name"]}[pick]
        ras = center_on_structure(bundle, key)
        peak = np.array([row["peak_r"], row["peak_a"], row["peak_s"]])
        np.testing.assert_allclose(ras, peak, atol=TOL)
        for node in _slice_nodes(bundle.scene):
            np.testing.assert_allclose(slice_view_center(node), peak, atol=TOL)
            # the peak lies in the slice plane: its slice coordinate is 0
            to_slice = np.linalg.inv(_matrix(node.GetSliceToRAS()))
            assert abs((to_slice @ np.append(peak, 1.0))[2]) < TOL
        crosshair = bundle.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        np.testing.assert_allclose(crosshair.GetCrosshairRAS(), peak, atol=TOL)
        assert segment_label(bundle.segmentation_node, highlighted_segment(bundle)) == row["label"]


def _matrix(vtk_matrix) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def test_highlight_dims_other_segments(bundle):
    row = table_rows(bundle.table_node)[-1]
    center_on_structure(bundle, row)
    display = bundle.segmentation_node.GetDisplayNode()
    chosen = highlighted_segment(bundle)
    for segment_id in segment_ids(bundle.segmentation_node):
        expected = 1.0 if segment_id == chosen else 0.25
        assert display.GetSegmentOpacity2DOutline(segment_id) == pytest.approx(expected)
        assert display.GetSegmentOpacity3D(segment_id) == pytest.approx(expected)
    clear_highlight(bundle)
    assert highlighted_segment(bundle) is None
    assert all(display.GetSegmentOpacity2DOutline(s) == 1.0 for s in segment_ids(bundle.segmentation_node))


def test_segment_row_mapping_both_ways(bundle):
    rows = table_rows(bundle.table_node)
    assert len(rows) == len(segment_ids(bundle.segmentation_node)) == len(NAMES)
    for index, row in enumerate(rows):
        segment_id = segment_for_row(bundle, index)
        segment = bundle.segmentation_node.GetSegmentation().GetSegment(segment_id)
        assert segment.GetName() == row["name"]
        assert row_for_segment(bundle, segment_id) == index
    assert row_for_segment(bundle, "not a segment") is None
    with pytest.raises(XAIError, match="row"):
        segment_for_row(bundle, len(rows))
    with pytest.raises(XAIError, match="no structure"):
        center_on_structure(bundle, "spleen")


def test_center_slice_views_on_any_point(bundle):
    point = (3.25, -7.5, 41.125)
    center_slice_views(bundle.ss, point)
    for node in _slice_nodes(bundle.scene):
        np.testing.assert_allclose(slice_view_center(node), point, atol=TOL)
