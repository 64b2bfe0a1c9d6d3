"""Reader-study mode: seeded order, blinding that the reader's view cannot undo, ratings, time, reports."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections import Counter

import numpy as np
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import write_volume
from XAIMedSlicerLib.study import CaseSpec, ReaderSession, Study, write_cohort_csv, write_study_report
from XAIMedSlicerLib.study.blinding import case_order, case_permutation, new_secret_key

METHODS = ["gradcam", "ig", "saliency"]
VALUE = {"gradcam": 1.0, "ig": 2.0, "saliency": 3.0}  # each method's map is constant with this value
N_CASES = 12


@pytest.fixture
def study(tmp_path):
    grid = Volume(np.zeros((5, 6, 7), np.float32), (1.0, 1.0, 1.5), (3.0, -2.0, 1.0))
    cases = []
    for c in range(N_CASES):
        maps = {}
        for m in METHODS:
            values = np.full(grid.array.shape, VALUE[m], np.float32)
            values[c % 5, 1, 1] += 10.0
            maps[m] = str(write_volume(grid.with_array(values), tmp_path / "maps" / f"case{c:02d}_{m}.nrrd"))
        cases.append(
            CaseSpec(f"case{c:02d}", image_ref=f"images/case{c:02d}.nii.gz", model_hash="f" * 64, maps=maps)
        )
    s = Study.create(tmp_path / "reader.sqlite", name="pilot", methods=METHODS, seed=42)
    s.add_cases(cases)
    return s, grid


def test_case_order_is_seeded(study, tmp_path):
    s, _ = study
    ids = [f"case{c:02d}" for c in range(N_CASES)]
    order = [c["case_id"] for c in s.cases()]
    assert order == case_order(ids, 42) and order != ids
    again = Study.create(tmp_path / "again.sqlite", name="again", methods=METHODS, seed=42)
    again.add_cases([CaseSpec(i) for i in ids])
    assert [c["case_id"] for c in again.cases()] == order
    assert case_order(ids, 43) != order


def test_blinding_cannot_be_derived_from_what_the_reader_sees(study, tmp_path):
    s, _ = study
    session = ReaderSession(s, "R1")
    view = session.next_case()
    seen = json.dumps(dataclasses.asdict(view))
    assert set(dataclasses.asdict(view)) == {"case_id", "position", "total", "image_ref", "labels"}
    assert view.labels == ("A", "B", "C") and not any(m in seen for m in METHODS)

    mappings = {c["case_id"]: s.unblind(c["case_id"]) for c in s.cases()}
    # labels are not the methods in listed or sorted order, and vary between cases
    assert len({tuple(m.values()) for m in mappings.values()}) > 1
    assert any(list(m.values()) != sorted(METHODS) for m in mappings.values())
    # the same public inputs (seed, cases, methods) give another mapping in another study: a secret decides
    twin = Study.create(tmp_path / "twin.sqlite", name="pilot", methods=METHODS, seed=42)
    twin.add_cases([CaseSpec(c) for c in mappings])
    assert {c: twin.unblind(c) for c in mappings} != mappings
    # it is reproducible only with the key stored in the database, not with a guessed one
    key = s.db.get_meta("blinding_key")
    positions = {c["case_id"]: c["position"] for c in s.cases()}
    assert all(case_permutation(key, positions[c], METHODS) == m for c, m in mappings.items())
    assert any(case_permutation(new_secret_key(), positions[c], METHODS) != m for c, m in mappings.items())
    assert all(case_permutation(key, positions[c], list(reversed(METHODS))) == m for c, m in mappings.items())

    # the maps the reader loads carry no method either: each label shows its method's values
    for label in view.labels:
        values = session.map_volume(label).array
        assert float(np.median(values)) == VALUE[mappings[view.case_id][label]]
    # annotation files name the label, never the method, and no file outside the database holds the key
    ann = session.new_annotation("B", session.map_volume("B"))
    mask = np.zeros(ann.labels.array.shape, bool)
    mask[0, 0, :3] = True
    ann.add(mask, "irrelevant", "edge")
    session.save_annotation(ann)
    files = list(s.annotation_dir.iterdir())
    assert len(files) == 1 and "__B-" in files[0].name and files[0].name.endswith("__v1.seg.nrrd")
    header = files[0].read_bytes().split(b"\n\n")[0].decode()
    assert not re.search(r"\b(" + "|".join(METHODS) + r")\b", header) and key not in header
    assert '"method": ""' in header and '"blinded_label": "B"' in header
    row = s.annotations()[0]
    assert row["method"] == mappings[view.case_id]["B"]  # the database knows the method


def test_ratings_time_and_resume(study):
    s, _ = study
    session = ReaderSession(s, "R1")
    view = session.next_case()
    session.rate("A", 4)
    with pytest.raises(XAIError, match="not rated yet"):
        session.finish_case()
    with pytest.raises(XAIError, match="1 to 5"):
        session.rate("B", 6)
    with pytest.raises(XAIError, match="no map D"):
        session.rate("D", 3)
    session.rate("B", 2)
    session.rate("C", 5)
    session.rate("A", 3)  # a new rating replaces the old one
    seconds = session.finish_case()
    visits = s.db.rows("SELECT opened_at, closed_at FROM visits WHERE case_id = ?", (view.case_id,))
    assert seconds == pytest.approx(sum(v["closed_at"] - v["opened_at"] for v in visits)) and seconds >= 0
    assert [r["trust"] for r in s.db.rows("SELECT trust FROM ratings ORDER BY label")] == [3, 2, 5]
    second = session.next_case()
    assert second.position == 2
    session.pause()
    resumed = ReaderSession(s, "R1").next_case()  # a new session (after a crash) resumes at case 2
    assert resumed.case_id == second.case_id
    assert ReaderSession(s, "R2").next_case().position == 1


def test_cohort_csv_and_report_match_the_ratings(study, tmp_path):
    s, grid = study
    rng = np.random.default_rng(9)
    for reader in ("R1", "R2"):
        session = ReaderSession(s, reader)
        for _ in range(4):
            view = session.next_case()
            for label in view.labels:
                session.rate(label, int(rng.integers(1, 6)))
            session.finish_case()
    # an annotation of R1 on the first case's map A
    session = ReaderSession(s, "R1")
    first = s.cases()[0]["case_id"]
    session.open_case(first)
    ann = session.new_annotation("A", grid)
    mask = np.zeros(grid.array.shape, bool)
    mask[int(first[-2:]) % 5, 1, 1] = True  # the map's peak voxel
    ann.add(mask, "irrelevant")
    session.save_annotation(ann, k_percent=1.0)
    session.pause()

    expected: dict[str, list[int]] = {m: [] for m in METHODS}
    for r in s.db.rows("SELECT case_id, label, trust FROM ratings"):
        expected[s.unblind(r["case_id"])[r["label"]]].append(r["trust"])
    md, js = write_study_report(s, tmp_path / "report")
    summary = json.loads(js.read_text())
    for m in METHODS:
        assert summary["methods"][m]["trust"]["n"] == 8
        assert summary["methods"][m]["trust"]["mean"] == pytest.approx(np.mean(expected[m]))
        assert summary["methods"][m]["trust"]["histogram"] == {
            str(k): expected[m].count(k) for k in range(1, 6)
        }
    assert summary["readers"] == {"R1": 4, "R2": 4} and summary["complete"] is False
    assert "| gradcam | 8 |" in md.read_text()

    path = write_cohort_csv(s, tmp_path / "cohort.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 2 * 4 * 3
    assert Counter((r["case_id"], r["reader"]) for r in rows) == Counter(
        {k: 3 for k in {(r["case_id"], r["reader"]) for r in rows}}
    )
    annotated = [r for r in rows if r["annotation_id"]]
    assert len(annotated) == 1 and annotated[0]["case_id"] == first and annotated[0]["blinded_label"] == "A"
    assert annotated[0]["method"] == s.unblind(first)["A"] and annotated[0]["n_irrelevant"] == "1"
    peak_value = VALUE[annotated[0]["method"]] + 10.0
    total = VALUE[annotated[0]["method"]] * grid.array.size + 10.0
    assert float(annotated[0]["irrelevant_mass_share"]) == pytest.approx(peak_value / total, rel=1e-6)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_labels_are_counterbalanced_by_a_williams_square(tmp_path, n):
    """Each method is shown under each label, and right after each other method, equally often."""
    from collections import Counter

    from XAIMedSlicerLib.study.blinding import williams_square

    methods = [f"m{i}" for i in range(n)]
    rows = len(williams_square(n))
    study = Study.create(tmp_path / f"cb{n}.sqlite", name="cb", methods=methods, seed=7)
    study.add_cases([CaseSpec(f"case{i:02d}") for i in range(2 * rows)])
    cells, follows = Counter(), Counter()
    for case in study.cases():
        mapping = study.unblind(case["case_id"])
        ordered = [mapping[label] for label in sorted(mapping)]
        cells.update(enumerate(ordered))
        follows.update(zip(ordered, ordered[1:], strict=False))
    assert set(cells.values()) == {2 * rows // n} and len(cells) == n * n
    assert len(set(follows.values())) == 1 and len(follows) == n * (n - 1)
