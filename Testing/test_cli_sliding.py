"""Full-size scans: a patch network runs by sliding windows from the CLI, Python and the worker job."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference
from safetensors.torch import save_file

from test_methods_support import one_thread  # noqa: F401  (autouse fixture)
from XAIMedSlicerLib.cli import main
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explain import explain
from XAIMedSlicerLib.io.volumes import read_volume, write_volume
from XAIMedSlicerLib.model.loader import load_model
from XAIMedSlicerLib.preprocess import prepare_input
from XAIMedSlicerLib.worker.job import WorkerJob

ROI = (16, 16, 16)


@pytest.fixture
def unet_case(tmp_path, oblique_volume):
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [4, 8, 16],
            "strides": [2, 2], "num_res_units": 1}  # fmt: skip
    save_file(UNet(**args).state_dict(), str(tmp_path / "unet.safetensors"))
    card = {"name": "patch unet", "task": "segmentation", "classes": ["background", "a", "b"],
            "weights": "unet.safetensors", "network": {"name": "UNet", "args": args}}  # fmt: skip
    (tmp_path / "unet.json").write_text(json.dumps(card))
    image = write_volume(oblique_volume, tmp_path / "scan.nrrd")
    return {"image": image, "model": tmp_path / "unet.json", "tmp": tmp_path}


def test_sliding_window_from_the_cli_equals_python_and_monai_inference(unet_case, capsys):
    out = unet_case["tmp"] / "out"
    code = main(
        ["explain", "--image", str(unet_case["image"]), "--model", str(unet_case["model"]), "--method",
         "saliency", "--target", "1", "--sliding-window", *map(str, ROI), "--sliding-overlap", "0.5",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["sliding_window"] == {"roi_size": list(ROI), "overlap": 0.5, "mode": "gaussian"}
    direct = explain(
        unet_case["image"], unet_case["model"], "saliency", 1, sliding_window=ROI, sliding_overlap=0.5
    )
    np.testing.assert_allclose(
        read_volume(out / "attribution.nrrd").array, direct.attribution.array, atol=1e-6
    )
    # the prediction is MONAI's sliding-window inference of the same network
    loaded = load_model(unet_case["model"], "cpu")
    x = prepare_input(read_volume(unet_case["image"]), loaded.card.preprocessing, "cpu").tensor
    with torch.inference_mode():
        ref = sliding_window_inference(x, ROI, 1, loaded.network, 0.5, "gaussian")
    counts = torch.bincount(ref[0].argmax(0).flatten(), minlength=3).tolist()
    assert direct.prediction["voxels_per_class"] == counts
    # the same network on the whole odd-sized scan cannot run at all: sliding windows make it reachable
    with pytest.raises(Exception, match="Sizes of tensors must match"):
        explain(unet_case["image"], unet_case["model"], "saliency", 1)


@pytest.mark.parametrize(("window", "overlap", "message"), [((16, 16), 0.25, "positive sizes"),
                                                            (ROI, 1.5, r"outside \[0, 1\)")])  # fmt: skip
def test_bad_sliding_window_is_a_one_line_error(unet_case, window, overlap, message):
    with pytest.raises(XAIError, match=message):
        explain(unet_case["image"], unet_case["model"], "saliency", 1, sliding_window=window,
                sliding_overlap=overlap)  # fmt: skip


def test_worker_job_carries_the_sliding_window(tmp_path):
    job = WorkerJob(
        image="/a.nrrd", model="/m.json", out_dir=str(tmp_path / "o"), sliding_window=[96, 96, 96]
    )
    again = WorkerJob.from_dict(json.loads(json.dumps(job.to_dict())))
    assert again.sliding_window == [96, 96, 96] and again.sliding_overlap == 0.25
