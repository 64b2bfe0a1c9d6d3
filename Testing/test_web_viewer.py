"""The web viewer in a real browser (Debian's Chromium) on a real CT crop with a planted map.

The map is two Gaussian blobs centred in the liver (peak 1.0) and the spleen (peak 0.6). What is
asserted is what a person sees: the views' pixels (lossless PNG frames), located through the slice
geometry the server reports (XYToRAS of each slice node).
"""

from __future__ import annotations

import numpy as np
import pytest

from test_web_support import (
    PLANTED,
    RADIUS_MM,
    SIGMA_MM,
    browser_page,
    coloured,
    geometry,
    pixel_ras,
    planted_case,
    ras_to_pixel,
    set_field,
    view_image,
    viewer_server,
    wait_until,
)

SLICE_TAGS = ("Red", "Green", "Yellow")
LIVER, SPLEEN = PLANTED[0][0], PLANTED[1][0]


@pytest.fixture(scope="module")
def viewer(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    spleen_only = planted_case(shared_data, folder / "spleen-only", planted=PLANTED[1:])  # map B
    case = planted_case(shared_data, folder / "result")  # map A, shown
    args = [
        "--image",
        str(case["scan"]),
        "--result",
        str(spleen_only["result"]),
        "--result",
        str(case["result"]),
    ]
    with viewer_server(*args) as (url, _process):
        with browser_page(url) as page:
            yield page, case


def _switch(page, element_id: str, on: bool) -> None:
    box = page.locator(f"#{element_id}")
    if box.is_checked() != on:
        box.check() if on else box.uncheck()


def _plain(page) -> None:
    """Outlines, in-view legends, orientation letters and captions off: every coloured pixel left is the
    overlay."""
    _switch(page, "xaimed-outlines", False)
    _switch(page, "xaimed-legend", False)
    _switch(page, "xaimed-view_text", False)


def _click_row(page, name: str) -> None:
    page.locator("#xaimed-structures tbody tr", has_text=name).first.click()


def _centre_of(page, ras) -> bool:
    """Whether every slice view's plane passes through ``ras`` (1e-3 mm) with ``ras`` at its centre
    pixel (Slicer centres a view on a pixel corner: half a pixel either way)."""
    g = geometry(page)
    for tag in SLICE_TAGS:
        w, h = g[tag]["size"]
        column, row, z = ras_to_pixel(g, tag, ras)
        if abs(z) > 1e-3 or abs(column - (w - 1) / 2) > 1.0 or abs(row - (h - 1) / 2) > 1.0:
            return False
    return True


def _expected_blobs(g, tag, case, threshold_value):
    """(column, row, visible radius in pixels) of each blob that the view's plane cuts above threshold."""
    mm_per_pixel = float(np.linalg.norm(np.asarray(g[tag]["xy_to_ras"]).reshape(4, 4)[:3, 0]))
    out = []
    for label, peak in PLANTED:
        column, row, z = ras_to_pixel(g, tag, case["centres"][label])
        if threshold_value >= peak:
            continue
        # value at in-plane distance r: peak * exp(-(r^2 + z^2) / 2 sigma^2), cut at RADIUS_MM
        reach2 = min(RADIUS_MM**2, 2 * SIGMA_MM**2 * np.log(peak / threshold_value)) - z**2
        if reach2 > 0:
            out.append((column, row, np.sqrt(reach2) / mm_per_pixel, mm_per_pixel))
    return out


def _check_overlay(page, case, threshold_value) -> dict:
    """Coloured pixels only within the expected discs (one voxel of slack), and the discs filled."""
    g = geometry(page)
    counts = {}
    for tag in SLICE_TAGS:
        mask = coloured(view_image(page, tag))
        blobs = _expected_blobs(g, tag, case, threshold_value)
        rows, columns = np.nonzero(mask)
        allowed = np.zeros(len(rows), bool)
        for column, row, radius, mm_per_pixel in blobs:
            slack = 3.0 / mm_per_pixel + 1.5  # one 3 mm voxel of interpolation, and pixel centres
            allowed |= (columns - column) ** 2 + (rows - row) ** 2 <= (radius + slack) ** 2
            disc = (np.arange(mask.shape[1])[None, :] - column) ** 2 + (
                np.arange(mask.shape[0])[:, None] - row
            ) ** 2 <= max(radius - slack, 0) ** 2
            near = (columns - column) ** 2 + (rows - row) ** 2 <= (radius + slack) ** 2
            filled = mask[disc].mean() > 0.95 if disc.any() else near.any()
            assert filled, f"{tag}: the blob at ({column:.0f}, {row:.0f}) is not drawn"
        assert allowed.all(), f"{tag}: {int((~allowed).sum())} overlay pixels outside the planted blobs"
        counts[tag] = int(mask.sum())
    return counts


def test_planted_map_appears_at_its_ras_point_in_each_slice_view_and_nowhere_else(viewer):
    page, case = viewer
    _plain(page)
    set_field(page, "xaimed-threshold", 0.1)
    set_field(page, "xaimed-opacity", 0.5)
    _click_row(page, case["names"][LIVER])
    wait_until(lambda: _centre_of(page, case["centres"][LIVER]))
    counts = wait_until(lambda: _check_overlay(page, case, 0.1), timeout=20)
    # the liver blob is cut through its centre in all three views: a full disc each
    assert all(count > 0 for count in counts.values())
    for tag in SLICE_TAGS:
        column, row, z = ras_to_pixel(geometry(page), tag, case["centres"][LIVER])
        assert abs(z) < 1e-3
        mask = coloured(view_image(page, tag))
        rows, columns = np.nonzero(mask)
        near = (columns - column) ** 2 + (rows - row) ** 2 < 30**2
        # the blob's pixels are centred on the planted point (to 1.5 pixels)
        assert abs(columns[near].mean() - column) < 1.5 and abs(rows[near].mean() - row) < 1.5, tag


def test_table_click_moves_every_view_to_the_structure_peak(viewer):
    page, case = viewer
    _plain(page)
    set_field(page, "xaimed-threshold", 0.1)
    spleen_row = next(r for r in case["explanation"].structures if r["label"] == SPLEEN)
    peak = np.array([spleen_row["peak_r"], spleen_row["peak_a"], spleen_row["peak_s"]])
    np.testing.assert_allclose(peak, case["centres"][SPLEEN], atol=1e-4)  # the blob's centre voxel
    _click_row(page, case["names"][SPLEEN])
    wait_until(lambda: _centre_of(page, peak))
    row = page.locator("#xaimed-structures tbody tr", has_text=case["names"][SPLEEN]).first
    assert "bg-primary" in (row.get_attribute("class") or "")
    assert case["names"][SPLEEN] in page.locator("#xaimed-status").text_content()
    # now the spleen blob sits in the middle of every slice view, the liver blob (18 mm away) in none
    wait_until(lambda: _check_overlay(page, case, 0.1), timeout=20)
    g = geometry(page)
    for tag in SLICE_TAGS:
        w, h = g[tag]["size"]
        mask = coloured(view_image(page, tag))
        assert mask[h // 2 - 2 : h // 2 + 3, w // 2 - 2 : w // 2 + 3].all(), tag


def test_threshold_hides_the_weaker_blob_and_opacity_blends_linearly(viewer):
    page, case = viewer
    _plain(page)
    _click_row(page, case["names"][SPLEEN])
    wait_until(lambda: _centre_of(page, case["centres"][SPLEEN]))
    set_field(page, "xaimed-opacity", 0.5)
    set_field(page, "xaimed-threshold", 0.1)
    wait_until(lambda: all(coloured(view_image(page, t)).sum() > 20 for t in SLICE_TAGS))
    # threshold 0.7 of the map's range (0..1) is above the spleen blob's peak 0.6: it disappears
    set_field(page, "xaimed-threshold", 0.7)
    wait_until(lambda: all(coloured(view_image(page, t)).sum() == 0 for t in SLICE_TAGS))
    _click_row(page, case["names"][LIVER])
    wait_until(lambda: _centre_of(page, case["centres"][LIVER]))
    wait_until(lambda: _check_overlay(page, case, 0.7), timeout=20)  # the liver's core stays, smaller

    set_field(page, "xaimed-threshold", 0.1)
    centre = {t: ras_to_pixel(geometry(page), t, case["centres"][LIVER]) for t in SLICE_TAGS}

    def centre_pixels():
        return {t: view_image(page, t)[int(round(r)), int(round(c))] for t, (c, r, _z) in centre.items()}

    def blended(opacity):
        def check():
            pixels = centre_pixels()
            spreads = [int(np.ptp(p)) for p in pixels.values()]
            if opacity == 0.0:
                return pixels if max(spreads) == 0 else None
            if min(spreads) == 0:
                return None
            if opacity == 0.5 and any((pixels[t] == seen[1.0][t]).all() for t in pixels):
                return None  # still the frame of opacity 1
            return pixels

        return check

    seen = {}
    for opacity in (0.0, 1.0, 0.5):
        set_field(page, "xaimed-opacity", opacity)
        seen[opacity] = wait_until(blended(opacity), timeout=20)
    from XAIMedSlicerLib.scene import SEQUENTIAL, colormap_rgba

    top = colormap_rgba(SEQUENTIAL)[-1, :3] * 255
    for tag in SLICE_TAGS:
        grey, colour, half = (seen[o][tag].astype(float) for o in (0.0, 1.0, 0.5))
        assert np.ptp(grey) == 0  # the scan alone is grey
        # opacity 1: the colour map's entry of the peak value 1.0 (the top of the map's window)
        np.testing.assert_allclose(colour, top, atol=4)
        np.testing.assert_allclose(half, (grey + colour) / 2, atol=3)  # alpha blending at 0.5


def _other_structure_pixel(page, case, exclude: int):
    """(column, row, label) of the axial view's pixel nearest its centre that lies deep inside a listed
    structure other than ``exclude`` (by the label map the result carries)."""
    from scipy import ndimage

    from XAIMedSlicerLib.io.volumes import read_volume

    labels = read_volume(case["result"] / "labels.nrrd")
    listed = {r["label"] for r in case["explanation"].structures}
    g = geometry(page)
    w, h = g["Red"]["size"]
    grid = sorted(
        ((c, r) for c in range(5, w - 5, 6) for r in range(5, h - 5, 6)),
        key=lambda p: (p[0] - w / 2) ** 2 + (p[1] - h / 2) ** 2,
    )
    for column, row in grid:
        i, j, k = np.round(labels.ras_to_index(pixel_ras(g, "Red", column, row))).astype(int)
        if not (0 <= i < labels.array.shape[2] and 0 <= j < labels.array.shape[1]):
            continue
        label = int(labels.array[k, j, i])
        if label in listed and label != exclude:
            if ndimage.binary_erosion(labels.array[k] == label, iterations=2)[j, i]:
                return column, row, label
    raise AssertionError("no other structure in the axial view")


def _click_axial(page, column, row) -> None:
    box = page.locator("img").nth(3).bounding_box()  # the axial view (Quad View: last)
    page.mouse.click(box["x"] + column + 0.5, box["y"] + row + 0.5)


def test_click_in_a_view_selects_the_structure_under_it(viewer):
    page, case = viewer
    _click_row(page, case["names"][SPLEEN])
    wait_until(lambda: _centre_of(page, case["centres"][SPLEEN]))
    column, row, label = _other_structure_pixel(page, case, SPLEEN)
    _click_axial(page, column, row)
    name = case["names"][label]
    wait_until(lambda: _status_is(page, f"selected {name}"), timeout=20)
    table_row = page.locator("#xaimed-structures tbody tr", has_text=name).first
    assert "bg-primary" in (table_row.get_attribute("class") or "")
    assert _centre_of(page, case["centres"][SPLEEN])  # a click selects; it does not move the views


def test_only_inside_the_selected_structure_masks_the_map(viewer):
    page, case = viewer
    _plain(page)
    set_field(page, "xaimed-threshold", 0.1)
    _click_row(page, case["names"][SPLEEN])
    wait_until(lambda: _centre_of(page, case["centres"][SPLEEN]))
    _switch(page, "xaimed-only_inside", True)
    try:
        g = geometry(page)
        w, h = g["Red"]["size"]

        def blob_at_centre():
            return bool(
                coloured(view_image(page, "Red"))[h // 2 - 2 : h // 2 + 3, w // 2 - 2 : w // 2 + 3].all()
            )

        wait_until(blob_at_centre, timeout=20)  # inside the spleen: the spleen's blob stays
        column, row, label = _other_structure_pixel(page, case, SPLEEN)
        _click_axial(page, column, row)  # select another structure: the spleen's blob is outside it
        wait_until(lambda: _status_is(page, f"selected {case['names'][label]}"), timeout=20)
        wait_until(lambda: coloured(view_image(page, "Red")).sum() == 0, timeout=20)
        _click_axial(page, w // 2, h // 2)  # the spleen again
        wait_until(blob_at_centre, timeout=20)
    finally:
        _switch(page, "xaimed-only_inside", False)


def _status_is(page, text: str) -> bool:
    return (page.locator("#xaimed-status").text_content() or "").strip() == text


def test_side_by_side_maps_share_the_slice_position(viewer):
    page, case = viewer
    _plain(page)
    set_field(page, "xaimed-threshold", 0.1)
    _click_row(page, case["names"][LIVER])
    wait_until(lambda: _centre_of(page, case["centres"][LIVER]))
    page.locator("#xaimed-compare").click(force=True)
    page.get_by_role("option", name="XAIMed planted #1", exact=True).click()  # the spleen-only map B
    page.keyboard.press("Escape")

    def same_plane():
        g = geometry(page)
        if "Compare" not in g or page.locator("img").count() != 2:
            return None
        a, b = (np.asarray(g[t]["xy_to_ras"]) for t in ("Red", "Compare"))
        return g if g["Red"]["size"] == g["Compare"]["size"] and np.abs(a - b).max() < 1e-4 else None

    def centre_coloured(index, g):
        w, h = g["Red"]["size"]
        import io

        from PIL import Image

        shot = page.locator("img").nth(index).screenshot()
        pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
        return bool(coloured(pixels)[h // 2 - 2 : h // 2 + 3, w // 2 - 2 : w // 2 + 3].all())

    g = wait_until(same_plane, timeout=30)
    # at the liver's peak: map A has its liver blob, map B (spleen only) nothing
    wait_until(lambda: centre_coloured(0, g) and not centre_coloured(1, g), timeout=20)
    _click_row(page, case["names"][SPLEEN])
    wait_until(lambda: _centre_of(page, case["centres"][SPLEEN]))
    g = wait_until(same_plane, timeout=30)  # B followed A to the spleen's peak
    wait_until(lambda: centre_coloured(0, g) and centre_coloured(1, g), timeout=20)
    page.locator("#xaimed-compare").locator("xpath=ancestor::div[contains(@class,'v-field')]").locator(
        ".v-field__clearable"
    ).click()
    wait_until(lambda: page.locator("img").count() == 4 and "Compare" not in geometry(page), timeout=30)


def test_painted_disagreement_is_saved_in_the_study_with_exact_geometry(viewer, tmp_path, shared_data):
    from test_web_support import choose, text_of
    from XAIMedSlicerLib.io.volumes import read_volume
    from XAIMedSlicerLib.study.store import CaseSpec, Study

    page, case = viewer
    db = tmp_path / "study.sqlite"
    attribution = case["result"] / "attribution.nrrd"
    study = Study.create(db, name="web", methods=["planted"], seed=0)
    study.add_cases([CaseSpec("ct1", str(case["scan"]), "", {}, {"planted": str(attribution)})])
    study.close()
    _click_row(page, case["names"][LIVER])
    wait_until(lambda: _centre_of(page, case["centres"][LIVER]))
    for key, value in (("study_path", db), ("case_id", "ct1"), ("reader", "r1"), ("note", "not the liver")):
        page.locator(f"#xaimed-{key}").fill(str(value))
    set_field(page, "xaimed-brush_mm", 9)
    choose(page, "xaimed-code", "missed")
    page.locator("#xaimed-painting").check()
    g = geometry(page)
    w, h = g["Red"]["size"]
    start, end = (w // 2, h // 2), (w // 2 + 40, h // 2 + 10)
    box = page.locator("img").nth(3).bounding_box()  # the axial view
    page.mouse.move(box["x"] + start[0] + 0.5, box["y"] + start[1] + 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] + 0.5, box["y"] + end[1] + 0.5, steps=12)
    page.mouse.up()

    def painted():  # the stroke's end is drawn in the segment's magenta (mouse events arrive asynchronously)
        r, green, b = view_image(page, "Red")[end[1], end[0]]
        return r > 150 and b > 150 and green < 120

    wait_until(painted, timeout=30)
    page.locator("#xaimed-save-annotation").click()
    wait_until(lambda: text_of(page, "xaimed-annotation") or text_of(page, "xaimed-message"), timeout=30)
    assert text_of(page, "xaimed-message") == ""
    assert text_of(page, "xaimed-annotation").startswith("saved annotation")

    study = Study.open(db)
    try:
        (row,) = [r for r in study.annotations() if r["reader"] == "r1"]
        annotation = study.load_annotation(row["id"])
    finally:
        study.close()
    scan = read_volume(case["scan"])
    labels = annotation.labels
    # the region lies on the scan's grid, exactly
    assert labels.array.shape == scan.array.shape
    np.testing.assert_allclose(labels.ijk_to_ras(), scan.ijk_to_ras(), atol=1e-4)
    assert row["method"] == "planted" and annotation.provenance.reader == "r1"
    assert [s.category for s in annotation.segments] == ["missed"]
    # the painted voxels: along the drag, within the 9 mm brush
    a, b = pixel_ras(g, "Red", *start), pixel_ras(g, "Red", *end)
    mask = annotation.mask()
    kk, jj, ii = np.nonzero(mask)
    affine = scan.ijk_to_ras()
    ras = np.stack([ii, jj, kk], 1) @ affine[:3, :3].T + affine[:3, 3]
    t = np.clip(((ras - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
    distance = np.linalg.norm(ras - (a + t[:, None] * (b - a)), axis=1)
    half_voxel = 0.5 * np.linalg.norm(scan.spacing)
    assert mask.sum() > 0 and distance.max() <= 4.5 + half_voxel
    for point in (a, b, (a + b) / 2):
        i, j, k = np.round(scan.ras_to_index(point)).astype(int)
        assert mask[k, j, i], point
    # the agreement shown in the page is the one stored with the annotation
    shown = text_of(page, "xaimed-annotation")
    for key in ("missed_share", "dice_missed"):
        if row.get(key) is not None:
            assert f"{key} {row[key]:.3f}" in shown

    # Export DICOM SEG from the page: a SEG with the coded segment; a second export never overwrites it
    import pydicom

    from XAIMedSlicerLib.study.coding import category

    out = tmp_path / "disagreement.dcm"
    page.locator("#xaimed-seg_series").fill(str(shared_data("dicom/ct_abdomen_series")))
    page.locator("#xaimed-seg_out").fill(str(out))
    page.locator("#xaimed-export-seg").click()
    wait_until(
        lambda: text_of(page, "xaimed-annotation").startswith("DICOM SEG") or text_of(page, "xaimed-message")
    )
    assert text_of(page, "xaimed-message") == ""
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SEG"
    codes = [s.SegmentedPropertyTypeCodeSequence[0].CodeValue for s in ds.SegmentSequence]
    assert codes == [category("missed").code.value]
    written = out.read_bytes()
    page.locator("#xaimed-export-seg").click()
    wait_until(lambda: "already exists" in text_of(page, "xaimed-message"), timeout=20)
    assert out.read_bytes() == written
