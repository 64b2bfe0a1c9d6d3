"""Segmentation targets on the real pretrained MeshNet, on a crop of the real T1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from XAIMedSlicerLib.explain import explain
from XAIMedSlicerLib.model.loader import load_model
from XAIMedSlicerLib.preprocess import prepare_input

CROP = 40


@pytest.fixture(scope="module")
def t1_case(shared_data):
    from XAIMedSlicerLib.io.volumes import read_volume

    image = read_volume(shared_data("brain/t1_crop.nii.gz"))
    labels = read_volume(shared_data("brain/t1_crop_tissue3_pred_model5_gw_ae.nii.gz"))
    model = load_model(shared_data("models/meshnet/model5_gw_ae"), device="cpu")
    centre = image.index_to_ras((127, 128, 110))
    return image, labels, model, centre


def test_meshnet_card_from_brainchop_folder(t1_case):
    _, _, model, _ = t1_case
    assert model.kind == "meshnet"
    assert model.card.classes == ["background", "White Matter", "Grey Matter"]
    assert sum(p.numel() for p in model.network.parameters()) == 5598  # as the data README states


@pytest.mark.parametrize("method", ["gradcam", "ig"])
def test_predicted_region_target_on_crop(t1_case, method):
    image, labels, model, centre = t1_case
    params = {"steps": 32, "rule": "riemann_trapezoid", "batch_size": 8} if method == "ig" else {}
    expl = explain(image, model, method, target="Grey Matter", roi=(centre, (CROP,) * 3), method_params=params,
                   labels=labels, label_names={1: "White Matter", 2: "Grey Matter"})  # fmt: skip
    # the region is exactly the crop's predicted grey matter
    x = prepare_input(image, model.card.preprocessing, roi=(centre, (CROP,) * 3)).tensor
    with torch.no_grad():
        predicted = model.network(x)[0].argmax(0) == 2
    assert expl.target["region_voxels"] == int(predicted.sum()) > 0
    attr = expl.attribution
    assert attr.same_grid(image)
    # nothing outside the crop: the crop's corners bound every non-zero voxel
    grid = np.asarray(expl.provenance["preprocessing"]["model_grid"]["ijk_to_ras"])
    corners = [
        grid @ np.array([a, b, c, 1.0]) for a in (0, CROP - 1) for b in (0, CROP - 1) for c in (0, CROP - 1)
    ]
    idx = np.array([image.ras_to_index(p[:3]) for p in corners])  # (i, j, k)
    nonzero = np.argwhere(attr.array != 0)[:, ::-1]  # (i, j, k)
    assert nonzero.size > 0
    assert np.all(nonzero >= idx.min(0) - 1) and np.all(nonzero <= idx.max(0) + 1)
    if method == "ig":
        assert expl.provenance["method"]["info"]["completeness_error"] <= 0.05
    assert {r["name"] for r in expl.structures} == {"White Matter", "Grey Matter"}


class RegionAsClass(nn.Module):
    """A segmentation network seen as a one-logit classifier: its logits of class k summed in a mask."""

    def __init__(self, net: nn.Module, index: int, mask: torch.Tensor) -> None:
        super().__init__()
        self.net, self.index, self.mask = net, index, mask

    def forward(self, x):
        return (self.net(x)[:, self.index] * self.mask).flatten(1).sum(1, keepdim=True)


def test_region_gradcam_matches_monai_on_meshnet(t1_case):
    from monai.visualize import GradCAM

    from XAIMedSlicerLib.methods import get_method
    from XAIMedSlicerLib.methods.targets import RegionTarget

    image, _, model, centre = t1_case
    x = prepare_input(image, model.card.preprocessing, roi=(centre, (CROP,) * 3)).tensor
    with torch.no_grad():
        mask = model.network(x)[0].argmax(0) == 1
    layer = model.card.gradcam_layer
    ours = get_method("gradcam").fn(model.network, x, RegionTarget(1, mask), layer=layer).map.numpy()
    wrapped = RegionAsClass(model.network, 1, mask.float())
    ref = GradCAM(nn_module=wrapped, target_layers=f"net.{layer}", postprocessing=lambda m: m)(
        x.clone().requires_grad_(True), class_idx=0
    )
    ref = ref[0, 0].detach().numpy()
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] >= 0.99
