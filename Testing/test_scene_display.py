"""The module's overlay settings on a scene (``scene.apply_display``): the symmetric threshold of signed
maps in rendered slice pixels and in 3D, derived maps made once, and bundles rebuilt from a saved scene."""

from __future__ import annotations

import numpy as np
import pytest

from test_scene_support import constant_scan, make_explanation
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.scene import (
    DIVERGING,
    SEQUENTIAL,
    DisplaySettings,
    add_volume,
    apply_display,
    build_scene,
    bundle_from_node,
    color_node_rgba,
    create_scene,
    exact_rows,
    load_mrb,
    render_views,
    save_mrb,
    segment_ids,
    slice_image_rgb,
    symmetric_threshold,
    volume_from_node,
)
from XAIMedSlicerLib.scene.render import pixel_of_ras
from XAIMedSlicerLib.scene.threshold import LEVELS, THRESHOLD_OF, level_ranges, window_bounds
from XAIMedSlicerLib.scene.volume_rendering import volume_property_colors, volume_property_opacities

SCAN_VALUE, WINDOW = 100.0, (0.0, 200.0)


def signed_bundle(direction=None):
    """A signed map (ramp from -0.6 to 0.3 and a plateau at 1) over a uniform grey scan."""
    scan = constant_scan(value=SCAN_VALUE, direction=direction)
    explanation = make_explanation(scan, signed=True, method="ig")
    ss = create_scene()
    scan_node = add_volume(ss, scan, "scan")
    scan_node.GetDisplayNode().SetAutoWindowLevel(0)
    scan_node.GetDisplayNode().SetWindowLevelMinMax(*WINDOW)
    return explanation, build_scene(explanation, ss=ss, image_node=scan_node, closed_surface=False)


def color_tables_of(node) -> list:
    tables = node.GetScene().GetNodesByClass("vtkMRMLColorTableNode")
    found = [tables.GetItemAsObject(i) for i in range(tables.GetNumberOfItems())]
    return [t for t in found if t.GetAttribute(THRESHOLD_OF) == node.GetID()]


def test_signed_threshold_makes_the_band_around_zero_transparent_in_the_colour_table():
    explanation, bundle = signed_bundle()
    values = explanation.attribution.array
    shown = apply_display(bundle, DisplaySettings(threshold=0.3))
    assert shown is bundle.attribution_node and not shown.GetDisplayNode().GetApplyThreshold()
    t = 0.3 * np.abs(values).max()
    assert symmetric_threshold(shown) == pytest.approx(t)
    table = shown.GetDisplayNode().GetColorNode()
    assert table.GetAttribute(THRESHOLD_OF) == shown.GetID() and table.GetNumberOfColors() == LEVELS
    rgba = color_node_rgba(table)
    # transparent: exactly the display levels whose values all lie inside (-t, t)
    start, end = level_ranges(*window_bounds(shown))
    np.testing.assert_array_equal(rgba[:, 3] == 0, (start > -t) & (end <= t))
    assert 0 < np.count_nonzero(rgba[:, 3] == 0) < LEVELS
    # the colours are the diverging map's
    base = color_node_rgba(bundle.ss.scene.GetFirstNodeByName(DIVERGING))
    np.testing.assert_allclose(rgba[:, :3], base[:, :3])
    # the map's values are not touched
    np.testing.assert_array_equal(volume_from_node(shown, world=False).array, values)


def test_signed_threshold_hides_exactly_the_small_values_in_rendered_slices(tmp_path):
    explanation, bundle = signed_bundle()
    values = explanation.attribution.array
    m = float(np.abs(values).max())
    t, level = 0.3 * m, 2 * m / (LEVELS - 1)  # the window is [-m, m]
    shown = apply_display(bundle, DisplaySettings(threshold=0.3, opacity=1.0))
    shown.GetDisplayNode().SetInterpolate(0)  # each pixel shows its voxel's own value
    k = values.shape[0] // 2 - 1  # an axial slice through the ramp and the plateau
    centre = explanation.attribution.index_to_ras(((values.shape[2] - 1) / 2, (values.shape[1] - 1) / 2, k))
    render_views(bundle, tmp_path, opacity=1.0, center_ras=centre)
    logic, slice_node = bundle.ss.slice_logics["Red"], bundle.ss.slice_node("Red")
    overlay = slice_image_rgb(logic)
    bundle.ss.composite_node("Red").SetForegroundVolumeID(None)
    background = slice_image_rgb(logic)
    hidden = visible = 0
    for j in range(values.shape[1]):
        for i in range(values.shape[2]):
            row, col = pixel_of_ras(
                slice_node, explanation.attribution.index_to_ras((i, j, k)), overlay.shape
            )
            value = abs(float(values[k, j, i]))
            difference = np.abs(overlay[row, col].astype(int) - background[row, col].astype(int)).max()
            if value < t - level:
                assert difference == 0, f"voxel {(i, j, k)} |{value:.3f}| < t={t:.3f} is drawn"
                hidden += 1
            elif value >= t:
                assert difference > 20, f"voxel {(i, j, k)} |{value:.3f}| > t={t:.3f} is hidden"
                visible += 1
    assert hidden > 50 and visible > 50


def test_threshold_off_and_repeated_settings_leave_one_table_per_map():
    _explanation, bundle = signed_bundle()
    node = bundle.attribution_node
    for threshold in (0.2, 0.4, 0.4):
        apply_display(bundle, DisplaySettings(threshold=threshold))
    assert len(color_tables_of(node)) == 1
    apply_display(bundle, DisplaySettings(threshold=0.4, color_map="sequential"))
    base = bundle.ss.scene.GetNodeByID(color_tables_of(node)[0].GetAttribute("XAIMed.threshold_base"))
    assert base.GetName() == SEQUENTIAL
    apply_display(bundle, DisplaySettings(threshold=0.0))
    assert node.GetDisplayNode().GetColorNode().GetName() == DIVERGING
    assert color_tables_of(node) == [] and symmetric_threshold(node) is None


def test_signed_map_in_3d_hides_the_same_band_and_keeps_both_signs():
    _explanation, bundle = signed_bundle()
    shown = apply_display(bundle, DisplaySettings(threshold=0.3, volume_rendering=True))
    display = bundle.ss.volume_rendering_logic.GetFirstVolumeRenderingDisplayNode(shown)
    assert display.GetVisibility() and not display.GetFollowVolumeDisplayNode()
    lower, upper = window_bounds(shown)
    m, t = upper, 0.3 * upper
    probe = np.array([-m, -0.65 * m, -0.31 * m, -0.29 * m, 0.0, 0.29 * m, 0.31 * m, 0.65 * m, m])
    expected = np.where(np.abs(probe) < t, 0.0, (np.abs(probe) - t) / (m - t))
    np.testing.assert_allclose(volume_property_opacities(display, probe), expected, atol=1e-6)
    # colours: the map's colour table at those values (entries are sampled at their centres)
    table = color_node_rgba(bundle.ss.scene.GetFirstNodeByName(DIVERGING))
    centres = lower + (np.arange(len(table)) + 0.5) * (upper - lower) / len(table)
    inside = np.abs(probe) < 0.99 * m
    nearest = np.abs(centres[None, :] - probe[inside, None]).argmin(axis=1)
    got = volume_property_colors(display, probe[inside])
    np.testing.assert_allclose(got, table[nearest, :3], atol=0.02)


def test_unsigned_maps_keep_the_one_sided_threshold_and_following_3d(oblique_volume):
    explanation = make_explanation(oblique_volume)
    bundle = build_scene(explanation, closed_surface=False)
    values = explanation.attribution.array
    shown = apply_display(bundle, DisplaySettings(threshold=0.25, volume_rendering=True, opacity=0.6))
    display = shown.GetDisplayNode()
    assert display.GetApplyThreshold() and color_tables_of(shown) == []
    lo, hi = float(values.min()), float(values.max())
    assert display.GetLowerThreshold() == pytest.approx(lo + 0.25 * (hi - lo), rel=1e-6)
    rendering = bundle.ss.volume_rendering_logic.GetFirstVolumeRenderingDisplayNode(shown)
    assert rendering.GetFollowVolumeDisplayNode()
    assert all(
        bundle.ss.composite_node(v).GetForegroundOpacity() == pytest.approx(0.6) for v in ("Red", "Green")
    )


def test_settings_are_checked_and_read_from_parameter_names():
    with pytest.raises(XAIError, match="colour map"):
        DisplaySettings(color_map="rainbow")
    with pytest.raises(XAIError, match="threshold"):
        DisplaySettings(threshold=1.5)

    class Parameters:  # the parameter node's attribute names, an enum member for the colour map
        class colorMap:  # noqa: N801
            value = "diverging"

        opacity, threshold, showLegend, absoluteValue = 0.4, 0.2, False, True
        volumeRendering, onlyInsideSelected = True, False

    settings = DisplaySettings.from_parameters(Parameters)
    assert settings == DisplaySettings("diverging", 0.4, 0.2, False, True, True, False)


def test_bundles_come_back_from_a_saved_scene_with_their_derived_maps(tmp_path):
    _explanation, bundle = signed_bundle()
    absolute = apply_display(bundle, DisplaySettings(absolute_value=True, threshold=0.2))
    path = save_mrb(bundle.ss, tmp_path / "scene.mrb")
    loaded = load_mrb(path)
    node = loaded.scene.GetNodeByID(bundle.attribution_node.GetID())
    assert node is not None and node.GetName() == bundle.attribution_node.GetName()
    rebuilt = bundle_from_node(node, loaded)
    assert rebuilt.run_name == bundle.run_name and rebuilt.signed
    assert rebuilt.image_node.GetName() == "scan"
    assert exact_rows(rebuilt.table_node) == exact_rows(bundle.table_node) == rebuilt.structures
    assert segment_ids(rebuilt.segmentation_node) == segment_ids(bundle.segmentation_node)
    assert rebuilt.labelmap_node is not None and rebuilt.color_node.GetName() == DIVERGING
    assert [n.GetName() for n in rebuilt.derived_nodes] == [absolute.GetName()]
    # a derived map leads to the same run, and the |map| is reused, not made again
    reloaded_absolute = rebuilt.derived_nodes[0]
    assert bundle_from_node(reloaded_absolute, loaded).attribution_node is node
    count = loaded.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")
    assert apply_display(rebuilt, DisplaySettings(absolute_value=True)) is reloaded_absolute
    assert loaded.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == count
    # nodes of another scene, or no map at all
    with pytest.raises(XAIError, match="not in the given scene"):
        bundle_from_node(bundle.attribution_node, loaded)
    assert bundle_from_node(rebuilt.image_node, loaded) is None
