"""The command line: complete outputs on success, one-line errors and no partial output on bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from safetensors.torch import save_file

from tinynets import BlobClassifier, save_torchscript, small_densenet
from XAIMedSlicerLib.cli import main
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import read_volume, write_volume


@pytest.fixture
def case(tmp_path, oblique_volume):
    image = write_volume(oblique_volume, tmp_path / "scan.nrrd")
    labels = np.zeros(oblique_volume.array.shape, np.int16)
    labels[6:13, 12:20, 8:16] = 1  # around the blob
    labels[0:5, 0:10, 0:10] = 2
    label_path = write_volume(oblique_volume.with_array(labels), tmp_path / "labels.nii.gz")
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"1": "blob region", "2": "corner"}))
    model = save_torchscript(BlobClassifier(), tmp_path / "blob.ts")
    return {"image": image, "labels": label_path, "names": names, "model": model, "tmp": tmp_path}


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_explain_writes_every_output(case, capsys):
    out = case["tmp"] / "result"
    code, stdout, err = run_cli(
        capsys, "explain", "--image", case["image"], "--model", case["model"], "--method", "ig", "--steps", "8",
        "--target", "0", "--labels", case["labels"], "--label-names", case["names"], "--out", out,
    )  # fmt: skip
    assert code == 0, err
    expected = {"attribution.nrrd", "structures.csv", "structures.json", "overlay_axial.png", "overlay_coronal.png",
                "overlay_sagittal.png", "scene.mrb", "provenance.json"}  # fmt: skip
    assert expected <= {p.name for p in out.iterdir()}
    attr = read_volume(out / "attribution.nrrd")
    assert attr.array.dtype == np.float32
    assert attr.same_grid(read_volume(case["image"]))
    rows = json.loads((out / "structures.json").read_text())
    assert rows[0]["name"] == "blob region"
    prov = json.loads((out / "provenance.json").read_text())
    for key in ("versions", "model", "method", "target", "seed", "device", "seconds"):
        assert key in prov
    assert prov["method"]["params"]["steps"] == 8
    assert set(prov["seconds"]) >= {"read", "preprocess", "inference", "attribution", "map_back"}
    assert len(prov["model"]["sha256"]) == 64
    assert "blob region" in stdout
    # a second run into the same folder is refused, and leaves the first result intact
    before = (out / "attribution.nrrd").read_bytes()
    code, _, err = run_cli(
        capsys, "explain", "--image", case["image"], "--model", case["model"], "--out", out
    )
    assert code == 2 and "not empty" in err and len(err.strip().splitlines()) == 1
    assert (out / "attribution.nrrd").read_bytes() == before
    # --force replaces our files only
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(
        capsys, "explain", "--image", case["image"], "--model", case["model"], "--out", out, "--force"
    )
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"


def test_method_parameters_from_the_command_line(case, capsys):
    """--param KEY=VALUE reaches the method (values read as JSON) and is recorded in the provenance."""
    from XAIMedSlicerLib.explain import explain

    out = case["tmp"] / "gl"
    code, _, err = run_cli(
        capsys, "explain", "--image", case["image"], "--model", case["model"], "--method", "ig",
        "--target", "0", "--param", "rule=gausslegendre", "--param", "steps=6", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    params = json.loads((out / "provenance.json").read_text())["method"]["params"]
    assert params["rule"] == "gausslegendre" and params["steps"] == 6
    direct = explain(
        case["image"], case["model"], "ig", 0, method_params={"rule": "gausslegendre", "steps": 6}
    )
    np.testing.assert_allclose(
        read_volume(out / "attribution.nrrd").array, direct.attribution.array, atol=1e-6
    )
    adaptive = explain(case["image"], case["model"], "ig", 0, method_params={"steps": 6})
    assert not np.allclose(adaptive.attribution.array, direct.attribution.array, atol=1e-6)


def _bad_inputs(case) -> dict[str, tuple[list, str]]:
    tmp = case["tmp"]
    flat = sitk.GetImageFromArray(np.zeros((20, 20), np.float32))
    sitk.WriteImage(flat, str(tmp / "flat.nrrd"))
    four = sitk.JoinSeries([sitk.GetImageFromArray(np.zeros((5, 6, 7), np.float32))] * 3)
    sitk.WriteImage(four, str(tmp / "four.nii.gz"))
    vol = read_volume(case["image"])
    nan = vol.array.copy()
    nan[2, 3, 4] = np.nan
    write_volume(vol.with_array(nan), tmp / "nan.nrrd")
    far = Volume(np.ones((5, 5, 5), np.int16), (1, 1, 1), (9000.0, 9000.0, 9000.0))
    write_volume(far, tmp / "far_labels.nrrd")
    net = small_densenet()
    save_file(net.state_dict(), str(tmp / "dense.safetensors"))
    card = {"name": "d", "task": "classification", "classes": ["a", "b"], "weights": "dense.safetensors",
            "network": {"name": "DenseNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                        "init_features": 8, "growth_rate": 4, "block_config": [2, 2]}}}  # fmt: skip
    (tmp / "good.json").write_text(json.dumps(card))
    (tmp / "unknown_net.json").write_text(json.dumps({**card, "network": {"name": "NoSuchNet", "args": {}}}))
    misfit = {**card, "network": {**card["network"], "args": {**card["network"]["args"], "growth_rate": 6}}}
    (tmp / "misfit.json").write_text(json.dumps(misfit))
    img, model = case["image"], case["model"]
    return {
        "2d": (["--image", tmp / "flat.nrrd", "--model", model], "2D image"),
        "4d": (["--image", tmp / "four.nii.gz", "--model", model], "4D image"),
        "nan": (["--image", tmp / "nan.nrrd", "--model", model], "NaN or Inf"),
        "labels": (
            ["--image", img, "--model", model, "--labels", tmp / "far_labels.nrrd"],
            "does not overlap",
        ),
        "network": (["--image", img, "--model", tmp / "unknown_net.json"], "unknown network"),
        "layer": (
            ["--image", img, "--model", tmp / "good.json", "--layer", "features.nope"],
            "layer 'features.nope' not found",
        ),
        "weights": (["--image", img, "--model", tmp / "misfit.json"], "do not fit the network"),
        "missing": (["--image", tmp / "missing.nii.gz", "--model", model], "file not found"),
        "param": (
            ["--image", img, "--model", model, "--method", "ig", "--param", "nosuch=1"],
            "method 'ig' has no parameter 'nosuch'",
        ),
    }


@pytest.mark.parametrize(
    "kind", ["2d", "4d", "nan", "labels", "network", "layer", "weights", "missing", "param"]
)
def test_bad_input_gives_one_line_and_no_output(case, capsys, kind):
    args, message = _bad_inputs(case)[kind]
    out = case["tmp"] / f"out_{kind}"
    code, stdout, err = run_cli(capsys, "explain", *args, "--out", out)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xaimed: error:"), err
    assert message in lines[0]
    assert "Traceback" not in err
    assert not out.exists()
    assert not [p for p in case["tmp"].iterdir() if p.name.startswith(f".out_{kind}")]


def test_console_script_is_installed(tmp_path):
    exe = shutil.which("xaimed") or str(__import__("pathlib").Path(sys.executable).with_name("xaimed"))
    result = subprocess.run([exe, "methods"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "gradcam" in result.stdout and "ig" in result.stdout


def test_benchmark_command_writes_tables(tmp_path, capsys, shared_data):
    data = shared_data("ct/example_ct_sm.nii.gz").parents[1]
    out = tmp_path / "bench"
    code, stdout, err = run_cli(
        capsys, "benchmark", "--out", out, "--setting", "ci", "--datasets", "ct", "--methods", "saliency", "gradcam",
        "--data", data,
    )  # fmt: skip
    assert code == 0, err
    result = json.loads((out / "benchmark.json").read_text())
    methods = {row["method"] for row in result["scores"]}
    assert {"saliency", "gradcam"} <= methods
    assert (out / "benchmark.md").read_text().strip() in stdout
