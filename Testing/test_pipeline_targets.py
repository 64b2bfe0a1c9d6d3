"""The attribution peak lands on the evidence, in physical space, for both methods and model forms."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tinynets import BlobClassifier, save_torchscript
from XAIMedSlicerLib.explain import explain
from XAIMedSlicerLib.io.volumes import read_volume, write_volume
from XAIMedSlicerLib.methods.targets import ClassTarget, RegionTarget

BLOB_IJK = (11.5, 15.5, 9.0)  # centre of the blob in the oblique_volume fixture (i, j, k)


def peak_ras(volume):
    k, j, i = np.unravel_index(int(np.argmax(volume.array)), volume.array.shape)
    return volume.index_to_ras((i, j, k))


@pytest.mark.parametrize("method", ["gradcam", "ig"])
@pytest.mark.parametrize("script", [True, False], ids=["scripted", "traced"])
def test_torchscript_peak_at_known_point(oblique_volume, tmp_path, method, script):
    image_path = write_volume(oblique_volume, tmp_path / "scan.nrrd")
    model_path = save_torchscript(BlobClassifier(), tmp_path / "blob.ts", script=script)
    expl = explain(image_path, model_path, method, target=0, device="cpu")
    assert expl.attribution.same_grid(read_volume(image_path))
    truth = oblique_volume.index_to_ras(BLOB_IJK)
    distance = np.linalg.norm(peak_ras(expl.attribution) - truth)
    # within one voxel: half the diagonal of the blob plus one voxel diagonal
    assert distance <= np.linalg.norm(oblique_volume.spacing), distance
    assert expl.prediction["predicted_index"] == 0


@pytest.mark.parametrize("method", ["gradcam", "ig"])
def test_card_with_resampling_maps_back(oblique_volume, tmp_path, method):
    """Orientation + spacing + pad/crop in the card; the map must come back onto the scan grid."""
    from safetensors.torch import save_file

    save_file(BlobClassifier().state_dict(), str(tmp_path / "blob.safetensors"))
    card = {
        "format": "xaimed-model-card/1",
        "name": "blob",
        "task": "classification",
        "classes": ["blob", "no blob"],
        "network": {"name": "BlobClassifierNotInMonai", "args": {}},
        "weights": "blob.safetensors",
        "preprocessing": {
            "orientation": "RAS",
            "spacing": [1.5, 1.5, 1.5],
            "intensity": {"type": "zscore"},
            "spatial_size": [40, 40, 40],
        },
    }
    (tmp_path / "card.json").write_text(json.dumps(card))
    # the card names a network outside MONAI: a clear error
    from XAIMedSlicerLib.errors import XAIError

    with pytest.raises(XAIError, match="unknown network"):
        explain(oblique_volume, tmp_path / "card.json", method, device="cpu")
    # the same network as TorchScript in a bundle-free card is not possible, so use the loader directly
    from XAIMedSlicerLib.model.card import ModelCard
    from XAIMedSlicerLib.model.loader import LoadedModel
    from XAIMedSlicerLib.model.weights import sha256_of

    net = BlobClassifier().eval()
    loaded = LoadedModel(
        net,
        ModelCard.read(tmp_path / "card.json"),
        "card",
        tmp_path / "card.json",
        sha256_of(tmp_path / "blob.safetensors"),
        torch.device("cpu"),
    )
    expl = explain(oblique_volume, loaded, method, target="blob")
    assert expl.attribution.same_grid(oblique_volume)
    truth = oblique_volume.index_to_ras(BLOB_IJK)
    assert np.linalg.norm(peak_ras(expl.attribution) - truth) <= np.linalg.norm(oblique_volume.spacing)
    assert expl.provenance["preprocessing"]["transforms"] == [
        "Orientation",
        "Spacing",
        "NormalizeIntensity",
        "ResizeWithPadOrCrop",
    ]


def test_region_target_sums_logits_in_mask():
    out = torch.randn(2, 3, 4, 5, 6)
    mask = torch.zeros(4, 5, 6, dtype=torch.bool)
    mask[1:3, 2:4, 0:5] = True
    target = RegionTarget(2, mask, "box")
    np.testing.assert_allclose(target(out).numpy(), (out[:, 2] * mask).flatten(1).sum(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ClassTarget(1)(out[:, :, 0, 0, 0]).numpy(), out[:, 1, 0, 0, 0].numpy())
