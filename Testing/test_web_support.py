"""Helpers of the web-viewer tests (server in a subprocess, Debian's Chromium, view pixels), and the
checks that need no browser: the page's method list, slice-view pixel <-> RAS on a real slice node."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1500, "height": 950}
VIEW_ORDER = ("Green", "Yellow", "ThreeD", "Red")  # trame-slicer's "Quad View": column by column
COLOURED = 30  # max - min of RGB above this: overlay (the scan is grey)
PLANTED = ((5, 1.0), (1, 0.6))  # (label, peak value): liver carries the global peak, spleen a smaller one
SIGMA_MM, RADIUS_MM = 5.0, 10.0


def planted_case(shared_data, folder: Path, planted=PLANTED) -> dict:
    """An explanation folder on the real CT crop whose map is two Gaussian blobs, each centred in the
    deepest voxel of a TotalSegmentator structure; returns the paths and the blob centres (RAS mm)."""
    from scipy import ndimage

    from XAIMedSlicerLib.anatomy.labels import read_label_names
    from XAIMedSlicerLib.anatomy.stats import structure_statistics
    from XAIMedSlicerLib.explanation import Explanation
    from XAIMedSlicerLib.explanation_io import save_explanation
    from XAIMedSlicerLib.io.volumes import read_volume

    scan_path = shared_data("ct/example_ct_sm.nii.gz")
    image = read_volume(scan_path)
    labels = read_volume(shared_data("ct/example_seg.nii.gz"))
    names = read_label_names(shared_data("ct/example_seg_labels_present.json"))
    affine = image.ijk_to_ras()
    kk, jj, ii = np.indices(image.array.shape)
    ras = np.stack([ii, jj, kk], axis=-1) @ affine[:3, :3].T + affine[:3, 3]
    attribution = np.zeros(image.array.shape, np.float32)
    centres = {}
    for label, value in planted:
        # depth inside the structure and inside the crop (the border counts as outside)
        depth = ndimage.distance_transform_edt(np.pad(labels.array == label, 1), sampling=image.spacing[::-1])
        depth = depth[1:-1, 1:-1, 1:-1]
        k, j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
        assert depth[k, j, i] > RADIUS_MM, f"label {label} is too thin for the planted blob"
        centre = image.index_to_ras((i, j, k))
        d2 = ((ras - centre) ** 2).sum(axis=-1)
        blob = value * np.exp(-d2 / (2 * SIGMA_MM**2)) * (d2 <= RADIUS_MM**2)
        attribution = np.maximum(attribution, blob.astype(np.float32))
        centres[label] = np.asarray(centre, dtype=float)
    att = image.with_array(attribution)
    explanation = Explanation(
        image=image,
        attribution=att,
        signed=False,
        method="planted",
        prediction={"task": "classification", "classes": [], "probabilities": []},
        target={"kind": "planted"},
        labels=labels,
        label_names=names,
        structures=structure_statistics(att, labels, names),
    )
    save_explanation(explanation, folder, image_path=scan_path)
    return {
        "scan": scan_path,
        "result": folder,
        "centres": centres,
        "names": names,
        "explanation": explanation,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def viewer_server(*args: str, timeout: float = 90.0):
    """``xaimed view ARGS --port P --no-browser`` in a subprocess; yields (url, process)."""
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"xaimed-view-{port}.log", "w+")  # noqa: SIM115
    command = [
        sys.executable,
        "-m",
        "XAIMedSlicerLib.cli",
        "view",
        *args,
        "--port",
        str(port),
        "--no-browser",
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"the viewer exited with {process.returncode}: {log.read()[-2000:]}")
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(url, timeout=2).status == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the viewer did not answer on {url} within {timeout} s")
            time.sleep(0.5)
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()


@contextlib.contextmanager
def browser_page(url: str):
    """A page of Debian's Chromium (never Playwright's download) on the viewer, its views drawn."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url)
            page.wait_for_selector("#xaimed-views", state="attached", timeout=60_000)
            wait_until(lambda: len(geometry(page)) == 3 and page.locator("img").count() == 4, 60)
            yield page
        finally:
            browser.close()


def wait_until(condition, timeout: float = 30.0, step: float = 0.3):
    """Poll ``condition()`` until it returns something truthy (AssertionErrors count as not yet); that
    value, else an AssertionError with the last value or failure."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except AssertionError as failure:
            last = failure
        else:
            if last:
                return last
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s (last: {last!r})")


def geometry(page) -> dict:
    """The slice views' size and XYToRAS as the server reports them in the page."""
    return json.loads(page.locator("#xaimed-views").text_content() or "{}")


def view_image(page, tag: str) -> np.ndarray:
    """RGB pixels of one view as the browser shows it (its <img>, lossless PNG frames)."""
    from PIL import Image

    image = page.locator("img").nth(VIEW_ORDER.index(tag))
    return np.asarray(Image.open(io.BytesIO(image.screenshot())).convert("RGB")).astype(int)


def ras_to_pixel(page_geometry: dict, tag: str, ras) -> tuple[float, float, float]:
    """(column, row from the top, distance to the slice plane in mm) of a RAS point in a view's image."""
    view = page_geometry[tag]
    xy_to_ras = np.asarray(view["xy_to_ras"], dtype=float).reshape(4, 4)
    x, y, z = (np.linalg.inv(xy_to_ras) @ np.append(np.asarray(ras, float), 1.0))[:3]
    spacing = np.linalg.norm(xy_to_ras[:3, 2])  # mm per XY z unit: the slice spacing
    return float(x), float(view["size"][1] - 1 - y), float(z * spacing)


def coloured(pixels: np.ndarray) -> np.ndarray:
    """Mask of the overlay's pixels (colour, where the scan is grey)."""
    return (pixels.max(axis=-1) - pixels.min(axis=-1)) > COLOURED


def set_field(page, element_id: str, value) -> None:
    """Type a value into a text field of the panel and commit it."""
    field = page.locator(f"#{element_id}")
    field.fill(str(value))
    field.press("Enter")


def test_page_methods_are_the_registered_methods():
    from XAIMedSlicerLib.methods import available_methods
    from XAIMedSlicerLib.web.panel import METHODS

    assert sorted(METHODS) == sorted(available_methods())


def test_slice_view_pixel_and_ras_round_trip_on_a_real_slice_node():
    from XAIMedSlicerLib.scene import create_scene
    from XAIMedSlicerLib.web.scene_link import ras_to_xy, xy_to_ras

    ss = create_scene(set_global=False)
    node = ss.slice_node("Yellow")
    node.SetDimensions(320, 200, 1)
    node.SetFieldOfView(250.0, 156.25, 1.0)
    node.JumpSliceByCentering(12.5, -40.0, 7.25)
    rng = np.random.default_rng(0)
    for x, y in rng.uniform(0, 300, size=(5, 2)):
        ras = xy_to_ras(node, x, y)
        back = ras_to_xy(node, ras)
        np.testing.assert_allclose(back, [x, y, 0.0], atol=1e-6)
        # sagittal: the plane is R = 12.5; 250 mm across 320 pixels
        assert abs(ras[0] - 12.5) < 1e-4
    step = xy_to_ras(node, 11, 0) - xy_to_ras(node, 10, 0)
    np.testing.assert_allclose(np.linalg.norm(step), 250.0 / 320, atol=1e-9)
