"""Point target on a segmentation network in the browser: a click in the axial view on a crop of the
real T1 makes the real pretrained MeshNet's predicted white-matter component there the target."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from test_web_support import (
    browser_page,
    coloured,
    geometry,
    view_image,
    viewer_server,
    wait_until,
)

HALF = 24  # the crop: 48^3 voxels of 1 mm around the T1's centre
CENTRE_IJK = (127, 128, 110)
TARGET = "White Matter"


def crop(volume, centre_ijk, half: int):
    from XAIMedSlicerLib.geometry.volume import Volume

    i, j, k = centre_ijk
    array = volume.array[k - half : k + half, j - half : j + half, i - half : i + half]
    origin = (volume.ijk_to_lps() @ np.array([i - half, j - half, k - half, 1.0]))[:3]
    return Volume(np.ascontiguousarray(array), volume.spacing, origin, volume.direction)


@pytest.fixture(scope="module")
def meshnet_viewer(shared_data, tmp_path_factory):
    from XAIMedSlicerLib.io.volumes import read_volume, write_volume

    folder = tmp_path_factory.mktemp("meshnet-crop")
    image = crop(read_volume(shared_data("brain/t1_crop.nii.gz")), CENTRE_IJK, HALF)
    labels = crop(
        read_volume(shared_data("brain/t1_crop_tissue3_pred_model5_gw_ae.nii.gz")), CENTRE_IJK, HALF
    )
    write_volume(image, folder / "t1.nii.gz")
    write_volume(labels, folder / "tissue.nii.gz")
    (folder / "names.json").write_text(json.dumps({"1": "White Matter", "2": "Grey Matter"}))
    model = shared_data("models/meshnet/model5_gw_ae")
    args = ["--image", str(folder / "t1.nii.gz"), "--model", str(model)]
    args += ["--labels", str(folder / "tissue.nii.gz"), "--label-names", str(folder / "names.json")]
    with viewer_server(*args) as (url, process), browser_page(url) as page:
        yield page, process, image, labels, model


def _choose(page, element_id: str, text: str) -> None:
    page.locator(f"#{element_id}").click(force=True)
    page.get_by_role("option", name=text, exact=True).click()
    page.keyboard.press("Escape")


def _text(page, element_id: str) -> str:
    element = page.locator(f"#{element_id}")
    return (element.text_content() or "").strip() if element.count() else ""


def _pixel_ras(g, tag, column, row):
    w, h = g[tag]["size"]
    return (np.asarray(g[tag]["xy_to_ras"]).reshape(4, 4) @ np.array([column, h - 1 - row, 0, 1]))[:3]


def _click(page, column, row, tag="Red"):
    from test_web_support import VIEW_ORDER

    box = page.locator("img").nth(VIEW_ORDER.index(tag)).bounding_box()
    page.mouse.click(box["x"] + column + 0.5, box["y"] + row + 0.5)


def test_click_in_a_slice_view_explains_the_predicted_component_there(meshnet_viewer):
    from scipy import ndimage

    from XAIMedSlicerLib.explain import explain

    page, process, image, labels, model = meshnet_viewer
    torch.set_num_threads(1)
    _choose(page, "xaimed-method", "gradcam")
    _choose(page, "xaimed-target", TARGET)
    page.locator("#xaimed-outlines").uncheck()
    page.locator("#xaimed-legend").uncheck()
    page.locator("#xaimed-point_mode").check()
    wait_until(lambda: coloured(view_image(page, "Red")).sum() == 0, timeout=20)  # no map, no outlines
    g = geometry(page)
    w, h = g["Red"]["size"]
    # a pixel near the view's centre deep in (the shared prediction's) white matter
    deep = ndimage.binary_erosion(labels.array == 1, iterations=2)
    picked = None
    for radius in range(0, min(w, h) // 3, 3):
        for column, row in ((w // 2 + radius, h // 2), (w // 2 - radius, h // 2), (w // 2, h // 2 + radius)):
            ras = _pixel_ras(g, "Red", column, row)
            i, j, k = np.round(image.ras_to_index(ras)).astype(int)
            if 0 <= k < deep.shape[0] and 0 <= j < deep.shape[1] and 0 <= i < deep.shape[2] and deep[k, j, i]:
                picked = (column, row, ras)
                break
        if picked:
            break
    assert picked, "no white-matter pixel near the axial view's centre"
    column, row, ras = picked
    _click(page, column, row)
    wait_until(lambda: _text(page, "xaimed-status").startswith("explained"), timeout=180, step=0.2)
    assert _text(page, "xaimed-message") == ""
    shown = [float(v) for v in _text(page, "xaimed-point").split(":")[1].split(",")]
    # the point placed by the click is the pixel's RAS position (to the slice view's pixel size)
    pixel_mm = float(np.linalg.norm(np.asarray(g["Red"]["xy_to_ras"]).reshape(4, 4)[:3, 0]))
    assert np.abs(np.asarray(shown) - ras).max() <= pixel_mm + 0.05

    expected = explain(image, model, "gradcam", TARGET, region="point", point=tuple(shown))
    info = _text(page, "xaimed-target-info")
    assert info.startswith(f"target: {TARGET}, point region of ")
    voxels = int(info.split(" region of ")[1].split()[0])
    # the same component as explain() finds here, up to a few argmax ties (the worker sums in another
    # thread order: MeshNet's WM/GM logits tie to float precision on some boundary voxels)
    assert abs(voxels - expected.target["region_voxels"]) <= 0.01 * expected.target["region_voxels"]
    assert "click to overlay" in _text(page, "xaimed-click")
    # the new overlay is drawn (outlines off: what is coloured is the map)
    wait_until(lambda: coloured(view_image(page, "Red")).sum() > 50, timeout=20)

    # a click beside the image: a one-line message, no job, the server keeps serving
    g = geometry(page)  # the views moved to the map's peak
    outside = next(
        (c, r)
        for c in range(0, w, 4)
        for r in (h // 2,)
        if np.any(np.round(image.ras_to_index(_pixel_ras(g, "Red", c, r))) < -1)
        or np.any(
            np.round(image.ras_to_index(_pixel_ras(g, "Red", c, r))) > np.array(image.array.shape[::-1])
        )
    )
    before = _text(page, "xaimed-status")
    _click(page, *outside)
    wait_until(lambda: "outside the scan" in _text(page, "xaimed-message"), timeout=20)
    assert _text(page, "xaimed-status") == before
    assert process.poll() is None
