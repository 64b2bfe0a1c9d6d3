"""The "Report" area's reader (explanation.txt / rules.json / report.html, each optional) and the
module's label texts, on real files, a real scene node and the real model summary."""

from __future__ import annotations

import json

import numpy as np

from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.scene import add_attribution_node, create_scene
from XAIMedSlicerLib.scene.colortables import read_color_table
from XAIMedSlicerLib.scene.flags import set_flags
from XAIMedSlicerLib.slicerlogic.report_view import FILES, ReportStore, read_report, rules_text
from XAIMedSlicerLib.slicerlogic.texts import device_text, flags_text, install_plan, model_info, progress_text


def test_full_partial_broken_and_absent_folders(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "explanation.txt").write_text("Most of the evidence (68%) lies in the left lobe.\n")
    rules = [
        {"name": "shortcut", "severity": "warning", "fired": True, "message": "evidence outside anatomy"},
        {"name": "low_confidence", "severity": "info", "fired": False, "message": "not shown"},
    ]
    (full / "rules.json").write_text(json.dumps({"rules": rules}))
    (full / "report.html").write_text("<html><body><h1>Report</h1></body></html>")
    report = read_report(full)
    assert report.missing == () and report.problems == ()
    assert report.rules_text() == "[warning] shortcut: evidence outside anatomy"
    text = report.plain_text()
    assert text.startswith("Most of the evidence (68%)") and "not shown" not in text
    assert "<h1>Report</h1>" in report.html
    # only the explanation: the others are listed as missing, nothing fails
    part = tmp_path / "part"
    part.mkdir()
    (part / "explanation.txt").write_text("One sentence.")
    (part / "rules.json").write_text("{not json")
    report = read_report(part)
    assert report.missing == ("rules.json", "report.html")
    assert report.problems == ("rules.json is not valid JSON; rerun the explanation",)
    assert "Not in the output folder: rules.json, report.html" in report.plain_text()
    for folder in (None, tmp_path / "nowhere"):
        assert read_report(folder).missing == FILES and read_report(folder).plain_text().startswith("Not in")
    assert rules_text([{"rule": "r1", "text": "t"}, "plain"]) == "r1: t\nplain"
    assert json.loads(rules_text({"threshold": 0.3})) == {"threshold": 0.3}


def test_store_keeps_the_report_after_the_folder_is_gone(tmp_path):
    import shutil

    ss = create_scene()
    node = add_attribution_node(
        ss, Volume(np.ones((3, 4, 5), np.float32), (1, 1, 1), (0, 0, 0)), signed=False
    )
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "explanation.txt").write_text("kept")
    store = ReportStore()
    store.capture(node, folder)
    shutil.rmtree(folder)
    assert store.for_node(node).explanation == "kept"
    assert store.for_node(None) is None
    set_flags(node, {"failed": True, "text": "randomisation check failed"})
    text, failed = flags_text(node)
    assert failed and text == "FAILS CHECKS: randomisation check failed"
    assert flags_text(None) == ("", False)


def test_label_texts(tmp_path, shared_data):
    text, classes = model_info(shared_data("models/meshnet/model18cls"))
    names = [
        name
        for _, (name, _) in sorted(
            read_color_table(shared_data("models/meshnet/model18cls/colormap.json")).items()
        )
    ]
    assert classes[1:] == names and text.startswith("meshnet, task: segmentation, classes: Unknown, ")
    assert model_info(None) == ("No model selected.", [])
    bad, none = model_info(tmp_path / "missing.ts")
    assert none == [] and "\n" not in bad and bad
    assert progress_text({"stage": "explain", "message": "step 3/8"}, 12.4) == "explain: step 3/8 (12 s)"
    assert install_plan(["monai>=1.3"], torch_extension=False) == ["monai>=1.3", "torch>=2.1"]
    assert install_plan(["monai>=1.3"], torch_extension=True) == ["monai>=1.3"]

    class Probe:
        devices = [{"device": "cuda:0", "name": "H200", "free_mb": 1000.4, "total_mb": 2000.0}]
        gpus, error = devices, None

    assert device_text(Probe()) == "H200: 1000 MB free of 2000 MB"
    Probe.devices, Probe.gpus = [{"device": "cpu", "name": "cpu", "free_mb": 0, "total_mb": 0}], []
    assert device_text(Probe()) == "No CUDA GPU found: the CPU is used."
    Probe.devices = None
    assert device_text(Probe()) is None


def test_dependencies_found_installed_nothing_handed_to_pip():
    from pathlib import Path

    from XAIMedSlicerLib.slicerlogic.dependencies import ensure_dependencies
    from XAIMedSlicerLib.slicerlogic.requirements import missing_requirements, read_requirements

    requirements = Path(__file__).resolve().parents[1] / "XAIMedSlicer" / "Resources" / "requirements.txt"
    wanted = install_plan(read_requirements(requirements), torch_extension=False)
    assert "torch>=2.1" in wanted and len(wanted) > 3
    assert missing_requirements(wanted) == []  # this venv has them all (else pip would be called below)
    assert ensure_dependencies(requirements) == []
