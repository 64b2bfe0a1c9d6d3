"""``xaimed demo --view``: the demo case is made and explained, then the viewer serves it."""

from __future__ import annotations

import json

import numpy as np

from test_web_support import (
    browser_page,
    coloured,
    geometry,
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
