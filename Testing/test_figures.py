"""Clinician figures (scene/figure.py): orientation letters, where the peak lands, the crop to the body,
the colour bar and the thin outlines, checked on the pixels of the written PNGs.

The phantom: an ellipsoidal "body" (a grey ramp) in a grid twice its size, and an attribution map made
of flat 3x3x3-voxel plateaus: 1.0 at the peak, and 0.4 / 0.55 / 0.7 at markers 6 voxels (15 mm) from
it along known patient or grid directions. At opacity 1 each plateau shows exactly one colour of the
overlay's table, so a marker is found in the picture by its colour alone, wherever it landed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from XAIMedSlicerLib.anatomy.stats import structure_statistics
from XAIMedSlicerLib.explanation import Explanation
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.scene import build_scene, create_scene
from XAIMedSlicerLib.scene.figure import caption_lines, render_figures, top_labels
from XAIMedSlicerLib.scene.figure_geometry import direction_letters
from XAIMedSlicerLib.scene.figure_outline import boundary, draw_outlines

torch.set_num_threads(1)

CENTRE_RAS = np.array([10.0, -20.0, 30.0])
SEMI_AXES = np.array([28.0, 24.0, 20.0])  # body ellipsoid, RAS mm
SHAPE, SPACING = (47, 47, 47), 2.5
MARKER_VALUES = (0.4, 0.55, 0.7)
SIZE = 256
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
# Slicer's standard views: radiological axial/coronal (patient right on the screen's left), sagittal
# with anterior on the left
STANDARD = {
    "axial": {"left": "R", "right": "L", "top": "A", "bottom": "P"},
    "coronal": {"left": "R", "right": "L", "top": "S", "bottom": "I"},
    "sagittal": {"left": "A", "right": "P", "top": "S", "bottom": "I"},
}
EDGES = {"left": (0.0, -1.0), "right": (0.0, 1.0), "top": (-1.0, 0.0), "bottom": (1.0, 0.0)}


def _rot_z(degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    return np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])


# LPS direction matrices: identity (LPS), RAS-stored (NIfTI), flipped (L, A, I) and oblique (20 deg about S)
DIRECTIONS = {
    "LPS": np.eye(3),
    "RAS": np.diag([-1.0, -1.0, 1.0]),
    "flipped": np.diag([1.0, -1.0, -1.0]),
    "oblique": _rot_z(20.0),
}


def grid(direction: np.ndarray) -> Volume:
    """An empty grid centred on CENTRE_RAS (its centre is a voxel centre)."""
    half = SPACING * np.array([(n - 1) / 2 for n in SHAPE])
    origin = LPS_TO_RAS @ CENTRE_RAS - direction @ half
    return Volume(np.zeros(SHAPE, np.float32), (SPACING,) * 3, tuple(origin), direction)


def voxel_ras(volume: Volume) -> np.ndarray:
    """(k, j, i, 3) RAS of every voxel centre."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in volume.array.shape), indexing="ij")
    ijk = np.stack([i, j, k, np.ones_like(i)], axis=-1).astype(float)
    return (ijk @ volume.ijk_to_ras().T)[..., :3]


def in_body(ras: np.ndarray) -> np.ndarray:
    return (((ras - CENTRE_RAS) / SEMI_AXES) ** 2).sum(axis=-1) <= 1.0


def marker_directions(name: str, volume: Volume) -> list[tuple[np.ndarray, str, float]]:
    """(unit RAS direction, the letter a reader must see on that side, distance mm) per marker.

    Axis-aligned grids: patient R, A, S. The oblique grid: its own i, j, k axes; i = LPS (cos 20,
    sin 20, 0) points to patient left and a little posterior ("LP"), j = LPS (-sin 20, cos 20, 0) to
    posterior and a little right ("PR"), k to superior.
    """
    if name != "oblique":
        return [(np.eye(3)[a], "RAS"[a], 6 * SPACING) for a in range(3)]
    axes = LPS_TO_RAS @ volume.direction
    return [(axes[:, a], letters, 6 * SPACING) for a, letters in enumerate(("LP", "PR", "S"))]


def phantom(name: str, with_labels: bool = False) -> Explanation:
    """The body, the peak and marker plateaus on the grid ``DIRECTIONS[name]``."""
    volume = grid(DIRECTIONS[name])
    ras = voxel_ras(volume)
    body = in_body(ras)
    scan = np.where(body, 100.0 + 100.0 * (ras[..., 0] - CENTRE_RAS[0] + SEMI_AXES[0]) / 56.0, 0.0)
    attribution = np.zeros(SHAPE, np.float32)
    centre = np.rint(volume.ras_to_index(CENTRE_RAS)).astype(int)
    points = [(centre, 1.0)]
    for (direction, _, distance), value in zip(marker_directions(name, volume), MARKER_VALUES, strict=True):
        index = volume.ras_to_index(CENTRE_RAS + distance * direction)
        assert np.allclose(index, np.rint(index), atol=1e-6)  # markers sit on voxel centres
        points.append((np.rint(index).astype(int), value))
    for (i, j, k), value in points:
        attribution[k - 1 : k + 2, j - 1 : j + 2, i - 1 : i + 2] = min(value, 0.999)
    attribution[centre[2], centre[1], centre[0]] = 1.0  # the one peak voxel (same colour as its plateau)
    image = volume.with_array(scan.astype(np.float32))
    labels, names, rows = None, {}, []
    if with_labels:
        label_array = np.where(body, np.where(ras[..., 0] > CENTRE_RAS[0], 2, 1), 0).astype(np.int16)
        labels = volume.with_array(label_array)
        names = {1: "left half", 2: "right half"}
        rows = structure_statistics(volume.with_array(attribution), labels, names)
    return Explanation(
        image=image,
        attribution=volume.with_array(attribution),
        signed=False,
        method="gradcam",
        prediction={
            "task": "classification",
            "classes": ["no", "yes"],
            "probabilities": [0.2, 0.8],
            "predicted_class": "yes",
        },  # fmt: skip
        target={"kind": "class_logit", "class_index": 1, "class_name": "yes"},
        labels=labels,
        label_names=names,
        structures=rows,
        provenance={"model": {"name": "phantom-net", "sha256": "cd" * 32}},
    )


def render(explanation: Explanation, out, **kwargs):
    bundle = build_scene(explanation, ss=create_scene(), closed_surface=False)
    # nearest-neighbour display: each pixel shows its voxel's own value (no blended plateau edges)
    bundle.attribution_node.GetDisplayNode().SetInterpolate(0)
    figures = render_figures(bundle, explanation, out, opacity=1.0, size=SIZE, **kwargs)
    return bundle, figures


def read_png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def value_pixels(panel: np.ndarray, figure, value: float) -> np.ndarray:
    """(n, 2) (row, col) of the slice-image pixels showing exactly the table colour of ``value``."""
    bar = figure.colour_bar
    n = len(bar.table)
    index = int(np.clip((value - bar.lower) / (bar.upper - bar.lower) * n, 0, n - 1))
    colours = bar.table[max(0, index - 1) : index + 2].astype(int)
    x0, y0, x1, y1 = figure.layout["slice_box"]
    region = panel[y0:y1, x0:x1]
    distance = np.abs(region[:, :, None, :] - colours[None, None]).max(axis=-1).min(axis=-1)
    rows, cols = np.nonzero(distance <= 2)
    return np.stack([rows + y0, cols + x0], axis=1)


def centroid(pixels: np.ndarray) -> np.ndarray:
    assert len(pixels) >= 4, "the plateau is not visible in the figure"
    return pixels.mean(axis=0)


@pytest.mark.parametrize("name", list(DIRECTIONS))
def test_letters_peak_and_markers_land_where_the_geometry_says(tmp_path, name):
    explanation = phantom(name)
    _, figures = render(explanation, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"figure_{v}.png" for v in sorted(STANDARD)]
    peak = np.asarray(explanation.peak_ras())
    np.testing.assert_allclose(peak, CENTRE_RAS, atol=1e-4)
    markers = marker_directions(name, explanation.image)
    for view, figure in figures.items():
        if name != "oblique":
            assert figure.letters == STANDARD[view], view
        panel = read_png(figure.path)
        mm_per_pixel = float(np.linalg.norm(figure.xy_to_ras[:3, 0]))
        peak_pixel = centroid(value_pixels(panel, figure, 1.0))
        # the peak voxel's centre lands on the pixel the view's geometry gives for it (within 1 px)
        np.testing.assert_allclose(peak_pixel, figure.pixel_of_ras(peak), atol=1.0)
        normal = figure.xy_to_ras[:3, 2] / np.linalg.norm(figure.xy_to_ras[:3, 2])
        seen = 0
        for (direction, letters, distance), value in zip(markers, MARKER_VALUES, strict=True):
            if abs(float(direction @ normal)) > 1e-3:  # not in this view's plane
                assert len(value_pixels(panel, figure, value)) == 0, (view, letters)
                continue
            seen += 1
            offset = centroid(value_pixels(panel, figure, value)) - peak_pixel
            assert np.linalg.norm(offset) == pytest.approx(distance / mm_per_pixel, abs=1.5)
            edge = max(EDGES, key=lambda e: float(np.dot(EDGES[e], offset)))
            assert figure.letters[edge] == letters, (view, edge, figure.letters)
            assert float(np.dot(EDGES[edge], offset)) / np.linalg.norm(offset) > 0.999  # straight out
        assert seen == 2, view


def test_oblique_grid_is_shown_in_its_own_planes_with_oblique_letters(tmp_path):
    explanation = phantom("oblique")
    _, figures = render(explanation, tmp_path)
    axes = LPS_TO_RAS @ explanation.image.direction
    axial = figures["axial"]
    # screen x and y of the axial view are the grid's i and -j axes (Slicer keeps the view's sense)
    np.testing.assert_allclose(axial.xy_to_ras[:3, 0] / np.linalg.norm(axial.xy_to_ras[:3, 0]), axes[:, 0],
                               atol=1e-6)  # fmt: skip
    assert axial.letters == {"left": "RA", "right": "LP", "top": "AL", "bottom": "PR"}
    assert direction_letters(axes[:, 0]) == "LP" and direction_letters(-axes[:, 1]) == "AL"
    # the same grid can still be shown on patient axes when asked
    ras_figures = render_figures(*_rebuilt(explanation), tmp_path / "ras", opacity=1.0, size=SIZE,
                                 align="ras")  # fmt: skip
    assert ras_figures["axial"].letters == STANDARD["axial"]


def _rebuilt(explanation):
    bundle = build_scene(explanation, ss=create_scene(), closed_surface=False)
    return bundle, explanation


@pytest.mark.parametrize("name", ["RAS", "oblique"])
def test_the_body_fills_the_frame_and_is_not_cut(tmp_path, name):
    explanation = phantom(name)
    _, figures = render(explanation, tmp_path)
    for view, figure in figures.items():
        rows, cols = figure.slice_shape
        assert max(rows, cols) == SIZE
        col, row = np.meshgrid(np.arange(cols, dtype=float), np.arange(rows, dtype=float))
        xy = np.stack([col.ravel(), rows - 1 - row.ravel(), np.zeros(col.size), np.ones(col.size)])
        body = in_body((figure.xy_to_ras @ xy)[:3].T).reshape(rows, cols)
        assert body.any()
        # nothing of the body is cut off: the image's border rows and columns are outside it
        assert not (body[0].any() or body[-1].any() or body[:, 0].any() or body[:, -1].any()), view
        # and it fills the frame: its extent is at least 85% of the image along both sides
        r, c = np.nonzero(body)
        assert (r.max() - r.min() + 1) / rows >= 0.85 and (c.max() - c.min() + 1) / cols >= 0.85, view
        # the grid is twice the body's size: the frame shows well under its field of view
        mm_per_pixel = float(np.linalg.norm(figure.xy_to_ras[:3, 0]))
        assert max(rows, cols) * mm_per_pixel < 0.6 * SHAPE[0] * SPACING, view


def test_colour_bar_shows_the_overlay_table_in_order_with_units(tmp_path):
    explanation = phantom("LPS")
    bundle, figures = render(explanation, tmp_path)
    figure = figures["axial"]
    panel = read_png(figure.path)
    bar = figure.layout["colour_bar"]
    (x0, x1), (y0, y1) = bar["x"], bar["rows"]
    assert y1 - y0 >= 100 and x1 - x0 >= 10
    strip = panel[y0 : y1 + 1, (x0 + x1) // 2]
    table = figure.colour_bar.table.astype(int)
    distance = np.abs(strip[:, None, :] - table[None]).max(axis=-1)
    assert distance.min(axis=1).max() == 0  # every row of the bar is a colour of the table
    index = distance.argmin(axis=1)[::-1]  # bottom to top
    assert index[0] == 0 and index[-1] == len(table) - 1 and np.all(np.diff(index) >= 0)
    assert len(np.unique(index)) >= 0.55 * len(table)
    # the bar's top colour is the colour the peak shows in the picture (opacity 1)
    row, col = figure.pixel_of_ras(explanation.peak_ras())
    np.testing.assert_array_equal(panel[row, col], table[-1])
    # the tick labels beside the bar are drawn (text pixels right of the top and bottom ticks)
    for y in (y0, y1):
        assert (panel[y - 4 : y + 5, x1 + 8 : x1 + 60] > 128).any()
    assert "attribution (a.u.)" in figure.colour_bar.title
    assert [t for _, t in figure.colour_bar.ticks] == ["1", "0"]
    lower, upper = bundle.attribution_node.GetDisplayNode().GetWindowLevelMin(), 1.0
    assert (figure.colour_bar.lower, figure.colour_bar.upper) == (lower, upper)


def test_outlines_are_one_pixel_and_only_of_the_top_structures(tmp_path):
    explanation = phantom("LPS", with_labels=True)
    shares = {r["label"]: r["positive_share"] for r in explanation.structures}
    top = max(shares, key=shares.get)
    assert top_labels(explanation.structures, 1) == [top]
    _, plain = render(explanation, tmp_path / "plain", selected=[])
    _, lined = render(explanation, tmp_path / "lined", top_n=1)
    assert lined["axial"].outlined == [top] and plain["axial"].outlined == []
    a, b = read_png(plain["axial"].path), read_png(lined["axial"].path)
    x0, y0, x1, y1 = lined["axial"].layout["slice_box"]
    changed = np.any(a[y0:y1, x0:x1] != b[y0:y1, x0:x1], axis=-1)
    colour = lined["axial"].layout["legend"][0][1]
    assert np.all(b[y0:y1, x0:x1][changed] == colour)
    # thin: no 2x2 block of outline pixels anywhere
    assert not (changed[:-1, :-1] & changed[1:, :-1] & changed[:-1, 1:] & changed[1:, 1:]).any()
    # the outlined structure (x > centre inside the ellipse: half an ellipse in the axial plane) has a
    # one-pixel edge as long as its perimeter: half the ellipse's (Ramanujan) plus the straight cut
    mm = float(np.linalg.norm(lined["axial"].xy_to_ras[:3, 0]))
    a_px, b_px = SEMI_AXES[0] / mm, SEMI_AXES[1] / mm
    h = ((a_px - b_px) / (a_px + b_px)) ** 2
    ellipse = np.pi * (a_px + b_px) * (1 + 3 * h / (10 + np.sqrt(4 - 3 * h)))
    assert changed.sum() == pytest.approx(ellipse / 2 + 2 * b_px, rel=0.25)
    assert lined["axial"].layout["legend"][0][0].startswith(f"outline: {explanation.label_names[top]} (")


def test_draw_outlines_paints_the_region_edge_only():
    values = np.zeros((20, 20), int)
    values[5:15, 4:14] = 3
    values[0:3, 0:3] = 4
    edge = boundary(values, 3)
    assert edge.sum() == 36 and not edge[6:14, 5:13].any()
    rgb = np.full((20, 20, 3), 50, np.uint8)
    out = draw_outlines(rgb, values, {3: (255, 0, 0)})
    assert (np.all(out == (255, 0, 0), axis=-1) == edge).all()
    assert (out[0:3, 0:3] == 50).all()  # label 4 was not chosen


def test_caption_names_method_target_prediction_and_model():
    lines = caption_lines(phantom("LPS"))
    assert lines[0] == "Grad-CAM · target: class yes"
    assert lines[1] == "prediction: yes (p = 0.800)"
    assert lines[2] == f"model: phantom-net (sha256 {'cd' * 6}…)"


def test_a_radiograph_gives_one_figure_in_its_own_plane(tmp_path, shared_data):
    from PIL import Image

    from XAIMedSlicerLib.io.radiograph import read_radiograph

    image, _ = read_radiograph(shared_data("cxr/pa_normal_cc0.jpg"))
    labels = np.zeros(image.array.shape, np.int16)
    names = {1: "right lung", 2: "left lung", 3: "heart"}
    for value, mask in ((1, "RL"), (2, "LL"), (3, "H")):
        labels[0][np.asarray(Image.open(shared_data(f"cxr/{mask}_mask.png")).convert("L")) > 127] = value
    row, col = 400, 600  # inside the left lung mask (the patient's left: the picture's right)
    assert labels[0, row, col] == 2
    attribution = np.zeros(image.array.shape, np.float32)
    attribution[0, row - 6 : row + 7, col - 6 : col + 7] = 0.999
    attribution[0, row, col] = 1.0
    att = image.with_array(attribution)
    rows = structure_statistics(att, image.with_array(labels), names)
    explanation = Explanation(image=image, attribution=att, signed=False, method="gradcam",
                              prediction={"task": "classification", "predicted_class": "effusion"},
                              target={"kind": "class_logit", "class_index": 0, "class_name": "effusion"},
                              labels=image.with_array(labels), label_names=names, structures=rows,
                              provenance={"model": {"name": "densenet"}})  # fmt: skip
    _, figures = render(explanation, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["figure_coronal.png"] and list(figures) == ["coronal"]
    figure = figures["coronal"]
    assert figure.letters == STANDARD["coronal"]
    assert figure.outlined == [2] and figure.layout["legend"][0][0].startswith("outline: left lung (100%")
    panel = read_png(figure.path)
    peak = explanation.peak_ras()
    np.testing.assert_allclose(
        centroid(value_pixels(panel, figure, 1.0)), figure.pixel_of_ras(peak), atol=1.0
    )
    # the radiograph's first column (patient right) is on the picture's left, its top row on top
    left = figure.pixel_of_ras(image.index_to_ras((0, row, 0)))
    right = figure.pixel_of_ras(image.index_to_ras((image.size[0] - 1, row, 0)))
    top = figure.pixel_of_ras(image.index_to_ras((col, 0, 0)))
    assert left[1] < figure.pixel_of_ras(peak)[1] < right[1] and top[0] < figure.pixel_of_ras(peak)[0]


def test_a_signed_map_has_a_symmetric_bar_and_its_negative_end_in_the_picture(tmp_path):
    explanation = phantom("LPS")
    attribution = explanation.attribution.array.copy()
    direction, _, distance = marker_directions("LPS", explanation.image)[0]
    i, j, k = np.rint(explanation.image.ras_to_index(CENTRE_RAS + distance * direction)).astype(int)
    attribution[k - 1 : k + 2, j - 1 : j + 2, i - 1 : i + 2] = -1.0  # the R marker, negative
    explanation.attribution = explanation.attribution.with_array(attribution)
    explanation.signed = True
    _, figures = render(explanation, tmp_path)
    figure = figures["axial"]
    bar = figure.colour_bar
    assert (bar.lower, bar.upper) == (-1.0, 1.0) and [t for _, t in bar.ticks] == ["1", "0", "-1"]
    assert any("signed" in line for line in bar.title) and bar.threshold is None
    panel = read_png(figure.path)
    (x0, x1), (y0, y1) = figure.layout["colour_bar"]["x"], figure.layout["colour_bar"]["rows"]
    np.testing.assert_array_equal(panel[y1, (x0 + x1) // 2], bar.table[0])
    np.testing.assert_array_equal(panel[y0, (x0 + x1) // 2], bar.table[-1])
    negative = centroid(value_pixels(panel, figure, -1.0))
    np.testing.assert_allclose(negative, figure.pixel_of_ras(CENTRE_RAS + distance * direction), atol=1.0)
    assert figure.letters["left"] == "R" and negative[1] < figure.pixel_of_ras(CENTRE_RAS)[1]
