"""The one result format: an exact round trip, and CLI and worker output read by the same loader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinynets import BlobClassifier, save_torchscript
from XAIMedSlicerLib.cli import main
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explain import explain
from XAIMedSlicerLib.explanation_io import FORMAT_VERSION, load_explanation, save_explanation
from XAIMedSlicerLib.io.volumes import write_volume


def assert_same(a, b) -> None:
    """Arrays equal, geometry to 1e-4 mm, every recorded field equal."""
    for va, vb in ((a.image, b.image), (a.attribution, b.attribution)):
        np.testing.assert_array_equal(va.array, vb.array)
        assert va.array.dtype == vb.array.dtype
        np.testing.assert_allclose(va.spacing, vb.spacing, atol=1e-4)
        np.testing.assert_allclose(va.origin, vb.origin, atol=1e-4)
        np.testing.assert_allclose(va.direction, vb.direction, atol=1e-6)
        np.testing.assert_allclose(va.ijk_to_ras(), vb.ijk_to_ras(), atol=1e-4)
    assert (a.labels is None) == (b.labels is None)
    if a.labels is not None:
        np.testing.assert_array_equal(a.labels.array, b.labels.array)
    for name in ("signed", "method", "prediction", "target", "label_names", "structures"):
        assert json.loads(json.dumps(getattr(a, name))) == json.loads(json.dumps(getattr(b, name))), name


@pytest.fixture
def case(tmp_path, oblique_volume):
    labels = np.zeros(oblique_volume.array.shape, np.int16)
    labels[6:13, 12:20, 8:16] = 1
    model = save_torchscript(BlobClassifier(), tmp_path / "blob.ts")
    image_path = write_volume(oblique_volume, tmp_path / "scan.nrrd")
    return {"image": oblique_volume, "image_path": image_path, "labels": oblique_volume.with_array(labels),
            "model": model, "tmp": tmp_path}  # fmt: skip


def test_round_trip_is_exact_and_versioned(case):
    expl = explain(case["image"], case["model"], "ig", target=0, labels=case["labels"],
                   label_names={1: "blob"}, device="cpu", method_params={"steps": 4})  # fmt: skip
    folder = case["tmp"] / "expl"
    save_explanation(expl, folder, include_image=True)
    index = json.loads((folder / "explanation.json").read_text())
    assert index["format_version"] == FORMAT_VERSION
    assert not [p for p in case["tmp"].iterdir() if p.name.startswith(".")]  # no staging left behind
    loaded = load_explanation(folder)
    assert_same(expl, loaded)
    assert loaded.attribution.array.dtype == np.float32
    assert loaded.label_names == {1: "blob"}
    # the scan by reference: the recorded hash must match
    save_explanation(expl, case["tmp"] / "by_ref", image_path=case["image_path"])
    assert_same(expl, load_explanation(case["tmp"] / "by_ref"))
    other = case["image"].with_array(case["image"].array + 1.0)
    with pytest.raises(XAIError, match="does not match"):
        load_explanation(case["tmp"] / "by_ref", other)
    index["format_version"] = 99
    (folder / "explanation.json").write_text(json.dumps(index))
    with pytest.raises(XAIError, match="format_version 99"):
        load_explanation(folder)


def test_cli_and_worker_output_load_with_the_same_loader(case, capsys):
    from XAIMedSlicerLib.worker import WorkerJob, create_job_folder, run_job

    reference = explain(case["image_path"], case["model"], "gradcam", target=0, device="cpu")
    out = case["tmp"] / "cli"
    code = main(["explain", "--image", str(case["image_path"]), "--model", str(case["model"]),
                 "--method", "gradcam", "--target", "0", "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    from_cli = load_explanation(out, case["image_path"])
    assert_same(reference, from_cli)
    folder = create_job_folder(case["tmp"])
    job = WorkerJob(image=str(case["image_path"]), model=str(case["model"]), out_dir=str(folder.out_dir),
                    device="cpu", method="gradcam", target="0")  # fmt: skip
    outcome = run_job(job, folder, timeout=300)
    assert outcome.ok, outcome
    from_worker = load_explanation(outcome.out_dir, case["image_path"])
    assert_same(reference, from_worker)
    assert_same(from_cli, load_explanation(outcome.out_dir))  # the worker recorded where its scan is
