"""The "Reader study" controller on a real slicer-core scene and a real study database: cases in the
seeded order, maps shown blinded (the voxels behind "Map B" are the method the study's secret says),
methods varying between labels across cases, ratings and time per case recorded, tidy summary CSV."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import write_volume
from XAIMedSlicerLib.scene import add_volume, create_scene, volume_from_node
from XAIMedSlicerLib.slicerlogic.reader_controller import ReaderStudyController
from XAIMedSlicerLib.study import CaseSpec, Study
from XAIMedSlicerLib.study.blinding import case_order

METHODS = ["gradcam", "ig", "saliency"]
VALUE = {"gradcam": 1.0, "ig": 2.0, "saliency": 3.0}
N_CASES = 12
SEED = 7


@pytest.fixture
def study_path(tmp_path, oblique_volume):
    image = write_volume(oblique_volume, tmp_path / "image.nrrd")
    cases = []
    for c in range(N_CASES):
        maps = {}
        for m in METHODS:
            values = np.full(oblique_volume.array.shape, VALUE[m], np.float32)
            maps[m] = str(write_volume(oblique_volume.with_array(values), tmp_path / f"c{c:02d}_{m}.nrrd"))
        cases.append(CaseSpec(f"case{c:02d}", image_ref=str(image), model_hash="e" * 64, maps=maps))
    study = Study.create(tmp_path / "reader.sqlite", name="pilot", methods=METHODS, seed=SEED)
    study.add_cases(cases)
    study.close()
    return tmp_path / "reader.sqlite"


def test_blinded_seeded_order_ratings_time_and_csv(study_path, oblique_volume, tmp_path):
    ss = create_scene()
    user = add_volume(ss, Volume(np.ones((3, 4, 5), np.float32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), "mine")
    controller = ReaderStudyController(ss)
    view = controller.start(study_path, "R1")
    study = controller.study
    ids = [f"case{c:02d}" for c in range(N_CASES)]
    assert [c["case_id"] for c in study.cases()] == case_order(ids, SEED)
    shown, rng, ratings = [], np.random.default_rng(3), {}
    while view is not None:
        shown.append(view.case_id)
        mapping = study.unblind(view.case_id)
        assert sorted(mapping.values()) == sorted(METHODS)  # every method once per case
        text = controller.progress_text()
        assert f"case {view.position} of {N_CASES}" in text and not re.search(
            r"\b(gradcam|ig|saliency)\b", text
        )
        # the case image has the file's exact grid; the maps carry only their label
        assert (
            np.abs(volume_from_node(controller.image_node).ijk_to_ras() - oblique_volume.ijk_to_ras()).max()
            < 1e-4
        )
        for label, node in controller.map_nodes.items():
            assert node.GetName() == f"Map {label}"
            attributes = " ".join(f"{n}={node.GetAttribute(n)}" for n in node.GetAttributeNames() or ())
            assert not re.search(r"\b(" + "|".join(METHODS) + r")\b", attributes), attributes
            assert float(np.median(volume_from_node(node).array)) == VALUE[mapping[label]]
        composite, node_b = ss.composite_node("Red"), controller.show_map("B")
        assert composite.GetForegroundVolumeID() == node_b.GetID()
        assert composite.GetBackgroundVolumeID() == controller.image_node.GetID()
        given = {label: int(rng.integers(1, 6)) for label in view.labels}
        controller.rate("A", given["A"])
        with pytest.raises(XAIError, match="not rated yet"):
            controller.next_case()
        for label in view.labels[1:]:
            controller.rate(label, given[label])
        assert controller.rated() == given
        ratings[view.case_id] = {mapping[label]: trust for label, trust in given.items()}
        made = [controller.image_node, *controller.map_nodes.values()]
        seconds, view = controller.next_case()
        visits = study.db.rows("SELECT opened_at, closed_at FROM visits WHERE case_id = ?", (shown[-1],))
        assert seconds == pytest.approx(sum(v["closed_at"] - v["opened_at"] for v in visits))
        assert all(node.GetScene() is None for node in made)  # the case's nodes are gone
    assert shown == case_order(ids, SEED)
    assert ss.scene.GetNodeByID(user.GetID()) is user and volume_from_node(user).array.sum() == 60
    # counterbalancing: across cases each label shows more than one method, each method more than one label
    labels_of = {m: {lbl for c in ids for lbl, mm in study.unblind(c).items() if mm == m} for m in METHODS}
    methods_of = {lbl: {study.unblind(c)[lbl] for c in ids} for lbl in "ABC"}
    assert all(len(v) > 1 for v in labels_of.values()) and all(len(v) > 1 for v in methods_of.values())
    assert "every case is done" in controller.progress_text()
    out, n = controller.export_summary(tmp_path / "summary.csv")
    rows = list(csv.DictReader(out.open()))
    assert n == len(rows) == N_CASES * len(METHODS)
    assert list(rows[0]) == ["reader", "case_id", "position", "label", "method", "trust", "seconds"]
    for row in rows:
        assert int(row["trust"]) == ratings[row["case_id"]][row["method"]]
        assert study.unblind(row["case_id"])[row["label"]] == row["method"]
    with pytest.raises(XAIError, match="already exists"):
        controller.export_summary(out)
    controller.close()


def test_resume_after_close_and_bad_input(study_path):
    ss = create_scene()
    controller = ReaderStudyController(ss)
    first = controller.start(study_path, "R2")
    for label in first.labels:
        controller.rate(label, 3)
    controller.next_case()
    second = controller.view
    controller.rate("A", 5)
    controller.close()  # a pause: the open visit is closed, nothing completed
    assert ss.scene.GetNodesByName("Map A").GetNumberOfItems() == 0
    again = ReaderStudyController(ss)
    resumed = again.start(study_path, "R2")
    assert resumed.case_id == second.case_id and again.rated() == {"A": 5}
    for bad, match in (
        (lambda: again.rate("A", 9), "1 to 5"),
        (lambda: again.rate("Z", 3), "no map Z"),
        (lambda: again.show_map("Z"), "no map Z"),
    ):
        with pytest.raises(XAIError, match=match):
            bad()
    assert ReaderStudyController(ss).start(study_path, "R3").position == 1  # each reader from the start
    with pytest.raises(XAIError, match="no study database"):
        ReaderStudyController(ss).start(study_path.with_name("missing.sqlite"), "R1")
    with pytest.raises(XAIError, match="no reader study is open"):
        ReaderStudyController(ss).next_case()
    again.close()


def test_case_image_from_a_dicom_series(tmp_path, shared_data):
    from XAIMedSlicerLib.io.volumes import read_volume

    series = shared_data("dicom/ct_abdomen_series")
    ct = read_volume(series)
    ramp = np.broadcast_to(np.arange(ct.array.shape[2], dtype=np.float32), ct.array.shape)
    maps = {"gradcam": str(write_volume(ct.with_array(np.ascontiguousarray(ramp)), tmp_path / "gc.nrrd"))}
    study = Study.create(tmp_path / "ct.sqlite", name="ct", methods=["gradcam"], seed=1)
    study.add_cases([CaseSpec("ct", image_ref=str(series), maps=maps)])
    study.close()
    controller = ReaderStudyController(create_scene())
    view = controller.start(tmp_path / "ct.sqlite", "R1")
    assert view.labels == ("A",) and controller.image_node is not None
    shown = volume_from_node(controller.image_node)
    assert np.abs(shown.ijk_to_ras() - ct.ijk_to_ras()).max() < 1e-4 and np.array_equal(shown.array, ct.array)
    assert np.array_equal(volume_from_node(controller.map_nodes["A"]).array, ramp)
    controller.close()
