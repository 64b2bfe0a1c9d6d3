"""Chest radiograph anatomy: the registered CheXmask atlas (held-out Dice), structure labels on the image
grid, per-structure evidence equal to numpy, and the shortcut flag on a planted marker."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from XAIMedSlicerLib.anatomy import cxr_atlas, cxr_holdout
from XAIMedSlicerLib.anatomy.cxr_evidence import anatomy_weighted, compare_faithfulness, structure_evidence
from XAIMedSlicerLib.anatomy.cxr_regions import CXR_LABELS, CXR_SNOMED, cxr_anatomy
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.geometry.axes import volume_tensor, xyz_to_kji
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.radiograph import read_radiograph
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.targets import ClassTarget
from XAIMedSlicerLib.model.slice2d import SliceAdapter

torch.set_num_threads(1)


def downsampled(volume: Volume, factor: int = 4) -> Volume:
    """A radiograph Volume at 1/factor resolution (percentile-normalised grey), same physical extent."""
    a = volume.array[0].astype(np.float64)
    lo, hi = np.percentile(a, [1, 99])
    a = np.clip((a - lo) / (hi - lo), 0, 1)
    small = ndimage.zoom(ndimage.gaussian_filter(a, factor / 2), 1 / factor, order=1).astype(np.float32)
    spacing = np.array(volume.spacing) * [factor, factor, 1]
    shift = (factor - 1) / 2 * np.array(volume.spacing) * [1, 1, 0]
    origin = np.array(volume.origin) + volume.direction @ shift
    return Volume(small[None], tuple(spacing), tuple(origin), volume.direction)


@pytest.fixture(scope="module")
def nih(shared_data):
    """NIH 00027426_000 at 128 x 128 with its registered anatomy (one registration for the module)."""
    volume = downsampled(read_radiograph(shared_data("cxr/00027426_000.png"))[0])
    return volume, cxr_anatomy(volume, cxr_atlas.chexmask_atlas(shared_data("cxr")))


def test_heldout_dice_mirrored_atlas(shared_data):
    """Atlas = the CheXmask image mirrored (lungs swapped); target = the original; truth = its masks."""
    rows = {r["structure"]: r for r in cxr_holdout.holdout_dice("mirrored", folder=shared_data("cxr"))}
    print({k: (round(r["dice"], 3), round(r["dice_initial"], 3)) for k, r in rows.items()})
    assert rows["right lung"]["dice"] >= 0.92 and rows["left lung"]["dice"] >= 0.92
    assert rows["heart"]["dice"] >= 0.85
    # the registration, not the starting alignment, brings the heart to the other side
    assert rows["heart"]["dice"] > rows["heart"]["dice_initial"] + 0.1
    assert all(r["dice"] > r["dice_initial"] for r in rows.values())


def test_heldout_dice_deformed_target(shared_data):
    """Target = the CheXmask image under a seeded random affine + B-spline; truth = the warped masks."""
    rows = cxr_holdout.holdout_dice("deformed:0", folder=shared_data("cxr"))
    print({r["structure"]: (round(r["dice"], 3), round(r["dice_initial"], 3)) for r in rows})
    for row in rows:
        assert row["dice"] >= 0.95 and row["dice"] > row["dice_initial"]


def test_labels_names_codes_on_the_image_grid(nih):
    volume, anatomy = nih
    assert anatomy.labels.same_grid(volume) and anatomy.prior.same_grid(volume)
    assert anatomy.labels.array.dtype == np.int32
    labels = anatomy.labels.array[0]
    assert set(np.unique(labels)) <= set(CXR_LABELS) | {0}
    assert anatomy.names == CXR_LABELS and anatomy.codes == CXR_SNOMED
    prior = anatomy.prior.array
    assert prior.min() >= 0 and prior.max() <= 1 and prior[0][np.isin(labels, (1, 2))].mean() > 0.8
    grey = volume.array[0]
    # plausibility on an image without masks: the lungs are dark, the patient's right is on the image left
    for lung in (1, 2):
        assert 0.08 < (labels == lung).mean() < 0.25
        assert grey[labels == lung].mean() < grey[labels == 3].mean()
        assert grey[labels == lung].mean() < grey[labels == 4].mean()
    cols = np.arange(labels.shape[1])[None].repeat(labels.shape[0], 0)
    assert cols[labels == 1].mean() < cols[labels == 4].mean() < cols[labels == 2].mean()
    assert grey[labels == 5].mean() < grey[labels == 1].mean()  # outside the body is air


def test_structure_statistics_equal_numpy(nih):
    volume, anatomy = nih
    rng = np.random.default_rng(2)
    values = ndimage.gaussian_filter(rng.normal(size=volume.array.shape[1:]), 4)[None].astype(np.float32)
    attribution = volume.with_array(values)
    evidence = structure_evidence(attribution, anatomy)
    labels = anatomy.labels.array
    positive = np.maximum(values.astype(np.float64), 0)
    for row in evidence.structures:
        inside = labels == row["label"]
        assert row["name"] == CXR_LABELS[row["label"]]
        assert row["voxels"] == int(inside.sum())
        assert row["positive_share"] == pytest.approx(positive[inside].sum() / positive.sum(), rel=1e-9)
        assert row["positive_mean"] == pytest.approx(positive[inside].mean(), rel=1e-9)
        assert row["peak"] == pytest.approx(float(values[inside].max()), rel=1e-7)
        k, j, i = np.argwhere(inside & (values == values[inside].max()))[0]
        assert (row["peak_r"], row["peak_a"], row["peak_s"]) == pytest.approx(
            tuple(volume.index_to_ras((i, j, k))), abs=1e-4
        )
    chest = np.isin(labels, (1, 2, 3, 4))
    assert evidence.chest_share == pytest.approx(positive[chest].sum() / positive.sum(), rel=1e-9)
    assert evidence.other_share == pytest.approx(positive[labels == 0].sum() / positive.sum(), rel=1e-9)
    weighted = anatomy_weighted(attribution, anatomy)
    assert np.array_equal(weighted.array, values * anatomy.prior.array)
    with pytest.raises(XAIError, match="different grids"):
        shifted = Volume(values, volume.spacing, np.add(volume.origin, 1.0), volume.direction)
        structure_evidence(shifted, anatomy)


def _gauss(sigma: float, size: int) -> np.ndarray:
    r = np.arange(size) - size // 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    return np.outer(g, g) / np.outer(g, g).sum()


class BrightSpotNet(nn.Module):
    """A fixed 2D detector: the largest difference-of-Gaussians response (a bright spot or stroke)."""

    def __init__(self, size: int = 21) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, size, padding=size // 2, bias=False, padding_mode="replicate")
        with torch.no_grad():
            self.conv.weight[:] = torch.tensor(_gauss(1.5, size) - _gauss(4.0, size))[None, None]

    def forward(self, x):
        return torch.amax(self.conv(x).flatten(1), dim=1, keepdim=True)


def test_shortcut_flag_fires_on_a_planted_marker_and_not_on_a_clean_image(nih):
    volume, anatomy = nih
    labels = anatomy.labels.array[0]
    rows, cols = np.nonzero(labels == 1)
    r0, c0 = int(rows.mean()), int(cols.mean())
    rr, cc = np.mgrid[: labels.shape[0], : labels.shape[1]]
    clean = volume.array[0] + 0.6 * np.exp(-((rr - r0) ** 2 + (cc - c0) ** 2) / (2 * 3.0**2))  # lung nodule
    marked = clean.copy()
    marked[6:22, 110:113] = 1.5  # a bright "L" in the top-right corner, as film markers are
    marked[19:22, 110:121] = 1.5
    model = SliceAdapter(BrightSpotNet()).eval()
    results = {}
    for name, image in (("clean", clean), ("marked", marked)):
        scan = volume.with_array(image[None].astype(np.float32))
        x = volume_tensor(scan.array)
        attribution = get_method("saliency").fn(model, x, ClassTarget(0))
        amap = volume.with_array(xyz_to_kji(attribution.map))
        evidence = structure_evidence(amap, anatomy)
        faith = compare_faithfulness(model, x, ClassTarget(0), amap, anatomy, steps=20, n_random=2)
        results[name] = (evidence, faith.summary)
        print(name, evidence.text, faith.summary)
    clean_ev, clean_faith = results["clean"]
    marked_ev, marked_faith = results["marked"]
    assert not clean_ev.shortcut and clean_ev.peak_structure == "right lung" and clean_ev.chest_share > 0.9
    assert marked_ev.shortcut and "SHORTCUT" in marked_ev.text and marked_ev.outside_share > 0.9
    assert marked_ev.peak_structure in ("outside body", "body, other")
    # the anatomy prior hides what the model really uses: the weighted map deletes the evidence slower
    assert marked_faith["deletion_auc_weighted"] > marked_faith["deletion_auc_plain"] + 0.05
    # on the clean image the evidence is in the lung, where the prior is ~1: both maps are as faithful
    assert clean_faith["deletion_auc_weighted"] == pytest.approx(clean_faith["deletion_auc_plain"], abs=0.05)
    assert clean_faith["deletion_auc_plain"] < clean_faith["deletion_auc_random"]


def test_bad_input_is_one_clear_error(shared_data, oblique_volume):
    atlas = cxr_atlas.chexmask_atlas(shared_data("cxr"))
    with pytest.raises(XAIError, match="one-slice radiograph"):
        cxr_anatomy(oblique_volume, atlas)  # a 3D volume
    with pytest.raises(XAIError, match="2D radiograph"):
        cxr_atlas.register_atlas(atlas, np.zeros((8, 8), np.float32))
    with pytest.raises(XAIError, match="no contrast"):
        cxr_atlas.register_atlas(atlas, np.ones((64, 64), np.float32))
    with pytest.raises(XAIError, match="missing"):
        cxr_atlas.chexmask_atlas(shared_data("ct"))  # a folder without the CheXmask files
    with pytest.raises(XAIError, match="held-out variant"):
        cxr_holdout.holdout_dice("flipped", folder=shared_data("cxr"))
