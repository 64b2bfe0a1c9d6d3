"""`xaimed study …` end to end on real files: annotate, agreement, reader mode, tidy CSV, DICOM SEG."""

from __future__ import annotations

import csv
import json

import highdicom as hd
import numpy as np
import pytest

from XAIMedSlicerLib.cli import main
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import read_volume, write_volume
from XAIMedSlicerLib.metrics.localisation import top_k_region
from XAIMedSlicerLib.slicerlogic.annotation import region_mask
from XAIMedSlicerLib.study.agreement import attribution_mass
from XAIMedSlicerLib.study.store import Study

SERIES = "dicom/ct_abdomen_series"
DIRECTION = np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]])


def _grid(shape=(6, 10, 12), seed=0):
    rng = np.random.default_rng(seed)
    image = Volume(rng.normal(size=shape).astype(np.float32), (0.8, 1.1, 2.5), (10.0, -20.0, 5.0), DIRECTION)
    attribution = image.with_array(rng.normal(size=shape).astype(np.float32))
    return image, attribution


@pytest.fixture
def study_files(tmp_path):
    image, attr = _grid()
    write_volume(image, tmp_path / "img.nrrd")
    write_volume(attr, tmp_path / "gc.nrrd")
    write_volume(attr.with_array(-attr.array), tmp_path / "ig.nrrd")
    db = str(tmp_path / "s.sqlite")
    assert main(["study", "init", "--db", db, "--methods", "gradcam", "ig", "--seed", "3"]) == 0
    for case in ("c1", "c2", "c3"):
        args = ["study", "add-case", "--db", db, "--case", case, "--image", str(tmp_path / "img.nrrd")]
        args += ["--map", f"gradcam={tmp_path / 'gc.nrrd'}", "--map", f"ig={tmp_path / 'ig.nrrd'}"]
        assert main(args) == 0
    return tmp_path, db, image, attr


def test_annotate_agreement_equals_numpy(study_files, capsys):
    tmp, db, image, attr = study_files
    mask = np.zeros(image.array.shape, np.uint8)
    mask[1:4, 2:7, 3:9] = 1
    write_volume(image.with_array(mask), tmp / "region.nrrd")
    capsys.readouterr()
    args = [
        "study",
        "annotate",
        "--db",
        db,
        "--case",
        "c2",
        "--method",
        "gradcam",
        "--image",
        str(tmp / "img.nrrd"),
    ]
    args += [
        "--seg",
        str(tmp / "region.nrrd"),
        "--code",
        "irrelevant",
        "--reader",
        "R1",
        "--note",
        "bowel gas",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    values = read_volume(tmp / "gc.nrrd").array.astype(np.float64)
    m = attribution_mass(values, "positive")
    region = mask.astype(bool)
    assert out["irrelevant_mass_share"] == pytest.approx(m[region].sum() / m.sum(), abs=1e-9)
    top = top_k_region(values, 5.0)
    assert out["dice_irrelevant"] == pytest.approx(2 * (region & top).sum() / (region.sum() + top.sum()))
    study = Study.open(db)
    saved = study.load_annotation(out["annotation_id"])
    assert np.array_equal(saved.mask("irrelevant"), region)
    assert np.allclose(saved.labels.ijk_to_ras(), image.ijk_to_ras(), atol=1e-4)
    assert saved.provenance.attribution_ref.endswith("gc.nrrd") and saved.comment == "bowel gas"
    study.close()
    # a second reader, half the region: Dice between readers equals numpy
    half = mask.copy()
    half[1:4, 2:7, 6:9] = 0
    write_volume(image.with_array(half), tmp / "region2.nrrd")
    args[args.index(str(tmp / "region.nrrd"))] = str(tmp / "region2.nrrd")
    args[args.index("R1")] = "R2"
    assert main(args) == 0
    capsys.readouterr()
    assert main(["study", "agreement", "--db", db]) == 0
    pairs = json.loads(capsys.readouterr().out)["readers"]
    b = half.astype(bool)
    assert pairs == [
        {
            "case_id": "c2",
            "method": "gradcam",
            "reader_a": "R1",
            "reader_b": "R2",
            "dice": pytest.approx(2 * (region & b).sum() / (region.sum() + b.sum())),
        }
    ]


def test_bad_code_one_line_error_nothing_written(study_files, capsys):
    tmp, db, image, _ = study_files
    write_volume(image.with_array(np.ones(image.array.shape, np.uint8)), tmp / "r.nrrd")
    args = [
        "study",
        "annotate",
        "--db",
        db,
        "--case",
        "c1",
        "--method",
        "gradcam",
        "--image",
        str(tmp / "img.nrrd"),
    ]
    assert main(args + ["--seg", str(tmp / "r.nrrd"), "--code", "nonsense", "--reader", "R1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nonsense" in err[0]
    assert Study.open(db).annotations() == []
    assert main(["study", "init", "--db", db, "--methods", "x"]) == 2  # never overwrite


def test_reader_mode_blinded_counterbalanced_tidy_csv(study_files, capsys):
    tmp, db, _, _ = study_files
    ratings = [{"A": 4, "B": 2}, {"A": 3, "B": 5}, {"A": 1, "B": 1}]
    (tmp / "r.json").write_text(json.dumps(ratings))
    assert main(["study", "reader", "--db", db, "--reader", "R1", "--ratings", str(tmp / "r.json")]) == 0
    shown = capsys.readouterr().out
    assert "gradcam" not in shown and "ig" not in shown.replace("img", "")
    assert main(["study", "summary", "--db", db, "--csv", str(tmp / "sum.csv")]) == 0
    rows = list(csv.DictReader((tmp / "sum.csv").open()))
    assert list(rows[0]) == ["reader", "case_id", "position", "label", "method", "trust", "seconds"]
    assert len(rows) == 6
    study = Study.open(db)
    order = [c["case_id"] for c in study.cases()]
    assert sorted(order) == ["c1", "c2", "c3"]
    for row in rows:
        pos = int(row["position"])
        assert int(row["trust"]) == ratings[pos - 1][row["label"]]
        assert study.unblind(row["case_id"])[row["label"]] == row["method"]
        assert float(row["seconds"]) >= 0
    # each case shows every method once (a permutation per case)
    for c in order:
        assert sorted(study.unblind(c).values()) == ["gradcam", "ig"]
    assert main(["study", "summary", "--db", db, "--csv", str(tmp / "sum.csv")]) == 2  # never overwrite


def test_export_seg_same_voxels(tmp_path, shared_data, capsys):
    ct = read_volume(shared_data(SERIES))
    write_volume(ct.with_array(np.ones(ct.array.shape, np.float32)), tmp_path / "map.nrrd")
    db = str(tmp_path / "s.sqlite")
    assert main(["study", "init", "--db", db, "--methods", "gradcam"]) == 0
    assert (
        main(
            [
                "study",
                "add-case",
                "--db",
                db,
                "--case",
                "ct",
                "--image",
                str(shared_data(SERIES)),
                "--map",
                f"gradcam={tmp_path / 'map.nrrd'}",
            ]
        )
        == 0
    )
    mask = np.zeros(ct.array.shape, np.uint8)
    mask[4:7, 200:240, 150:190] = 1
    region = ct.with_array(mask)
    study = Study.open(db)
    from XAIMedSlicerLib.slicerlogic.annotation import save_disagreement

    saved = save_disagreement(
        study,
        case_id="ct",
        reference=ct,
        mask=region_mask(region, ct),
        code="missed",
        reader="R1",
        method="gradcam",
        attribution=None,
    )
    study.close()
    out = tmp_path / "seg.dcm"
    assert (
        main(
            [
                "study",
                "export-seg",
                "--db",
                db,
                "--id",
                str(saved.annotation_id),
                "--series",
                str(shared_data(SERIES)),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    seg = hd.seg.segread(out)
    frames = {}
    for f, ds in zip(seg.pixel_array, seg.PerFrameFunctionalGroupsSequence, strict=True):
        frames[ds.PlanePositionSequence[0].ImagePositionPatient[2]] = f
    assert sum(int(f.sum()) for f in frames.values()) == int(mask.sum())
    assert (
        main(
            [
                "study",
                "export-seg",
                "--db",
                db,
                "--id",
                str(saved.annotation_id),
                "--series",
                str(shared_data(SERIES)),
                "--out",
                str(out),
            ]
        )
        == 2
    )


def test_reader_prompts_and_bad_answer(study_files):
    from XAIMedSlicerLib.errors import XAIError
    from XAIMedSlicerLib.slicerlogic.reader_study import run_reader, summary_rows

    _, db, _, _ = study_files
    study = Study.open(db)
    answers = iter(["5", "4", "x"])
    shown: list[str] = []
    with pytest.raises(XAIError, match="1 to 5"):
        run_reader(study, "R9", ask=lambda prompt: next(answers), say=shown.append)
    rows = summary_rows(study)
    assert [(r["label"], r["trust"]) for r in rows] == [("A", 5), ("B", 4)]  # first case kept
    assert rows[0]["position"] == 1 and not any("gradcam" in s for s in shown)
    study.close()
