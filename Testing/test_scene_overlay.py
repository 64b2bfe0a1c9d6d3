"""Overlay controls on real display nodes: colour maps, window, threshold, opacity, |map|, masking,
volume rendering that follows the colour map, and re-runs that keep earlier results."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from test_scene_support import make_explanation
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.scene import (
    DIVERGING,
    SEQUENTIAL,
    absolute_value_node,
    add_volume_rendering,
    build_scene,
    color_node_rgba,
    create_scene,
    diverging_color_node,
    get_provenance,
    mask_to_segments,
    segment_id_for_label,
    sequential_color_node,
    set_colormap,
    set_opacity,
    set_threshold,
    volume_from_node,
    xaimed_attributes,
)
from XAIMedSlicerLib.scene.overlay import composite_nodes
from XAIMedSlicerLib.scene.volume_rendering import volume_property_colors, volume_property_opacities


def test_colour_tables_hold_the_published_colour_maps():
    ss = create_scene()
    for node, source in ((sequential_color_node(ss), "inferno"), (diverging_color_node(ss), "RdBu_r")):
        table = color_node_rgba(node)
        assert table.shape == (256, 4)
        reference = matplotlib.colormaps[source](np.linspace(0, 1, 256))
        np.testing.assert_allclose(table, reference, atol=0.5 / 255 + 1e-9)  # stored as 8-bit
    assert sequential_color_node(ss).GetID() == sequential_color_node(ss).GetID()  # one per scene
    middle = color_node_rgba(diverging_color_node(ss))[127:129, :3]
    assert middle.min() > 0.9  # white in the middle, blue low, red high
    low, high = color_node_rgba(diverging_color_node(ss))[[0, -1], :3]
    assert low[2] > low[0] and high[0] > high[2]


def test_unsigned_and_signed_overlay_display(oblique_volume):
    unsigned = build_scene(make_explanation(oblique_volume), closed_surface=False)
    display = unsigned.attribution_node.GetDisplayNode()
    data = unsigned.attribution_node
    values = volume_from_node(data).array
    assert display.GetColorNode().GetName() == SEQUENTIAL
    assert display.GetWindowLevelMin() == pytest.approx(values.min())
    assert display.GetWindowLevelMax() == pytest.approx(values.max())
    signed = build_scene(make_explanation(oblique_volume, signed=True), ss=unsigned.ss, closed_surface=False)
    display = signed.attribution_node.GetDisplayNode()
    extreme = np.abs(volume_from_node(signed.attribution_node).array).max()
    assert display.GetColorNode().GetName() == DIVERGING
    assert display.GetLevel() == pytest.approx(0.0, abs=1e-6)
    assert display.GetWindowLevelMax() == pytest.approx(extreme)
    assert display.GetWindowLevelMin() == pytest.approx(-extreme)
    assert display.GetApplyThreshold() == 0


def test_colour_threshold_opacity_changes(oblique_volume):
    bundle = build_scene(make_explanation(oblique_volume), closed_surface=False)
    node, display = bundle.attribution_node, bundle.attribution_node.GetDisplayNode()
    set_colormap(node, "diverging")
    assert display.GetColorNodeID() == diverging_color_node(bundle.ss).GetID()
    assert display.GetLevel() == pytest.approx(0.0, abs=1e-6)
    set_colormap(node, sequential_color_node(bundle.ss).GetID())
    assert display.GetColorNode().GetName() == SEQUENTIAL
    set_threshold(node, 0.25)
    assert display.GetApplyThreshold() == 1 and display.GetLowerThreshold() == pytest.approx(0.25)
    assert display.GetUpperThreshold() >= volume_from_node(node).array.max()
    set_threshold(node, 0.1, 0.5)
    assert (display.GetLowerThreshold(), display.GetUpperThreshold()) == pytest.approx((0.1, 0.5))
    set_threshold(node, None)
    assert display.GetApplyThreshold() == 0
    set_opacity(bundle.ss, 0.3, node)
    assert all(c.GetForegroundOpacity() == pytest.approx(0.3) for c in composite_nodes(bundle.scene))
    assert display.GetOpacity() == pytest.approx(0.3)
    with pytest.raises(XAIError, match="opacity"):
        set_opacity(bundle.ss, 1.5)
    with pytest.raises(XAIError, match="colour node"):
        set_colormap(node, "vtkMRMLColorTableNodeDoesNotExist")


def test_absolute_value_is_a_new_node(oblique_volume):
    bundle = build_scene(make_explanation(oblique_volume, signed=True), closed_surface=False)
    original = volume_from_node(bundle.attribution_node).array.copy()
    attributes = xaimed_attributes(bundle.attribution_node)
    absolute = absolute_value_node(bundle.ss, bundle.attribution_node)
    assert absolute.GetID() != bundle.attribution_node.GetID()
    np.testing.assert_array_equal(volume_from_node(absolute).array, np.abs(original))
    np.testing.assert_array_equal(volume_from_node(bundle.attribution_node).array, original)
    assert xaimed_attributes(bundle.attribution_node) == attributes
    assert absolute.GetDisplayNode().GetColorNode().GetName() == SEQUENTIAL
    assert get_provenance(absolute) == get_provenance(bundle.attribution_node)
    assert absolute.GetAttribute("XAIMed.derived_from") == bundle.attribution_node.GetID()
    assert absolute.GetAttribute("XAIMed.run") == bundle.run_name
    np.testing.assert_allclose(
        volume_from_node(absolute).ijk_to_ras(), volume_from_node(bundle.attribution_node).ijk_to_ras()
    )


def test_masking_zeroes_outside_chosen_segments_exactly(oblique_volume):
    explanation = make_explanation(oblique_volume)
    bundle = build_scene(explanation, closed_surface=False)
    labelmaps_before = bundle.scene.GetNodesByClass("vtkMRMLLabelMapVolumeNode").GetNumberOfItems()
    original = volume_from_node(bundle.attribution_node).array.copy()
    chosen = [2, 9]
    ids = [segment_id_for_label(bundle.segmentation_node, label) for label in chosen]
    masked = mask_to_segments(bundle.ss, bundle.attribution_node, bundle.segmentation_node, ids)
    inside = np.isin(explanation.labels.array, chosen)
    expected = np.where(inside, explanation.attribution.array, 0.0)
    np.testing.assert_array_equal(volume_from_node(masked).array, expected)
    np.testing.assert_array_equal(volume_from_node(bundle.attribution_node).array, original)
    assert bundle.scene.GetFirstNodeByName("XAIMed temporary mask") is None  # temporaries removed
    assert bundle.scene.GetNodesByClass("vtkMRMLLabelMapVolumeNode").GetNumberOfItems() == labelmaps_before
    assert masked.GetAttribute("XAIMed.masked_to") == "liver;kidney_right"
    assert get_provenance(masked) == get_provenance(bundle.attribution_node)
    assert masked.GetAttribute("XAIMed.run") == bundle.run_name
    assert (
        masked.GetDisplayNode().GetColorNodeID() == bundle.attribution_node.GetDisplayNode().GetColorNodeID()
    )
    with pytest.raises(XAIError, match="segments"):
        mask_to_segments(bundle.ss, bundle.attribution_node, bundle.segmentation_node, ["no such segment"])


def test_volume_rendering_follows_the_colour_map(oblique_volume):
    bundle = build_scene(make_explanation(oblique_volume), closed_surface=False)
    display = add_volume_rendering(bundle)
    assert display.IsA("vtkMRMLVolumeRenderingDisplayNode")
    assert display.GetFollowVolumeDisplayNode()
    assert display.GetVolumeNode().GetID() == bundle.attribution_node.GetID()
    assert bundle.segmentation_node.GetSegmentation().ContainsRepresentation("Closed surface")
    assert bundle.segmentation_node.GetDisplayNode().GetVisibility3D()
    table = color_node_rgba(bundle.color_node)
    low, high = bundle.attribution_node.GetDisplayNode().GetWindowLevelMin(), 1.0
    colours = volume_property_colors(display, [low, high])
    np.testing.assert_allclose(colours, table[[0, -1], :3], atol=2 / 255)
    set_colormap(bundle.attribution_node, "diverging")  # the 3D view follows the slice colour map
    diverging = color_node_rgba(diverging_color_node(bundle.ss))
    np.testing.assert_allclose(
        volume_property_colors(display, [-1.0, 1.0]), diverging[[0, -1], :3], atol=2 / 255
    )
    set_threshold(bundle.attribution_node, 0.5)
    opacities = volume_property_opacities(display, [0.2, 0.9])
    assert opacities[0] == pytest.approx(0.0) and opacities[1] > 0.5


def test_rerun_adds_nodes_and_keeps_earlier_results(oblique_volume):
    first = build_scene(make_explanation(oblique_volume), closed_surface=False)
    snapshot = {
        node.GetID(): (node.GetName(), dict(xaimed_attributes(node)))
        for node in (first.attribution_node, first.segmentation_node, first.table_node, first.image_node)
    }
    first_map = volume_from_node(first.attribution_node).array.copy()
    second = build_scene(make_explanation(oblique_volume, method="ig"), ss=first.ss, closed_surface=False)
    assert second.image_node.GetID() == first.image_node.GetID()  # same scan, reused not copied
    new_ids = {second.attribution_node.GetID(), second.segmentation_node.GetID(), second.table_node.GetID()}
    assert not new_ids & set(snapshot)
    names = [second.attribution_node.GetName(), first.attribution_node.GetName()]
    assert len(set(names)) == 2 and second.run_name != first.run_name
    for node_id, (name, attrs) in snapshot.items():
        node = first.scene.GetNodeByID(node_id)
        assert node is not None and node.GetName() == name and xaimed_attributes(node) == attrs
    np.testing.assert_array_equal(volume_from_node(first.attribution_node).array, first_map)
    assert second.attribution_node.GetAttribute("XAIMed.method") == "ig"
    assert first.attribution_node.GetAttribute("XAIMed.method") == "gradcam"


def test_user_scan_node_is_referenced_not_changed(oblique_volume):
    from XAIMedSlicerLib.scene import add_volume

    ss = create_scene()
    user = add_volume(ss, oblique_volume, "user scan")
    display = user.GetDisplayNode()
    state = (
        user.GetName(),
        display.GetWindow(),
        display.GetLevel(),
        display.GetAutoWindowLevel(),
        user.GetMTime(),
    )
    bundle = build_scene(make_explanation(oblique_volume), ss=ss, image_node=user, closed_surface=False)
    assert bundle.image_node is user
    assert (user.GetName(), display.GetWindow(), display.GetLevel(), display.GetAutoWindowLevel()) == state[
        :4
    ]
    assert user.GetMTime() == state[4]
    np.testing.assert_array_equal(volume_from_node(user).array, oblique_volume.array)
    other = Volume(
        oblique_volume.array[:-1], oblique_volume.spacing, oblique_volume.origin, oblique_volume.direction
    )
    with pytest.raises(XAIError, match="does not match"):
        build_scene(make_explanation(other), ss=ss, image_node=user, closed_surface=False)
