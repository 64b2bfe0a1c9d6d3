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
    case = planted_case(shared_data, tmp_path_factory.mktemp("planted") / "result")
    with viewer_server("--image", str(case["scan"]), "--result", str(case["result"])) as (url, _process):
        with browser_page(url) as page:
            yield page, case


def _switch(page, element_id: str, on: bool) -> None:
    box = page.locator(f"#{element_id}")
    if box.is_checked() != on:
        box.check() if on else box.uncheck()


def _plain(page) -> None:
    """Outlines and in-view legends off: every coloured pixel left is the overlay."""
    _switch(page, "xaimed-outlines", False)
    _switch(page, "xaimed-legend", False)


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
