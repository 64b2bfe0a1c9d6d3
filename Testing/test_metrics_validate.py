"""The map checks shown beside each map: equal to the metrics run directly, written by the worker, kept on
the attribution node through a saved scene, and a method that fails them (guided backprop) marked failed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tinynets import small_densenet
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.targets import ClassTarget
from XAIMedSlicerLib.metrics import cascading_randomisation, evaluate_faithfulness, map_flags
from XAIMedSlicerLib.metrics.validate import validate_explanation
from XAIMedSlicerLib.scene import add_volume, create_scene, load_mrb, save_mrb
from XAIMedSlicerLib.scene.flags import FAILED_MARKER, get_flags
from XAIMedSlicerLib.slicerlogic import ExplainRequest, ExplainSession


def blob_input(size: int = 16) -> torch.Tensor:
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 0.2, (size,) * 3).astype(np.float32)
    x[5:10, 6:11, 4:9] += 2.0
    return torch.from_numpy(x)[None, None]


def test_validation_equals_the_metrics_run_directly():
    torch.set_num_threads(2)
    net, x, target = small_densenet(), blob_input(), ClassTarget(0)
    fn = get_method("saliency").fn
    got = validate_explanation(net, x, target, "saliency", layers=3, steps=12, n_random=2)
    rand = cascading_randomisation(net, x, target, fn, method="saliency", max_layers=3)
    faith = evaluate_faithfulness(
        net, x, target, fn(net, x, target).map, steps=12, n_random=2, insertion=False
    )
    flags = map_flags(rand, faith)
    assert got["text"] == flags.text
    assert got["failed"] == (not flags.trustworthy)
    assert got["deletion"]["normalised_auc"] == pytest.approx(faith.deletion.normalised_auc, rel=1e-9)
    assert got["deletion"]["random_normalised_auc"] == pytest.approx(
        faith.deletion_random.normalised_auc, rel=1e-9
    )
    assert [s["spearman"] for s in got["randomisation"]["layers"]] == pytest.approx(
        [s.spearman for s in rand.layers], rel=1e-9
    )
    assert len(got["randomisation"]["layers"]) == 3
    json.dumps(got)  # plain JSON for result.json and node attributes


def test_guided_backprop_on_a_relu_network_is_marked_failed_and_saliency_is_not():
    torch.set_num_threads(2)
    net, x, target = small_densenet(), blob_input(), ClassTarget(0)
    guided = validate_explanation(net, x, target, "guided_backprop")
    plain = validate_explanation(net, x, target, "saliency")
    print(guided["text"], "|", plain["text"])
    assert guided["failed"] and "randomisation" in guided["failed_checks"]
    assert guided["text"].startswith("FAILS randomisation check") and "not trustworthy" in guided["text"]
    assert guided["randomisation"]["mean_spearman"] >= guided["randomisation"]["threshold"]
    assert plain["text"].startswith("passes randomisation check")
    assert plain["randomisation"]["mean_spearman"] < guided["randomisation"]["mean_spearman"]


@pytest.fixture(scope="module")
def card_model(tmp_path_factory):
    """A real MONAI DenseNet as a model card (eager, so its layers can be re-initialised)."""
    tmp = tmp_path_factory.mktemp("validate")
    save_file(small_densenet().state_dict(), str(tmp / "dense.safetensors"))
    card = {"name": "d", "task": "classification", "classes": ["a", "b"], "weights": "dense.safetensors",
            "network": {"name": "DenseNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                        "init_features": 8, "growth_rate": 4, "block_config": [2, 2]}}}  # fmt: skip
    (tmp / "card.json").write_text(json.dumps(card))
    return tmp / "card.json"


@pytest.mark.parametrize("method", ["saliency", "guided_backprop"])
def test_worker_writes_flags_that_the_node_keeps_through_a_saved_scene(card_model, tmp_path, method):
    ss = create_scene()
    scan = Volume(blob_input()[0, 0].numpy().transpose(2, 1, 0).copy(), (1.2, 1.0, 1.5), (3.0, -4.0, 5.0))
    scan_node = add_volume(ss, scan, "user scan")
    p = ExplainRequest(inputVolume=scan_node, modelPath=card_model, method=method, device="cpu")
    assert p.validateMap is True
    messages = []
    outcome, node = ExplainSession(ss).process(p, timeout=300, on_message=messages.append)
    assert outcome.status == "done", outcome.message
    assert "validate" in {m.get("stage") for m in messages if m.get("type") == "progress"}
    flags = get_flags(node)
    numbers = flags["numbers"]
    assert flags["text"] == numbers["text"] and flags["failed"] == numbers["failed"]
    assert len(numbers["randomisation"]["layers"]) == 3
    print(method, flags["text"])
    rand, deletion = numbers["randomisation"], numbers["deletion"]
    fails = rand["mean_spearman"] >= rand["threshold"]
    fails |= not deletion["normalised_auc"] < deletion["random_normalised_auc"]
    assert flags["failed"] == fails
    if method == "guided_backprop":  # insensitive to the weights, as in the direct test above
        assert flags["failed"] and flags["text"].startswith("FAILS randomisation check")
    assert node.GetName().endswith(FAILED_MARKER) == flags["failed"]
    assert scan_node.GetName() == "user scan" and get_flags(scan_node) is None
    loaded = load_mrb(save_mrb(ss, tmp_path / "scene.mrb"))
    back = loaded.scene.GetFirstNodeByName(node.GetName())
    assert get_flags(back) == flags
