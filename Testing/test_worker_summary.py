"""What the module shows about a model before any worker runs (read from small files, no PyTorch)."""

from __future__ import annotations

import json

import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.worker.summary import model_summary


def test_meshnet_folder_gives_the_class_names_of_its_matching_colour_table(shared_data):
    folder = shared_data("models/meshnet/model5_gw_ae")
    summary = model_summary(folder)
    config = json.loads((folder / "model.json").read_text())
    assert summary["kind"] == "meshnet" and summary["task"] == "segmentation"
    assert len(summary["classes"]) == config["layers"][-1]["out_channels"]
    assert summary["classes"] == json.loads((folder / "colormap3.json").read_text())["labels"]


def test_card_bundle_and_torchscript(tmp_path):
    import torch

    card = tmp_path / "card.json"
    card.write_text(
        json.dumps(
            {
                "name": "lesion",
                "task": "classification",
                "classes": ["healthy", "lesion"],
                "network": {"name": "DenseNet121", "args": {}},
                "weights": "w.safetensors",
            }
        )
    )
    assert model_summary(card) == {
        "kind": "card",
        "task": "classification",
        "classes": ["healthy", "lesion"],
        "name": "lesion",
    }

    bundle = tmp_path / "spleen_bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    meta = {
        "network_data_format": {
            "outputs": {"pred": {"type": "image", "channel_def": {"1": "spleen", "0": "background"}}}
        }
    }
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    assert model_summary(bundle) == {
        "kind": "bundle",
        "task": "segmentation",
        "classes": ["background", "spleen"],
        "name": "spleen_bundle",
    }

    ts = tmp_path / "net.ts"
    torch.jit.script(torch.nn.Conv3d(1, 2, 3)).save(str(ts))
    assert model_summary(ts)["kind"] == "torchscript"


def test_what_is_no_model_is_a_one_line_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "missing.ts", tmp_path / "notes.txt", tmp_path / "empty"):
        with pytest.raises(XAIError) as err:
            model_summary(path)
        assert "\n" not in str(err.value) and "Fix:" in str(err.value)
