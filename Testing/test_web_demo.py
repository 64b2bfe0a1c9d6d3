"""``xaimed demo --view``: the demo case is made and explained, then the viewer serves it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from test_web_support import (
    browser_page,
    coloured,
    geometry,
    glyph_overlap,
    letter_glyph,
    ras_to_pixel,
    text_of,
    view_image,
    viewer_server,
    wait_until,
)

SEED = 31337


def test_demo_view_serves_the_demo_case_with_its_map(tmp_path):
    out = tmp_path / "demo"
    args = ["--out", str(out), "--seed", str(SEED), "--view"]
    with viewer_server(*args, subcommand="demo", timeout=300) as (url, process), browser_page(url) as page:
        wait_until(lambda: text_of(page, "xaimed-status") == "loaded demo", timeout=60)
        report = json.loads((out / "demo.json").read_text())
        assert text_of(page, "xaimed-message") == ""
        assert "demo-lesion-classifier" in text_of(page, "xaimed-model")
        # the views are centred on the demo's reported attribution peak, and the map is drawn there
        g = geometry(page)
        for tag in ("Red", "Green", "Yellow"):
            column, row, z = ras_to_pixel(g, tag, report["peak_ras"])
            w, h = g[tag]["size"]
            assert abs(z) < 1e-3 and abs(column - (w - 1) / 2) <= 1.0 and abs(row - (h - 1) / 2) <= 1.0

            def drawn(tag=tag, w=w, h=h):
                pixels = view_image(page, tag)[h // 2 - 1 : h // 2 + 2, w // 2 - 1 : w // 2 + 2]
                assert coloured(pixels).any(), f"{tag}: {pixels.tolist()}"
                return True

            wait_until(drawn, timeout=20)
        names = {
            r.locator("td").first.text_content() for r in page.locator("#xaimed-structures tbody tr").all()
        }
        assert names and names <= {"grey matter", "white matter", "csf"}
        assert process.poll() is None
        assert np.isfinite(report["peak_value"])
        _rules_and_words(page, out)
        _letters_and_caption(page, report)
    # the URL line is not drowned in VTK's start-up warnings
    log = (Path(os.environ.get("TMPDIR", "/tmp")) / f"xaimed-view-{urlparse(url).port}.log").read_text()
    served = log[log.index("xaimed view: serving on http") :]
    assert "vtkObject.cxx" not in served and "Warning: In" not in served and "WARN|" not in served, served


def test_demo_cxr_view_serves_the_radiograph_with_its_rules_and_words(tmp_path):
    out = tmp_path / "cxr"
    args = ["--cxr", "--out", str(out), "--seed", str(SEED), "--view"]
    with viewer_server(*args, subcommand="demo", timeout=300) as (url, process), browser_page(url) as page:
        wait_until(lambda: text_of(page, "xaimed-status") == "loaded cxr", timeout=60)
        assert text_of(page, "xaimed-message") == ""
        assert (out / "image.nrrd").is_file() and not (out / "image.nii.gz").exists()
        assert page.locator("#xaimed-structures tbody tr").count() > 0  # the chest anatomy of the result
        _rules_and_words(page, out)
        assert process.poll() is None


def _rules_and_words(page, out):
    """``--result DIR``: the card's sentences are the folder's explanation.txt, line by line."""
    from XAIMedSlicerLib.web.report_card import plain_sentence

    lines = (out / "explanation.txt").read_text(encoding="utf-8").splitlines()
    sentences = [t.strip() for t in page.locator("#xaimed-sentences .xaimed-sentence").all_text_contents()]
    assert len(lines) >= 3 and sentences == [plain_sentence(line) for line in lines if line.strip()]
    decision = json.loads((out / "rules.json").read_text())["decision"]["decision"]
    assert text_of(page, "xaimed-decision").startswith(f"decision: {decision}")


def _letters_and_caption(page, report):
    """Each slice view shows orientation letters from its SliceToRAS and a caption naming the method."""
    from XAIMedSlicerLib.scene.figure import METHOD_NAMES

    g = geometry(page)
    for tag in ("Red", "Green", "Yellow"):
        x_axis = np.asarray(g[tag]["xy_to_ras"]).reshape(4, 4)[:3, 0]
        # the letter at the right edge names the patient direction of screen x, the left one its opposite
        dominant = int(np.argmax(np.abs(x_axis)))
        positive = "RAS"[dominant]
        negative = "LPI"[dominant]
        right, left = (positive, negative) if x_axis[dominant] > 0 else (negative, positive)
        assert g[tag]["letters"]["right"] == right and g[tag]["letters"]["left"] == left, (tag, g[tag])
        caption = g[tag]["caption"]
        assert METHOD_NAMES[report["method"]] in caption and "prediction: " in caption, caption
    # RAS display convention on the axial view: patient right on the screen's left
    assert g["Red"]["letters"] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert g["Green"]["letters"]["left"] == "R"

    # the pixels: the same letter looks the same in two views, R and L look different
    def glyphs():
        red, green = view_image(page, "Red"), view_image(page, "Green")
        return letter_glyph(red, "left"), letter_glyph(red, "right"), letter_glyph(green, "left")

    red_r, red_l, green_r = wait_until(glyphs, timeout=20)
    same, different = glyph_overlap(red_r, green_r), glyph_overlap(red_r, red_l)
    assert same > 0.9 and different < 0.6, (same, different)
