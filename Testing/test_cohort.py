"""Cohort runs on Dask: the distributed run equals the serial one bit for bit, a killed worker loses
nothing, each worker loads the model once, a rerun skips finished maps and a bad case is one error row.

Two seeded demo cases (MNI152 template, one with a lesion and its mask) explained by the bundled demo
classifier, plus a corrupt image and a missing one; a LocalCluster of two worker processes with one
thread each.
"""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from distributed import LocalCluster

from XAIMedSlicerLib.cli import main
from XAIMedSlicerLib.cohort import read_cases, result_key, run_cohort, run_serial
from XAIMedSlicerLib.cohort.cases import write_demo_cohort
from XAIMedSlicerLib.cohort.keys import file_sha256, model_sha256
from XAIMedSlicerLib.cohort.summary import NAMES, read_study_rows
from XAIMedSlicerLib.cohort.task import CRASH_ONCE_ENV, FAITHFULNESS, ROW_FILE, TOP_K_PERCENT
from XAIMedSlicerLib.demo.model import CARD_PATH
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explanation_io import load_explanation
from XAIMedSlicerLib.io.volumes import read_volume
from XAIMedSlicerLib.metrics.localisation import evaluate_localisation
from XAIMedSlicerLib.model.loader import load_model

METHODS = ["gradcam", "saliency"]
CASES = (("lesion", 3_100_001, True), ("clean", 3_100_002, False))
GOOD = [(case_id, method) for case_id, _, _ in CASES for method in METHODS]
NUMBERS = (
    "predicted_class",
    "predicted_probability",
    "target_probability",
    "pointing_game",
    "energy_inside",
    "relevance_rank_accuracy",
    "top_k_iou",
    "deletion_auc",
    "deletion_random_auc",
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """cases.csv beside two demo cases (the lesion case with its mask), a corrupt and a missing scan."""
    folder = tmp_path_factory.mktemp("cohort")
    (folder / "corrupt.nii.gz").write_bytes(b"this is not a NIfTI file")
    bad = [f"corrupt,corrupt.nii.gz,{CARD_PATH},", f"missing,missing.nii.gz,{CARD_PATH},"]
    write_demo_cohort(folder, list(CASES), bad)
    return folder


@pytest.fixture(scope="module")
def serial(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "out"
    return run_serial(cohort / "cases.csv", METHODS, out, threads=1, device="cpu")


def by_pair(run) -> dict:
    return {(r["case_id"], r["method"]): r for r in run.rows}


def attribution(out, row) -> np.ndarray:
    return read_volume(out / "results" / row["key"] / "attribution.nrrd").array


def test_serial_rows_keys_metrics_and_summary_files(cohort, serial):
    rows = by_pair(serial)
    assert list(rows) == [
        *GOOD,
        ("corrupt", "gradcam"),
        ("corrupt", "saliency"),
        *[("missing", m) for m in METHODS],
    ]
    assert serial.computed == 4 and serial.skipped == 0 and serial.errors == 4
    assert list(serial.workers["serial"]["loads"].values()) == [1]  # one load for the whole run
    # the key is the content hash of image bytes, model, method and settings
    lesion = read_cases(cohort / "cases.csv")[0]
    extra = {
        "target": None,
        "mask": file_sha256(lesion.mask),
        "metrics": ["faithfulness", "localisation"],
        "faithfulness": FAITHFULNESS,
        "top_k_percent": TOP_K_PERCENT,
        "seed": 0,
    }
    key = result_key(file_sha256(lesion.image), model_sha256(CARD_PATH), "gradcam", {}, extra)
    assert rows[("lesion", "gradcam")]["key"] == key
    assert len({rows[p]["key"] for p in GOOD}) == 4
    # the stored explanation, the prediction and the localisation scores match direct computations
    row = rows[("lesion", "gradcam")]
    explanation = load_explanation(serial.out / "results" / key, cohort / "lesion.nii.gz")
    mask = read_volume(cohort / "lesion_mask.nii.gz").array > 0
    direct = evaluate_localisation(explanation.attribution.array, mask, k_percent=TOP_K_PERCENT)
    assert row["energy_inside"] == direct.energy_inside and row["top_k_iou"] == direct.top_k_iou
    assert row["pointing_game"] == float(direct.pointing_game)
    network = load_model(CARD_PATH, "cpu")
    from XAIMedSlicerLib.preprocess import prepare_input

    x = prepare_input(explanation.image, network.card.preprocessing).tensor
    with torch.no_grad():
        probs = torch.softmax(network.network(x), dim=1)[0]
    assert row["predicted_class"] == network.card.classes[int(probs.argmax())]
    assert row["predicted_probability"] == pytest.approx(float(probs.max()), abs=1e-6)
    assert "pointing_game" not in rows[("clean", "gradcam")]  # no mask, no localisation
    assert rows[("clean", "saliency")]["deletion_auc"] is not None
    # bad cases: one line each, the rest went on
    assert (
        rows[("corrupt", "gradcam")]["error"].startswith("cannot read")
        and "Fix:" in rows[("corrupt", "gradcam")]["error"]
    )
    assert rows[("missing", "saliency")]["error"].startswith("file not found")
    assert all("\n" not in r["error"] for r in serial.rows)
    # CSV, Parquet and the study table hold the same rows
    with open(serial.out / "summary.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    parquet = pq.read_table(serial.out / "summary.parquet").to_pylist()
    stored = {(r["case_id"], r["method"]): r for r in read_study_rows(serial.out / "study.sqlite")}
    assert (
        [(r["case_id"], r["method"]) for r in table]
        == list(rows)
        == [(r["case_id"], r["method"]) for r in parquet]
    )
    for line, typed in zip(table, parquet, strict=True):
        pair = (line["case_id"], line["method"])
        for name in NAMES:
            value = rows[pair].get(name)
            if name == "result":
                value = f"results/{rows[pair]['key']}" if rows[pair]["status"] == "ok" else None
            assert typed[name] == value and stored[pair][name] == value, name
            assert line[name] == ("" if value is None else str(value)), name


def test_distributed_run_equals_serial_survives_a_killed_worker_and_loads_once(cohort, serial, tmp_path):
    marker = tmp_path / "crashed"
    out = tmp_path / "out"
    run = run_cohort(
        cohort / "cases.csv",
        METHODS,
        out,
        workers=2,
        threads=1,
        retries=2,
        device="cpu",
        worker_env={CRASH_ONCE_ENV: str(marker)},
    )
    # a worker killed itself after computing one map and before writing it: that map was redone
    killed_pid, killed_key = marker.read_text().split()
    rows, reference = by_pair(run), by_pair(serial)
    assert killed_key in {rows[p]["key"] for p in GOOD}
    assert run.computed == 4 and run.errors == 4
    for pair in GOOD:
        assert rows[pair]["key"] == reference[pair]["key"]
        for name in NUMBERS:
            assert rows[pair].get(name) == reference[pair].get(name), (pair, name)
        a, b = attribution(out, rows[pair]), attribution(serial.out, reference[pair])
        assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b), pair  # bit for bit
    for pair in set(rows) - set(GOOD):
        assert rows[pair]["error"] == reference[pair]["error"]
    assert not list((out / "results").glob(".*"))  # no staging left behind
    # the model was loaded exactly once in every worker process, and workers ran several maps each
    loads = {info["pid"]: info["loads"] for info in run.workers.values()}
    ran = [rows[p]["worker_pid"] for p in GOOD]
    assert int(killed_pid) not in loads and int(killed_pid) not in ran
    assert all(loads[pid] == {str(CARD_PATH): 1} for pid in ran)
    assert all(set(n.values()) <= {1} for n in loads.values())  # a restarted, idle worker loaded nothing
    assert max(ran.count(pid) for pid in set(ran)) >= 2


def test_rerun_skips_finished_maps_and_resumes_a_lost_one(cohort, serial, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(serial.out, out)
    stamps = {p: (out / "results" / by_pair(serial)[p]["key"] / ROW_FILE).stat().st_mtime_ns for p in GOOD}
    again = run_serial(cohort / "cases.csv", METHODS, out, threads=1, device="cpu")
    assert again.computed == 0 and again.skipped == 4
    assert again.workers["serial"]["loads"] == {}  # only the bad cases were tried again: no model load
    for pair in GOOD:
        assert (out / "results" / by_pair(serial)[pair]["key"] / ROW_FILE).stat().st_mtime_ns == stamps[pair]
    # an interrupted run: one result missing, a killed worker's staging folder left over
    lost = by_pair(serial)[("clean", "saliency")]
    before = attribution(out, lost)
    shutil.rmtree(out / "results" / lost["key"])
    (out / "results" / f".{lost['key']}.partial-x").mkdir()
    resumed = run_serial(cohort / "cases.csv", METHODS, out, threads=1, device="cpu")
    assert resumed.computed == 1 and resumed.skipped == 3
    assert np.array_equal(attribution(out, lost), before)
    assert not list((out / "results").glob(".*"))


def test_cli_on_an_existing_scheduler(cohort, serial, tmp_path, capsys):
    out = tmp_path / "cli"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        args = ["cohort", str(cohort / "cases.csv"), "--methods", "gradcam", "--out", str(out)]
        code = main([*args, "--metrics", "none", "--device", "cpu", "--scheduler", cluster.scheduler_address])
    printed = capsys.readouterr().out
    assert code == 0 and "2 computed, 0 already finished, 2 errors" in printed
    assert "| lesion | gradcam | ok |" in printed and "corrupt / gradcam: cannot read" in printed
    rows = list(csv.DictReader(open(out / "summary.csv", newline="")))
    lesion = next(r for r in rows if r["case_id"] == "lesion")
    assert lesion["deletion_auc"] == "" and lesion["key"] != by_pair(serial)[("lesion", "gradcam")]["key"]
    # other settings, other key; the same map bit for bit
    same = read_volume(out / lesion["result"] / "attribution.nrrd").array
    assert np.array_equal(same, attribution(serial.out, by_pair(serial)[("lesion", "gradcam")]))


def test_bad_input_is_one_line_and_touches_nothing(cohort, tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    with pytest.raises(XAIError, match="not a cohort folder"):
        run_serial(cohort / "cases.csv", METHODS, user)
    assert [p.name for p in user.iterdir()] == ["notes.txt"]
    (tmp_path / "dup.csv").write_text("case_id,image,model\na,x.nii,m.json\na,y.nii,m.json\n")
    with pytest.raises(XAIError, match="repeats case_id a"):
        read_cases(tmp_path / "dup.csv")
    (tmp_path / "cols.csv").write_text("case_id,image\na,x.nii\n")
    with pytest.raises(XAIError, match="lacks the column"):
        read_cases(tmp_path / "cols.csv")
    code = main(
        [
            "cohort",
            str(cohort / "cases.csv"),
            "--methods",
            "gradcam",
            "--out",
            str(tmp_path / "o"),
            "--param",
            "gradcam.nosuch=1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nosuch" in err
    code = main(["cohort", str(cohort / "cases.csv"), "--methods", "nomethod", "--out", str(tmp_path / "o")])
    assert code == 2 and "unknown attribution method" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(XAIError, match="cannot reach the Dask scheduler"):
        run_cohort(cohort / "cases.csv", METHODS, tmp_path / "o", scheduler="tcp://127.0.0.1:1")
    assert not (tmp_path / "o").exists()  # nothing was computed: no folder left behind


def test_an_unprefixed_parameter_goes_to_the_methods_that_declare_it():
    """``--param steps=8`` with Grad-CAM and IG reaches IG only; a name no method declares is an error."""
    from XAIMedSlicerLib.cohort_cli import method_params

    assert method_params(["gradcam", "ig"], ["steps=8", "gradcam.layer=features"]) == {
        "ig": {"steps": 8},
        "gradcam": {"layer": "features"},
    }
    with pytest.raises(XAIError, match="none of the methods gradcam, ig has a parameter 'stepz'"):
        method_params(["gradcam", "ig"], ["stepz=8"])
