"""The module's widget actions through the Qt-free presenter, on a real slicer-core scene, the real study
database and the real background worker: each test sends the values the widgets would hold and checks
the returned view and what reached the scene and the database. The Segment Editor is driven through its
real vtkMRMLSegmentEditorNode (the embedded editor widget follows that node in Slicer)."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest

from XAIMedSlicerLib.anatomy.stats import structure_statistics
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explanation import Explanation
from XAIMedSlicerLib.io.volumes import write_volume
from XAIMedSlicerLib.metrics.localisation import top_k_region
from XAIMedSlicerLib.scene import build_scene, create_scene
from XAIMedSlicerLib.scene.segmentation import segment_tag
from XAIMedSlicerLib.slicerlogic import ExplainRequest, ExplainSession
from XAIMedSlicerLib.slicerlogic.annotate import CODE_TAG, AnnotationController, code_choices
from XAIMedSlicerLib.slicerlogic.presenter import INPUTS, ModulePresenter, apply_view, widget_value
from XAIMedSlicerLib.slicerlogic.reader_controller import ReaderStudyController
from XAIMedSlicerLib.slicerlogic.report_view import ReportStore
from XAIMedSlicerLib.slicerlogic.selftest import add_test_case
from XAIMedSlicerLib.study import CaseSpec, Study

CODES = [key for key, _ in code_choices()]


def presenter_for(ss) -> ModulePresenter:
    return ModulePresenter(
        ExplainSession(ss), AnnotationController(ss), ReaderStudyController(ss), ReportStore()
    )


def paint(node, segment_id, reference_node, box) -> np.ndarray:
    """A brush stroke over voxels [k0:k1, j0:j1, i0:i1] (the paint effect's call); returns the mask."""
    import slicer
    import vtk

    (k0, k1), (j0, j1), (i0, i1) = box
    stroke = slicer.vtkOrientedImageData()
    matrix = vtk.vtkMatrix4x4()
    reference_node.GetIJKToRASMatrix(matrix)
    stroke.SetImageToWorldMatrix(matrix)
    stroke.SetExtent(i0, i1 - 1, j0, j1 - 1, k0, k1 - 1)
    stroke.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    stroke.GetPointData().GetScalars().Fill(1)
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    assert logic.SetBinaryLabelmapToSegment(stroke, node, segment_id, logic.MODE_MERGE_MASK)
    dims = reference_node.GetImageData().GetDimensions()
    mask = np.zeros(dims[::-1], bool)
    mask[k0:k1, j0:j1, i0:i1] = True
    return mask


@pytest.fixture
def explained(oblique_volume):
    """A scene with the scan and a Grad-CAM result built like a finished job's (structures and table)."""
    ss = create_scene()
    from XAIMedSlicerLib.scene import add_volume

    scan_node = add_volume(ss, oblique_volume, "patient7")
    rng = np.random.default_rng(5)
    attr = oblique_volume.with_array(rng.gamma(2.0, 1.0, oblique_volume.array.shape).astype(np.float32))
    labels = np.zeros(oblique_volume.array.shape, np.uint8)
    labels[4:12, 8:20, 6:18] = 1
    label_volume = oblique_volume.with_array(labels)
    names = {1: "left lobe"}
    explanation = Explanation(
        image=oblique_volume,
        attribution=attr,
        signed=False,
        method="gradcam",
        prediction={"task": "classification", "predicted_class": 1},
        target={"class": 1},
        labels=label_volume,
        label_names=names,
        structures=structure_statistics(attr, label_volume, names),
        provenance={"model": {"name": "tiny", "sha256": "ab" * 32}, "method": {"name": "gradcam"}},
    )
    bundle = build_scene(explanation, ss=ss, image_node=scan_node, closed_surface=False)
    return ss, scan_node, bundle, attr


def values(**given) -> dict:
    return {**dict.fromkeys(INPUTS), **given}


def test_annotate_section(explained, tmp_path, oblique_volume):
    ss, scan_node, bundle, attr = explained
    presenter = presenter_for(ss)
    p = ExplainRequest(inputVolume=scan_node, result=bundle.attribution_node, method="ig")
    controls = presenter.controls(p)
    assert controls["newRegionButton"]["enabled"] and not controls["explainButton"]["enabled"]
    form = values(
        studyPathLineEdit=str(tmp_path / "new.sqlite"),
        caseIdLineEdit="",
        readerLineEdit="R1",
        codeComboBox=CODES.index("missed"),
        noteTextEdit="misses the lesion",
    )
    with pytest.raises(XAIError, match="no annotation saved"):
        presenter.act("export_seg", {**form, "out": str(tmp_path / "x.dcm")}, p)
    assert presenter.act("new_region", form, p) == {}
    editor = presenter.editor_node()
    drawing = editor.GetSegmentationNode()
    assert drawing.GetAttribute("XAIMed.role") == "disagreement" and editor.GetSourceVolumeNode() is scan_node
    first = editor.GetSelectedSegmentID()
    presenter.act("code_changed", {**form, "codeComboBox": CODES.index("irrelevant")}, p)
    assert segment_tag(drawing.GetSegmentation().GetSegment(first), CODE_TAG) == "irrelevant"
    irrelevant = paint(drawing, first, scan_node, ((1, 3), (2, 6), (20, 25)))
    presenter.act("new_region", form, p)  # a second region in the same drawing, coded "missed"
    assert editor.GetSegmentationNode() is drawing and drawing.GetSegmentation().GetNumberOfSegments() == 2
    missed = paint(drawing, editor.GetSelectedSegmentID(), scan_node, ((8, 11), (12, 16), (9, 13)))
    view = presenter.act("save_annotation", form, p)
    text = view["agreementLabel"]["text"]
    assert text.startswith("Saved annotation 1 (patient7, gradcam).")  # the map's method, the scan's name
    study = presenter.annotations.study
    (row,) = study.annotations()
    assert (row["case_id"], row["reader"], row["method"]) == ("patient7", "R1", "gradcam")
    ann = study.load_annotation(row["id"])
    assert np.array_equal(ann.mask("missed"), missed) and np.array_equal(ann.mask("irrelevant"), irrelevant)
    assert np.abs(ann.labels.ijk_to_ras() - oblique_volume.ijk_to_ras()).max() < 1e-4
    assert ann.provenance.model_hash == "ab" * 32 and ann.comment == "misses the lesion"
    top = top_k_region(attr.array.astype(np.float64), 5.0)
    share = (missed & ~top).sum() / missed.sum()
    assert row["missed_share"] == pytest.approx(share) and f"{share:.3f}" in text
    # a second reader: the Dice between readers is shown
    presenter.act("save_annotation", {**form, "readerLineEdit": "R2"}, p)
    view = presenter.act("save_annotation", {**form, "readerLineEdit": "R2"}, p)
    assert "Dice R1 vs R2: 1.000" in view["agreementLabel"]["text"]
    assert presenter.act("export_seg", {**form, "out": ""}, p) == {}  # the file dialog was cancelled
    for bad in ({**form, "studyPathLineEdit": ""}, {**form, "readerLineEdit": " "}):
        with pytest.raises(XAIError):
            presenter.act("save_annotation", bad, p)
    with pytest.raises(XAIError, match="unknown module action"):
        presenter.act("no_such_action", form, p)
    assert len(study.annotations(latest=False)) == 3
    presenter.close()


def test_reader_section(tmp_path, oblique_volume):
    image = write_volume(oblique_volume, tmp_path / "image.nrrd")
    cases = []
    for c in range(4):
        maps = {
            m: str(write_volume(oblique_volume.with_array(np.full(oblique_volume.array.shape, v, np.float32)),
                                tmp_path / f"c{c}_{m}.nrrd"))
            for m, v in (("gradcam", 1.0), ("ig", 2.0))
        }  # fmt: skip
        cases.append(CaseSpec(f"c{c}", str(image), "f" * 64, maps=maps))
    study = Study.create(tmp_path / "r.sqlite", name="r", methods=["gradcam", "ig"], seed=11)
    study.add_cases(cases)
    study.close()
    ss = create_scene()
    presenter = presenter_for(ss)
    assert presenter.reader_view()["rateButton"] == {"enabled": False}
    form = values(readerStudyPathLineEdit=str(tmp_path / "r.sqlite"), readerIdLineEdit="R1")
    view = presenter.act("start_reader", form, None)
    assert view["readerMapComboBox"] == {"items": ["A", "B"], "enabled": True}
    assert view["readerProgressLabel"]["text"] == "Reader R1: case 1 of 4; maps A, B"
    ratings = {}
    for position in range(1, 5):
        case_id = presenter.reader.view.case_id
        presenter.act("map_changed", {**form, "readerMapComboBox": 1}, None)
        assert ss.composite_node("Red").GetForegroundVolumeID() == presenter.reader.map_nodes["B"].GetID()
        view = presenter.act("rate", {**form, "readerMapComboBox": 0, "trustSpinBox": position}, None)
        assert view["readerStatusLabel"]["text"] == f"Rated: A={position}"
        with pytest.raises(XAIError, match="not rated yet"):
            presenter.act("next_case", form, None)
        presenter.act("rate", {**form, "readerMapComboBox": 1, "trustSpinBox": 5}, None)
        ratings[case_id] = {"A": position, "B": 5}
        view = presenter.act("next_case", form, None)
        assert view["readerStatusLabel"]["text"].startswith("Case completed in")
    assert view["readerProgressLabel"]["text"] == "Reader R1: every case is done."
    assert view["rateButton"] == {"enabled": False} and view["exportSummaryButton"] == {"enabled": True}
    with pytest.raises(XAIError, match="no map is selected"):
        presenter.act("rate", {**form, "readerMapComboBox": 0, "trustSpinBox": 3}, None)
    view = presenter.act("export_summary", {**form, "out": str(tmp_path / "s.csv")}, None)
    assert view["readerStatusLabel"]["text"] == f"8 rows written to {tmp_path / 's.csv'}"
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert {(r["case_id"], r["label"]): int(r["trust"]) for r in rows} == {
        (c, label): t for c, given in ratings.items() for label, t in given.items()
    }
    presenter.close()


def test_explain_job_report_and_views(tmp_path):
    ss = create_scene()
    scan_node, model = add_test_case(ss, tmp_path)
    presenter = presenter_for(ss)
    p = ExplainRequest(inputVolume=scan_node, modelPath=model, method="gradcam", device="cpu")
    view = presenter.start("explain", p)
    assert view["progressBar"] == {"value": 0} and view["cancelButton"] == {"enabled": True}
    with pytest.raises(XAIError, match="already running"):
        presenter.start("explain", p)
    deadline, finished, percents = time.monotonic() + 300, False, []
    while not finished and time.monotonic() < deadline:
        view, finished, error = presenter.tick(p)
        percents.append(view.get("progressBar", {}).get("value"))
        time.sleep(0.1)
    assert finished and error is None
    assert view["progressBar"] == {"value": 100} and view["statusLabel"]["text"].startswith("Done in")
    assert view["explainButton"]["enabled"] and not view["cancelButton"]["enabled"]
    assert p.result is not None and p.result.GetAttribute("XAIMed.method") == "gradcam"
    # the report of the worker's folder, kept although the folder is gone; files not written are listed
    report, text = presenter.reports.for_node(p.result), view["reportTextBrowser"]["plainText"]
    assert (
        text == report.plain_text() and not report.problems and all(name in text for name in report.missing)
    )
    assert report.explanation is None or text.startswith(report.explanation.strip())
    assert report.rules is None or "Rules:" in text
    assert view["reportHtmlBrowser"] == {"searchPaths": [], "html": report.html or ""}  # the folder is gone
    shown = presenter.show_result(p.result, p)
    assert shown["flagsLabel"]["text"].startswith(("Checks: ", "FAILS CHECKS: "))
    assert shown["reportTextBrowser"] == view["reportTextBrowser"]  # kept after the job folder was removed
    assert set(presenter.show_result(p.result, p)) == {"flagsLabel"}  # nothing changed: nothing re-applied
    p.opacity = 0.3
    assert "structureTableView" in presenter.show_result(p.result, p)
    assert ss.composite_node("Red").GetForegroundOpacity() == pytest.approx(0.3)
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "explanation.txt").write_text("The evidence lies in the blob.")
    view = presenter.act("report_folder", values(reportFolderPathLineEdit=str(folder)), p)
    assert view["reportTextBrowser"]["plainText"].startswith("The evidence lies in the blob.")
    assert view["reportHtmlBrowser"] == {"searchPaths": [str(folder)], "html": ""}
    assert presenter.tick(p)[1] and presenter.cancel() == {}  # idle: nothing runs, nothing to cancel
    presenter.close()


def test_views_reach_the_widgets_and_values_are_read():
    """``apply_view`` / ``widget_value`` on stand-ins with Qt's method names (Qt cannot run here)."""

    class Label:
        def __init__(self):
            self.calls = []

        def setText(self, text):
            self.calls.append(("setText", text))

        def setEnabled(self, on):
            self.calls.append(("setEnabled", on))

    class Combo(Label):
        currentIndex = 2

        def blockSignals(self, on):
            self.calls.append(("blockSignals", on))

        def clear(self):
            self.calls.append(("clear",))

        def addItems(self, items):
            self.calls.append(("addItems", items))

    class Ui:
        statusLabel, readerMapComboBox = Label(), Combo()

    apply_view(
        Ui, {"statusLabel": {"text": "hi", "enabled": False}, "readerMapComboBox": {"items": ("A", "B")}}
    )
    assert Ui.statusLabel.calls == [("setText", "hi"), ("setEnabled", False)]
    assert Ui.readerMapComboBox.calls == [
        ("blockSignals", True),
        ("clear",),
        ("addItems", ["A", "B"]),
        ("blockSignals", False),
    ]
    assert widget_value(Ui.readerMapComboBox) == 2 and widget_value(Ui.statusLabel) is None
