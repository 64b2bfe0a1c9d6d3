"""Click-to-overlay time of the web viewer: from a click in the browser to the first frame showing the map.

    python bench/bench_web_click.py [--repeats 3] [--out bench/results/web_click.json]

Two cases, each in its own ``xaimed view`` server driven by Debian's Chromium (as the tests do):

* ``demo``: a demo case (MNI152, 2 mm) and the demo classifier; the click is on Explain (Grad-CAM,
  class 'lesion');
* ``meshnet``: a 48^3 crop of the real T1 and the real MeshNet (model5_gw_ae); the click is a point in
  the axial view (Grad-CAM, the predicted white-matter component there).

Before each repeat the scan is loaded again, so the frame with coloured pixels is the new map. Reported:
wall seconds from the click to that frame in the browser (median, min, max), and for the point click
the server's own click-to-overlay seconds (from the placed point to the map in the scene). Each click
starts the worker process afresh (as in the Slicer module), so its start-up is part of the time.
Structure outlines and legends are off, so every coloured pixel is the map. CPU only here; on a GPU
machine pass ``--device cuda`` (not measured in this session).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Testing"))
SHARED = ROOT.parent / "shared" / "data"


def shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        raise SystemExit(f"missing shared data: {path}")
    return path


def text_of(page, element_id: str) -> str:
    from test_web_support import text_of as read

    return read(page, element_id)


def choose(page, element_id: str, text: str) -> None:
    from test_web_support import choose as pick

    pick(page, element_id, text)


def _reload_scan(page, wait_until, coloured, view_image) -> None:
    page.locator("#xaimed-load").click()
    wait_until(lambda: text_of(page, "xaimed-status").startswith("loaded"), timeout=60)
    wait_until(lambda: coloured(view_image(page, "Red")).sum() == 0, timeout=60)


def _time_click(page, click, n: int, wait_until, coloured, view_image) -> float:
    start = time.perf_counter()
    click()
    wait_until(lambda: text_of(page, "xaimed-status").endswith(f"#{n}"), timeout=600, step=0.05)
    wait_until(lambda: coloured(view_image(page, "Red")).sum() > 50, timeout=60, step=0.05)
    return time.perf_counter() - start


def bench_case(name: str, args: list[str], prepare, click, repeats: int) -> dict:
    from test_web_support import browser_page, coloured, view_image, viewer_server, wait_until

    wall, server = [], []
    with viewer_server(*args) as (url, _process), browser_page(url) as page:
        page.locator("#xaimed-outlines").uncheck()
        page.locator("#xaimed-legend").uncheck()
        prepare(page)
        for n in range(1, repeats + 1):
            _reload_scan(page, wait_until, coloured, view_image)
            wall.append(_time_click(page, lambda: click(page), n, wait_until, coloured, view_image))
            click_s = text_of(page, "xaimed-click")
            if click_s:
                server.append(float(click_s.split(":")[1].split()[0]))
            print(f"{name} #{n}: {wall[-1]:.2f} s", flush=True)
    row = {"case": name, "repeats": repeats, "wall_s": wall}
    row.update(median_s=statistics.median(wall), min_s=min(wall), max_s=max(wall))
    if server:
        row["server_click_to_overlay_s"] = server
    return row


def demo_case(folder: Path, repeats: int) -> dict:
    from XAIMedSlicerLib.demo.cases import make_case
    from XAIMedSlicerLib.demo.model import CARD_PATH
    from XAIMedSlicerLib.demo.run import write_case

    write_case(make_case(4_242_424, lesion=True), folder)
    args = ["--image", str(folder / "image.nii.gz"), "--model", str(CARD_PATH)]
    args += ["--labels", str(folder / "labels.nii.gz"), "--label-names", str(folder / "label_names.json")]

    def prepare(page):
        choose(page, "xaimed-method", "gradcam")
        choose(page, "xaimed-target", "lesion")

    return bench_case(
        "demo (classifier, Explain button)",
        args,
        prepare,
        lambda p: p.locator("#xaimed-explain").click(),
        repeats,
    )


def meshnet_case(folder: Path, repeats: int) -> dict:

    from test_web_support import CENTRE_IJK, HALF, click_view, crop, geometry, white_matter_pixel
    from XAIMedSlicerLib.io.volumes import read_volume, write_volume

    image = crop(read_volume(shared("brain/t1_crop.nii.gz")), CENTRE_IJK, HALF)
    labels = crop(read_volume(shared("brain/t1_crop_tissue3_pred_model5_gw_ae.nii.gz")), CENTRE_IJK, HALF)
    write_volume(image, folder / "t1.nii.gz")
    args = ["--image", str(folder / "t1.nii.gz"), "--model", str(shared("models/meshnet/model5_gw_ae"))]

    def prepare(page):
        choose(page, "xaimed-method", "gradcam")
        choose(page, "xaimed-target", "White Matter")
        page.locator("#xaimed-point_mode").check()

    def click(page):
        picked = white_matter_pixel(geometry(page), image, labels)
        if picked is None:
            raise SystemExit("no white-matter pixel in the axial view")
        click_view(page, picked[0], picked[1])

    return bench_case("MeshNet 48^3 crop (point click)", args, prepare, click, repeats)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| case | repeats | click to overlay, browser (median / min / max s) | server: point to map (s) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        server = row.get("server_click_to_overlay_s")
        server_text = f"{statistics.median(server):.2f}" if server else "-"
        lines.append(
            f"| {row['case']} | {row['repeats']} | {row['median_s']:.2f} / {row['min_s']:.2f} / "
            f"{row['max_s']:.2f} | {server_text} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=["demo", "meshnet"], choices=["demo", "meshnet"])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "web_click.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="xaimed-bench-web-") as tmp:
        for case in args.cases:
            folder = Path(tmp) / case
            folder.mkdir()
            rows.append((demo_case if case == "demo" else meshnet_case)(folder, args.repeats))
    table = markdown(rows)
    print(table)
    from XAIMedSlicerLib.io.atomic import write_json

    write_json(
        Path(args.out),
        {"rows": rows, "device": "cpu", "machine": platform.platform(), "python": sys.version.split()[0]},
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
