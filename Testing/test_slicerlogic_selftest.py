"""The scenarios of the module's in-Slicer self-test (``XAIMedSlicerTest``), run here headless with
slicer-core and the real background worker, with the same thresholds the module asserts."""

from __future__ import annotations

import numpy as np
import pytest

from XAIMedSlicerLib.scene import create_scene
from XAIMedSlicerLib.slicerlogic import ExplainRequest, ExplainSession
from XAIMedSlicerLib.slicerlogic.selftest import (
    add_test_case,
    check_annotation,
    check_cancel_and_crash,
    check_display,
    check_explain,
    failures,
)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    ss = create_scene()
    scan_node, model = add_test_case(ss, tmp_path_factory.mktemp("selftest"))
    p = ExplainRequest(inputVolume=scan_node, modelPath=model, method="gradcam", device="cpu", igSteps=8)
    return ss, ExplainSession(ss), p, {}


def test_explain_in_background(case):
    _, session, p, done = case
    r = check_explain(session, p)
    done["first"] = r.get("node")
    assert r["status"] == "done", r["message"]
    assert r["progress_messages"] > 3 and r["last_fraction"] == 1.0
    assert r["grid_error_mm"] < 1e-4 and r["input_unchanged"]
    assert (r["role"], r["method"]) == ("attribution", "gradcam")
    assert r["difference_to_direct"] < 1e-5 and r["method_matches"]
    assert failures(r) == []
    assert failures({**r, "grid_error_mm": 1e-3, "role": "x"}) == ["grid_error_mm=0.001", "role='x'"]


def test_rerun_display_and_structures(case):
    _, session, p, done = case
    labels = np.zeros(p.inputVolume.GetImageData().GetDimensions()[::-1], np.uint8)
    labels[8:16, 10:18, 16:24] = 1
    labels[:, :, :8] = 2
    r = check_display(session, p, labels, first=done.get("first"))
    assert r["status"] == "done", r["message"]
    assert r["new_node"] and r["first_unchanged"] and r["rows"] == 2
    assert r["alpha_matches_threshold"] and r["foreground_is_shown"]
    assert r["opacity"] == pytest.approx(0.7)
    assert r["absolute_error"] == 0.0 and r["row_round_trip"]
    assert r["centre_error_mm"] < 1e-3
    assert failures(r) == []


def test_cancel_crash_and_annotation(case, tmp_path):
    ss, session, p, _ = case
    r = check_cancel_and_crash(session, p)
    assert r["cancel_status"] == "cancelled" and not r["output_left"]
    assert r["crash_status"] == "failed" and r["crash_node"] is None and "crashed" in r["crash_message"]
    a = check_annotation(ss, tmp_path, p.inputVolume)
    assert a["voxels_equal"] and a["grid_error_mm"] < 1e-4 and a["codes"] == ["missed"]
    assert failures({**r, "cancel_seconds": 0.0}) == [] and failures(a) == []
