"""The web viewer's Explain, Cancel and bad input, in a real browser, on a demo case and the demo
classifier (real weights) run by the worker process the Slicer module uses, then (Load in the same page)
a point click on a crop of the real T1 with the real pretrained MeshNet."""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from test_web_support import (
    REPO,
    VIEWPORT,
    browser_page,
    choose,
    click_view,
    coloured,
    geometry,
    meshnet_crop,
    pixel_ras,
    ras_to_pixel,
    text_of,
    view_image,
    viewer_server,
    wait_until,
    white_matter_pixel,
)

SEED = 12345
TARGET = "White Matter"
SLICE_TAGS = ("Red", "Green", "Yellow")


@pytest.fixture(scope="module")
def demo_viewer(tmp_path_factory):
    from XAIMedSlicerLib.demo.cases import make_case
    from XAIMedSlicerLib.demo.model import CARD_PATH
    from XAIMedSlicerLib.demo.run import write_case

    folder = tmp_path_factory.mktemp("demo-case")
    case = make_case(SEED, lesion=True)
    write_case(case, folder)
    args = ["--image", str(folder / "image.nii.gz"), "--labels", str(folder / "labels.nii.gz")]
    args += ["--label-names", str(folder / "label_names.json"), "--model", str(CARD_PATH)]
    with viewer_server(*args) as (url, process), browser_page(url) as page:
        yield page, process, case, folder


def _workers(process) -> list:
    return [
        p
        for p in psutil.Process(process.pid).children(recursive=True)
        if "XAIMedSlicerLib.worker" in " ".join(p.cmdline())
    ]


def test_explain_runs_in_the_worker_and_shows_its_map_at_the_peak(demo_viewer):
    from XAIMedSlicerLib.demo.model import CARD_PATH
    from XAIMedSlicerLib.explain import explain

    page, process, case, _folder = demo_viewer
    torch.set_num_threads(1)
    choose(page, "xaimed-method", "gradcam")
    choose(page, "xaimed-target", "lesion")
    page.locator("#xaimed-explain").click()
    stages = set()

    def finished():
        stages.add(text_of(page, "xaimed-stage"))
        return text_of(page, "xaimed-status").startswith("explained")

    wait_until(finished, timeout=240, step=0.2)
    assert text_of(page, "xaimed-message") == ""
    # the page was updated while the worker ran: several stages came through the event loop
    assert len({s for s in stages if s}) >= 3, stages
    assert len(_workers(process)) == 0  # the worker process has ended

    # the same explanation computed here: the views are centred on its attribution peak
    expected = explain(
        case.image, CARD_PATH, "gradcam", "lesion", labels=case.labels, label_names=case.label_names, seed=0
    )
    peak = np.asarray(expected.peak_ras())

    def centred_on_peak():
        g = geometry(page)
        for tag in SLICE_TAGS:
            column, row, z = ras_to_pixel(g, tag, peak)
            w, h = g[tag]["size"]
            assert abs(z) < 1e-3 and abs(column - (w - 1) / 2) <= 1.0 and abs(row - (h - 1) / 2) <= 1.0, tag
        return g

    g = wait_until(centred_on_peak, timeout=20)  # the page's copy of the geometry follows within 0.5 s
    names = [r.locator("td").first.text_content() for r in page.locator("#xaimed-structures tbody tr").all()]
    expected_rows = sorted(expected.structures, key=lambda r: -r["positive_share"])
    assert names == [r["name"] for r in expected_rows]

    # the overlay is drawn at the peak in every slice view
    def overlay_at_centre():
        for tag in SLICE_TAGS:
            w, h = g[tag]["size"]
            assert coloured(view_image(page, tag))[h // 2 - 1 : h // 2 + 2, w // 2 - 1 : w // 2 + 2].any(), (
                tag
            )
        return True

    wait_until(overlay_at_centre, timeout=20)

    # rules and words beside the map: the card's sentences are the job's explanation.txt, line by line,
    # its decision and fired rules are rules.json's; report.html is served from a copy that outlives the job
    from XAIMedSlicerLib.web.report_card import plain_sentence

    href = page.locator("#xaimed-report-link").get_attribute("href")
    assert href and href.endswith("/report.html"), href
    url = urllib.parse.urljoin(page.url, href)
    base = url.rsplit("/", 1)[0]
    html = urllib.request.urlopen(url, timeout=10).read().decode("utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    lines = urllib.request.urlopen(base + "/explanation.txt", timeout=10).read().decode("utf-8").splitlines()
    sentences = [t.strip() for t in page.locator("#xaimed-sentences .xaimed-sentence").all_text_contents()]
    assert len(lines) >= 3 and sentences == [plain_sentence(line) for line in lines if line.strip()]
    assert "%" in sentences[0]
    rules = json.loads(urllib.request.urlopen(base + "/rules.json", timeout=10).read())
    fired = [
        t.strip().rstrip(":") for t in page.locator("#xaimed-rules .xaimed-rule-name").all_text_contents()
    ]
    assert fired == rules["fired"]
    assert text_of(page, "xaimed-decision").startswith(f"decision: {rules['decision']['decision']}")
    page.locator(".v-expansion-panel-title", has_text="Inputs").click()  # show the result's panels
    page.wait_for_timeout(800)
    shot = REPO / "docs" / "web-viewer.png"
    temporary = shot.with_name(".web-viewer.png.tmp")
    page.screenshot(path=str(temporary), type="png")
    os.replace(temporary, shot)


def test_cancel_stops_a_long_job_and_leaves_the_scene_as_it_was(demo_viewer):
    page, process, _case, _folder = demo_viewer
    before = text_of(page, "xaimed-colorbar")
    choose(page, "xaimed-method", "occlusion")
    page.locator("#xaimed-explain").click()
    wait_until(lambda: page.locator("#xaimed-cancel").is_enabled(), timeout=30)
    wait_until(lambda: _workers(process), timeout=60)
    wait_until(lambda: text_of(page, "xaimed-stage") not in ("", "starting the worker"), timeout=120)
    page.locator("#xaimed-cancel").click()
    wait_until(lambda: text_of(page, "xaimed-status") == "cancelled", timeout=30, step=0.1)
    wait_until(lambda: not _workers(process), timeout=10)
    assert page.locator("#xaimed-explain").is_enabled()
    after = text_of(page, "xaimed-colorbar")
    assert after == before  # no new result was loaded
    assert process.poll() is None


def test_misspelt_method_parameter_is_a_one_line_message_and_the_server_keeps_running(demo_viewer):
    page, process, _case, _folder = demo_viewer
    status = text_of(page, "xaimed-status")
    choose(page, "xaimed-method", "smoothgrad")
    page.locator("#xaimed-method_params").fill("sampels=5")
    page.locator("#xaimed-chest_anatomy").check()  # bound to the request (a 3D scan with labels ignores it)
    page.locator("#xaimed-explain").click()
    message = wait_until(lambda: text_of(page, "xaimed-message"), timeout=120)
    assert "has no parameter 'sampels'" in message and "samples" in message and "\n" not in message
    wait_until(lambda: not _workers(process), timeout=20)
    assert process.poll() is None and page.locator("#xaimed-explain").is_enabled()
    assert text_of(page, "xaimed-status") == status  # nothing new was loaded
    page.locator("#xaimed-method_params").fill("")
    page.locator("#xaimed-chest_anatomy").uncheck()
    page.locator("#xaimed-message .v-alert__close button, #xaimed-message button").first.click()
    wait_until(lambda: text_of(page, "xaimed-message") == "", timeout=10)


def test_closing_the_page_mid_job_leaves_the_server_working(demo_viewer):
    page, process, _case, folder = demo_viewer
    page.locator("#xaimed-scan_path").fill(str(Path(folder) / "image.nii.gz"))
    page.locator("#xaimed-load").click()
    wait_until(lambda: text_of(page, "xaimed-status") == "loaded image.nii.gz", timeout=60)
    other = page.context.browser.new_page(viewport=VIEWPORT)
    other.goto(page.url)
    other.wait_for_selector("#xaimed-explain", timeout=60_000)
    choose(other, "xaimed-method", "saliency")
    other.locator("#xaimed-explain").click()
    wait_until(lambda: _workers(process), timeout=60)
    other.close()  # the browser tab goes away while the worker runs
    wait_until(lambda: text_of(page, "xaimed-status").startswith("explained: XAIMed saliency"), timeout=240)
    assert process.poll() is None and not _workers(process)
    assert page.locator("#xaimed-structures tbody tr").count() > 0


def test_unreadable_scan_gives_a_message_in_the_page_and_the_server_keeps_running(demo_viewer, tmp_path):
    page, process, _case, folder = demo_viewer
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"this is not a NIfTI file" * 10)
    field = page.locator("#xaimed-scan_path")
    field.fill(str(broken))
    page.locator("#xaimed-load").click()
    message = wait_until(lambda: text_of(page, "xaimed-message"), timeout=30)
    assert "cannot read" in message and "broken.nii.gz" in message and "\n" not in message
    assert process.poll() is None
    # still serving: a model that is no model is another one-line message, then a good scan loads
    page.locator("#xaimed-model_path").fill(str(tmp_path))
    page.locator("#xaimed-load").click()
    wait_until(lambda: "neither a MONAI bundle nor a MeshNet" in text_of(page, "xaimed-message"), timeout=30)
    from XAIMedSlicerLib.demo.model import CARD_PATH

    page.locator("#xaimed-model_path").fill(str(CARD_PATH))
    field.fill(str(Path(folder) / "image.nii.gz"))
    page.locator("#xaimed-load").click()
    wait_until(lambda: text_of(page, "xaimed-model").startswith("demo-lesion-classifier"), timeout=30)
    wait_until(lambda: text_of(page, "xaimed-message") == "", timeout=30)
    assert text_of(page, "xaimed-status") == "loaded image.nii.gz"
    assert page.locator("#xaimed-explain").is_enabled()


def test_point_click_on_meshnet_explains_the_predicted_component_there(demo_viewer, shared_data, tmp_path):

    from XAIMedSlicerLib.explain import explain

    page, process, _case, _folder = demo_viewer
    torch.set_num_threads(1)
    crop_case = meshnet_crop(shared_data, tmp_path)
    image, labels, model = crop_case["image"], crop_case["labels"], crop_case["model"]
    # another case in the same page: the crop, its tissue labels and the MeshNet (a user's Load)
    for key, path in (("scan_path", "scan"), ("labels_path", "labels_path"), ("names_path", "names_path")):
        page.locator(f"#xaimed-{key}").fill(str(crop_case[path]))
    page.locator("#xaimed-model_path").fill(str(model))
    page.locator("#xaimed-load").click()
    wait_until(lambda: text_of(page, "xaimed-status") == "loaded t1.nii.gz", timeout=60)
    assert "meshnet" in text_of(page, "xaimed-model")
    choose(page, "xaimed-method", "gradcam")
    choose(page, "xaimed-target", TARGET)
    page.locator("#xaimed-outlines").uncheck()
    page.locator("#xaimed-legend").uncheck()
    page.locator("#xaimed-view_text").uncheck()  # the yellow orientation letters are coloured pixels too
    page.locator("#xaimed-point_mode").check()
    wait_until(lambda: coloured(view_image(page, "Red")).sum() == 0, timeout=20)  # no map, no outlines
    g = geometry(page)
    picked = white_matter_pixel(g, image, labels)
    assert picked, "no white-matter pixel near the axial view's centre"
    column, row, ras = picked
    click_view(page, column, row)
    wait_until(lambda: text_of(page, "xaimed-status").startswith("explained"), timeout=180, step=0.2)
    assert text_of(page, "xaimed-message") == ""
    shown = [float(v) for v in text_of(page, "xaimed-point").split(":")[1].split(",")]
    # the point placed by the click is the pixel's RAS position (to the slice view's pixel size)
    pixel_mm = float(np.linalg.norm(np.asarray(g["Red"]["xy_to_ras"]).reshape(4, 4)[:3, 0]))
    assert np.abs(np.asarray(shown) - ras).max() <= pixel_mm + 0.05

    expected = explain(image, model, "gradcam", TARGET, region="point", point=tuple(shown))
    info = text_of(page, "xaimed-target-info")
    assert info.startswith(f"target: {TARGET}, point region of ")
    voxels = int(info.split(" region of ")[1].split()[0])
    # the same component as explain() finds here, up to a few argmax ties (the worker sums in another
    # thread order: MeshNet's WM/GM logits tie to float precision on some boundary voxels)
    assert abs(voxels - expected.target["region_voxels"]) <= 0.01 * expected.target["region_voxels"]
    assert "click to overlay" in text_of(page, "xaimed-click")
    # the new overlay is drawn (outlines off: what is coloured is the map)
    wait_until(lambda: coloured(view_image(page, "Red")).sum() > 50, timeout=20)

    # a click beside the image: a one-line message, no job, the server keeps serving
    g = geometry(page)  # the views moved to the map's peak
    w, h = g["Red"]["size"]
    outside = next(
        (c, r)
        for c in range(0, w, 4)
        for r in (h // 2,)
        if np.any(np.round(image.ras_to_index(pixel_ras(g, "Red", c, r))) < -1)
        or np.any(np.round(image.ras_to_index(pixel_ras(g, "Red", c, r))) > np.array(image.array.shape[::-1]))
    )
    before = text_of(page, "xaimed-status")
    click_view(page, *outside)
    wait_until(lambda: "outside the scan" in text_of(page, "xaimed-message"), timeout=20)
    assert text_of(page, "xaimed-status") == before
    assert process.poll() is None
