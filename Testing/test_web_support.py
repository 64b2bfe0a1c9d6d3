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
HALF = 24  # the MeshNet crop: 48^3 voxels of 1 mm around the T1's centre
CENTRE_IJK = (127, 128, 110)


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


def crop(volume, centre_ijk, half: int):
    from XAIMedSlicerLib.geometry.volume import Volume

    i, j, k = centre_ijk
    array = volume.array[k - half : k + half, j - half : j + half, i - half : i + half]
    origin = (volume.ijk_to_lps() @ np.array([i - half, j - half, k - half, 1.0]))[:3]
    return Volume(np.ascontiguousarray(array), volume.spacing, origin, volume.direction)


def meshnet_crop(shared_data, folder: Path) -> dict:
    """A 48^3 crop of the real T1 and of the shared MeshNet tissue prediction, written as files."""
    from XAIMedSlicerLib.io.volumes import read_volume, write_volume

    image = crop(read_volume(shared_data("brain/t1_crop.nii.gz")), CENTRE_IJK, HALF)
    labels = crop(
        read_volume(shared_data("brain/t1_crop_tissue3_pred_model5_gw_ae.nii.gz")), CENTRE_IJK, HALF
    )
    write_volume(image, folder / "t1.nii.gz")
    write_volume(labels, folder / "tissue.nii.gz")
    (folder / "names.json").write_text(json.dumps({"1": "White Matter", "2": "Grey Matter"}))
    return {
        "image": image,
        "labels": labels,
        "scan": folder / "t1.nii.gz",
        "labels_path": folder / "tissue.nii.gz",
        "names_path": folder / "names.json",
        "model": shared_data("models/meshnet/model5_gw_ae"),
    }


def white_matter_pixel(g, image, labels, tag: str = "Red"):
    """(column, row, RAS) of the pixel nearest the view's centre deep in (the shared prediction's) white
    matter, or None."""
    from scipy import ndimage

    w, h = g[tag]["size"]
    deep = ndimage.binary_erosion(labels.array == 1, iterations=2)
    grid = sorted(
        ((c, r) for c in range(w // 6, w - w // 6, 3) for r in range(h // 6, h - h // 6, 3)),
        key=lambda p: (p[0] - w / 2) ** 2 + (p[1] - h / 2) ** 2,
    )
    for column, row in grid:
        ras = pixel_ras(g, tag, column, row)
        i, j, k = np.round(image.ras_to_index(ras)).astype(int)
        if all(0 <= v < n for v, n in zip((k, j, i), deep.shape, strict=True)) and deep[k, j, i]:
            return column, row, ras
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def viewer_server(*args: str, timeout: float = 90.0, subcommand: str = "view"):
    """``xaimed view ARGS --port P --no-browser`` (or another subcommand that serves the viewer, such as
    ``demo ... --view``) in a subprocess; yields (url, process)."""
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"xaimed-view-{port}.log", "w+")  # noqa: SIM115
    command = [
        sys.executable,
        "-m",
        "XAIMedSlicerLib.cli",
        subcommand,
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
            wait_until(lambda: sizes_settled(page), 60)
            yield page
        finally:
            browser.close()


def sizes_settled(page) -> bool:
    """Whether every slice view's size on the server is its image's size in the page (after a resize)."""
    g = geometry(page)
    for tag in ("Red", "Green", "Yellow"):
        box = page.locator("img").nth(VIEW_ORDER.index(tag)).bounding_box()
        if box is None or g.get(tag, {}).get("size") != [round(box["width"]), round(box["height"])]:
            return False
    return True


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


def pixel_ras(g: dict, tag: str, column, row) -> np.ndarray:
    """RAS (mm) of a pixel (column, row from the top) of a view's image."""
    w, h = g[tag]["size"]
    return (np.asarray(g[tag]["xy_to_ras"]).reshape(4, 4) @ np.array([column, h - 1 - row, 0, 1]))[:3]


def ras_to_pixel(page_geometry: dict, tag: str, ras) -> tuple[float, float, float]:
    """(column, row from the top, distance to the slice plane in mm) of a RAS point in a view's image."""
    view = page_geometry[tag]
    xy_to_ras = np.asarray(view["xy_to_ras"], dtype=float).reshape(4, 4)
    x, y, z = (np.linalg.inv(xy_to_ras) @ np.append(np.asarray(ras, float), 1.0))[:3]
    spacing = np.linalg.norm(xy_to_ras[:3, 2])  # mm per XY z unit: the slice spacing
    return float(x), float(view["size"][1] - 1 - y), float(z * spacing)


def letter_glyph(pixels: np.ndarray, edge: str, band: int = 48) -> np.ndarray:
    """The orientation letter drawn at the middle of a view's left or right edge: the mask of its pure
    yellow pixels (the letters' colour, on their black box), cropped to its bounding box."""
    h, w, _ = pixels.shape
    rows = slice(h // 2 - band, h // 2 + band)
    strip = pixels[rows, :band] if edge == "left" else pixels[rows, w - band :]
    mask = (strip[..., 0] > 120) & (strip[..., 1] > 120) & (strip[..., 2] < 40)
    assert mask.sum() >= 10, f"no letter drawn at the {edge} edge"
    r, c = np.nonzero(mask)
    return mask[r.min() : r.max() + 1, c.min() : c.max() + 1]


def glyph_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two glyph masks, top-left aligned."""
    h, w = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])
    pa, pb = np.zeros((h, w), bool), np.zeros((h, w), bool)
    pa[: a.shape[0], : a.shape[1]], pb[: b.shape[0], : b.shape[1]] = a, b
    return float((pa & pb).sum() / max(1, (pa | pb).sum()))


def coloured(pixels: np.ndarray) -> np.ndarray:
    """Mask of the overlay's pixels (colour, where the scan is grey)."""
    return (pixels.max(axis=-1) - pixels.min(axis=-1)) > COLOURED


def choose(page, element_id: str, text: str) -> None:
    """Pick ``text`` in a select of the panel."""
    page.locator(f"#{element_id}").click(force=True)  # Vuetify's field overlay takes the click
    page.get_by_role("option", name=text, exact=True).click()
    page.keyboard.press("Escape")


def text_of(page, element_id: str) -> str:
    """An element's text; "" when it is not in the page (the message is shown only when there is one)."""
    element = page.locator(f"#{element_id}")
    return (element.text_content() or "").strip() if element.count() else ""


def click_view(page, column, row, tag: str = "Red") -> None:
    """A mouse click on a pixel (column, row from the top) of a view's image."""
    box = page.locator("img").nth(VIEW_ORDER.index(tag)).bounding_box()
    page.mouse.click(box["x"] + column + 0.5, box["y"] + row + 0.5)


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
