"""The background worker, for real: separate processes, a tiny MONAI network, built and real volumes.

Progress arrives at least every 2 s, Cancel stops the process tree within 2 s and leaves no output, a
crashing worker (a real segmentation fault, an abort, a broken model file) becomes a clear one-line
message, and an out-of-memory under a tiny memory budget is retried on the CPU.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import psutil
import pytest
import torch

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explain import explain
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import read_volume, write_volume
from XAIMedSlicerLib.worker import WorkerJob, WorkerProcess, create_job_folder, load_explanation, run_job
from XAIMedSlicerLib.worker.main import STAGES
from XAIMedSlicerLib.worker.protocol import ExitCode

PROMISE_S = 2.0  # the GUI's promise: progress at least this often, cancel within this time


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """An oblique, anisotropic LPS volume with a bright blob, and a tiny MONAI DenseNet as TorchScript."""
    from monai.networks.nets import DenseNet

    tmp = tmp_path_factory.mktemp("worker")
    rng = np.random.default_rng(0)
    theta = np.deg2rad(25.0)
    direction = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    array = rng.normal(0.0, 0.1, (20, 24, 28)).astype(np.float32)
    array[8:12, 10:14, 14:18] += 3.0
    image = Volume(array, spacing=(1.2, 0.9, 2.0), origin=(14.0, -22.5, 31.0), direction=direction)
    image_path = write_volume(image, tmp / "image.nrrd")
    torch.manual_seed(0)
    net = DenseNet(
        spatial_dims=3, in_channels=1, out_channels=2, init_features=4, growth_rate=4, block_config=(2,)
    )
    model_path = tmp / "tiny.ts"
    torch.jit.script(net.eval()).save(str(model_path))
    return {"image": image, "image_path": image_path, "model": model_path, "tmp": tmp}


def new_job(inputs, tmp_path, **fields) -> tuple[WorkerJob, object]:
    folder = create_job_folder(tmp_path)
    job = WorkerJob(
        image=str(inputs["image_path"]),
        model=str(inputs["model"]),
        out_dir=str(folder.out_dir),
        device="cpu",
        **fields,
    )
    return job, folder


def leftovers(folder) -> list[str]:
    """Files in a job folder besides the parent's own (job file, inputs, log)."""
    keep = {"job.json", "worker.log", "input"}
    return sorted(p.name for p in folder.root.iterdir() if p.name not in keep)


def test_result_equals_in_process_explain_and_progress_keeps_coming(inputs, tmp_path):
    job, folder = new_job(inputs, tmp_path, method="ig", params={"steps": 8})
    arrivals = []
    outcome = run_job(job, folder, on_message=arrivals.append, timeout=300)
    assert outcome.status == "done", outcome.message
    assert outcome.exit_code == ExitCode.DONE
    progress = [m for m in arrivals if m["type"] == "progress"]
    fractions = [m["fraction"] for m in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {m["stage"] for m in progress} >= {"start", "load", "explain", "write"}
    times = [m["received"] for m in arrivals]
    gaps = np.diff(times)
    assert gaps.max() <= PROMISE_S, f"no message for {gaps.max():.2f} s"
    # what the worker wrote is the pipeline's own result, on the scan's exact grid
    direct = explain(inputs["image"], inputs["model"], "ig", device="cpu", seed=0, method_params={"steps": 8})
    loaded = load_explanation(outcome.out_dir, inputs["image_path"])
    assert loaded.attribution.same_grid(inputs["image"], tol=1e-6)
    np.testing.assert_allclose(loaded.attribution.array, direct.attribution.array, rtol=1e-5, atol=1e-7)
    assert loaded.signed and loaded.method == "ig"
    assert loaded.prediction["predicted_index"] == direct.prediction["predicted_index"]
    assert loaded.provenance["method"]["params"]["steps"] == 8
    assert sorted(p.name for p in outcome.out_dir.iterdir()) == [
        "attribution.nrrd",
        "explanation.json",
        "explanation.txt",
        "facts.json",
        "figure_axial.png",
        "figure_coronal.png",
        "figure_sagittal.png",
        "provenance.json",
        "report.html",
        "result.json",
        "rules.json",
    ]
    # the module and the web viewer show the same rules and words as `xaimed explain` writes
    from XAIMedSlicerLib.reasoning import write_reasoning

    write_reasoning(direct, tmp_path / "direct")
    assert (outcome.out_dir / "explanation.txt").read_text() == (
        tmp_path / "direct" / "explanation.txt"
    ).read_text()
    page = (outcome.out_dir / "report.html").read_text()
    assert "<html" in page.lower() and page.count("data:image/png;base64,") >= 3  # the key slices
    assert leftovers(folder) == ["out"]


def test_heartbeat_repeats_the_state_while_the_main_thread_is_busy(inputs, tmp_path):
    job, folder = new_job(inputs, tmp_path, fault="hang")
    proc = WorkerProcess(folder, job).start()
    seen = []

    def hanging_beats() -> list[dict]:
        return [m for m in seen if m.get("heartbeat") and m["message"] == "running the network"]

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(hanging_beats()) < 4:
        seen += proc.poll()
        time.sleep(0.05)
    proc.cancel()
    outcome = proc.wait(timeout=10)
    beats = hanging_beats()
    assert len(beats) >= 4, "the worker hangs on purpose: only heartbeats can arrive"
    assert np.diff([b["t"] for b in beats]).max() <= PROMISE_S
    assert all(b["fraction"] == beats[0]["fraction"] for b in beats)
    assert outcome.status == "cancelled" and outcome.exit_code == ExitCode.CANCELLED


def test_cancel_stops_the_process_tree_quickly_and_leaves_no_output(inputs, tmp_path):
    job, folder = new_job(
        inputs, tmp_path, method="ig", params={"steps": 5000, "rule": "riemann_trapezoid"}, chunk=1
    )
    proc = WorkerProcess(folder, job).start()
    attributing = STAGES["explain"][0] + 0.15 * (STAGES["explain"][1] - STAGES["explain"][0])
    deadline = time.monotonic() + 300
    while (
        time.monotonic() < deadline and proc.last_progress["fraction"] <= attributing and proc.outcome is None
    ):
        proc.poll()
        time.sleep(0.05)
    assert proc.outcome is None and proc.last_progress["fraction"] > attributing, (
        "the attribution never started"
    )
    tree = [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True)
    started = time.monotonic()
    proc.cancel()
    took = time.monotonic() - started
    outcome = proc.wait(timeout=10)
    assert took <= PROMISE_S, f"cancel took {took:.2f} s"
    assert outcome.status == "cancelled" and "no result" in outcome.message
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree)
    assert leftovers(folder) == [], "a cancelled job leaves nothing behind"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("fault", "words"), [("segfault", "segmentation fault"), ("abort", "abort")])
def test_a_crashing_worker_becomes_a_clear_message(inputs, tmp_path, fault, words):
    job, folder = new_job(inputs, tmp_path, fault=fault)
    outcome = run_job(job, folder, timeout=300)
    assert outcome.status == "failed"
    assert outcome.exit_code < 0
    assert "crashed" in outcome.message and words in outcome.message
    assert "running the network" in outcome.message and str(folder.log_path) in outcome.message
    assert "\n" not in outcome.message
    assert leftovers(folder) == []
    assert psutil.Process(os.getpid()).is_running()  # the parent (Slicer) lives on


def test_a_broken_model_file_is_a_one_line_user_error(inputs, tmp_path):
    broken = tmp_path / "broken.ts"
    broken.write_bytes(inputs["model"].read_bytes()[:5000])  # a truncated TorchScript archive
    job, folder = new_job(inputs, tmp_path)
    job.model = str(broken)
    outcome = run_job(job, folder, timeout=300)
    assert outcome.status == "failed" and outcome.exit_code == ExitCode.USER_ERROR
    assert "broken.ts" in outcome.message and "Fix:" in outcome.message and "\n" not in outcome.message
    assert "Traceback" not in outcome.message
    assert leftovers(folder) == []


def test_parameters_typed_by_the_schema_in_the_worker(inputs, tmp_path):
    """KEY=VALUE strings from the module reach the method typed; a misspelt one is the job's one-line error."""
    from types import SimpleNamespace

    from XAIMedSlicerLib.slicerlogic.request import method_parameter_items

    items = method_parameter_items(SimpleNamespace(methodParameters="samples=3\nnoise=0.2 seed=5"))
    assert items == ["samples=3", "noise=0.2", "seed=5"]
    with pytest.raises(XAIError, match="is not KEY=VALUE"):
        method_parameter_items(SimpleNamespace(methodParameters="samples"))
    job, folder = new_job(inputs, tmp_path, method="smoothgrad", param_items=items)
    outcome = run_job(job, folder, timeout=300)
    assert outcome.status == "done", outcome.message
    params = json.loads((outcome.out_dir / "provenance.json").read_text())["method"]["params"]
    assert (params["samples"], params["noise"], params["seed"]) == (3, 0.2, 5)
    job, folder = new_job(inputs, tmp_path / "bad", method="smoothgrad", param_items=["sampels=3"])
    outcome = run_job(job, folder, timeout=300)
    assert outcome.status == "failed" and outcome.exit_code == ExitCode.USER_ERROR
    assert "has no parameter 'sampels'" in outcome.message and "\n" not in outcome.message
    assert leftovers(folder) == []


def test_an_unexpected_exception_names_its_place(inputs, tmp_path):
    job, folder = new_job(inputs, tmp_path, fault="exception")
    outcome = run_job(job, folder, timeout=300)
    assert outcome.status == "failed" and outcome.exit_code == ExitCode.INTERNAL_ERROR
    assert outcome.message.startswith("internal error RuntimeError in main.py:")
    assert "Traceback" in folder.log_path.read_text()  # the full traceback is in the log, not the message


def test_out_of_memory_under_a_tiny_budget_moves_to_the_cpu(inputs, tmp_path):
    job, folder = new_job(inputs, tmp_path, method="ig", params={"steps": 8}, chunk=4, memory_budget_mb=0.01)
    arrivals = []
    outcome = run_job(job, folder, on_message=arrivals.append, timeout=300)
    assert outcome.status == "done", outcome.message
    retries = [m for m in arrivals if m["type"] == "retry"]
    assert retries, "no retry was reported"
    assert retries[-1]["next"] == {"device": "cpu", "chunk": 4, "budget_mb": None}
    failed = outcome.result["attempts"]
    assert failed and all(a["budget_mb"] == 0.01 for a in failed)
    assert all("out of memory" in a["error"] for a in failed)
    # IG takes a MemoryBudget: it halves its chunks itself and gives up only when one path point does not fit
    assert [a["chunk"] for a in failed] == [4] and "simulated out of memory" in failed[0]["error"]
    assert "halved down to one item" in retries[0]["message"]
    info = outcome.result["provenance"]["method"]["info"]
    assert info["chunks"]["device"] == "cpu" and info["chunks"]["retries"] == 0
    direct = explain(inputs["image"], inputs["model"], "ig", device="cpu", seed=0, method_params={"steps": 8})
    loaded = load_explanation(outcome.out_dir, inputs["image_path"])
    np.testing.assert_allclose(loaded.attribution.array, direct.attribution.array, rtol=1e-4, atol=1e-6)


def test_segment_mode_runs_meshnet_on_a_real_t1_crop(tmp_path, shared_data):
    from XAIMedSlicerLib.model import load_model
    from XAIMedSlicerLib.worker.results import load_labels
    from XAIMedSlicerLib.worker.segment import predict_labels

    t1 = read_volume(shared_data("brain/t1_crop.nii.gz"))
    crop = Volume(
        np.ascontiguousarray(t1.array[100:132, 110:142, 100:132]),
        t1.spacing,
        tuple(t1.ijk_to_lps()[:3, :3] @ np.array([100, 110, 100]) + np.array(t1.origin)),
        t1.direction,
    )
    image_path = write_volume(crop, tmp_path / "t1_crop.nrrd")
    model = shared_data("models/meshnet/model5_gw_ae")
    folder = create_job_folder(tmp_path)
    job = WorkerJob(
        image=str(image_path), model=str(model), out_dir=str(folder.out_dir), mode="segment", device="cpu"
    )
    outcome = run_job(job, folder, timeout=300)
    assert outcome.status == "done", outcome.message
    labels, names = load_labels(outcome.out_dir)
    direct, direct_names = predict_labels(crop, load_model(model, "cpu"))
    assert labels.same_grid(crop, tol=1e-6)
    np.testing.assert_array_equal(labels.array, direct.array)
    assert names == direct_names and set(names) <= {1, 2}
    assert set(np.unique(labels.array)) - {0} == set(names)


def test_devices_probe_lists_the_cpu():
    from XAIMedSlicerLib.worker import probe_devices

    devices = probe_devices(timeout=120)
    assert devices[0]["device"] == "cpu" and "error" not in devices[0]
    assert len(devices) == 1 + (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_job_files_round_trip_and_bad_jobs_are_refused(tmp_path):
    from XAIMedSlicerLib.errors import XAIError

    job = WorkerJob(
        image="a.nrrd", model="m.ts", out_dir=str(tmp_path / "out"), region="box", box=[0, 0, 0, 1, 2, 3]
    )
    path = job.write(tmp_path / "job.json")
    assert WorkerJob.read(path) == job
    for bad in (
        {"region": "box", "box": [1, 2, 3]},
        {"region": "point"},
        {"region": "mask"},
        {"mode": "train"},
        {"chunk": 0},
        {"fault": "fire"},
    ):
        with pytest.raises(XAIError) as err:
            WorkerJob(image="a", model="m", out_dir="o", **bad)
        assert "\n" not in str(err.value) and "Fix:" in str(err.value)
    (tmp_path / "extra.json").write_text(json.dumps({**job.to_dict(), "colour": "red"}))
    with pytest.raises(XAIError, match="unknown job fields"):
        WorkerJob.read(tmp_path / "extra.json")
