"""The study database survives a killed process: committed writes stay, the open one vanishes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import write_volume
from XAIMedSlicerLib.study import CaseSpec, Study
from XAIMedSlicerLib.study.database import StudyDB

WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from XAIMedSlicerLib.geometry.volume import Volume
    from XAIMedSlicerLib.io.volumes import read_volume
    from XAIMedSlicerLib.study import DisagreementAnnotation, Provenance, Study

    study = Study.open(sys.argv[1])
    attribution = read_volume(sys.argv[2])
    for i in range(4):
        ann = DisagreementAnnotation.empty(attribution, Provenance(f"case{i}", "R1", "ig", "hash"))
        mask = np.zeros(attribution.array.shape, bool)
        mask[i, :, :] = True
        ann.add(mask, "irrelevant", f"comment {i}")
        study.save_annotation(ann, attribution=attribution)
        with study.db.transaction() as conn:
            conn.execute("INSERT INTO ratings VALUES ('R1', ?, 'A', ?, '', 'now')", (f"case{i}", 1 + i))
        print(f"committed {i}", flush=True)
    with study.db.transaction() as conn:
        conn.execute("INSERT INTO ratings VALUES ('R1', 'case0', 'B', 5, 'never committed', 'now')")
        conn.execute("UPDATE ratings SET trust = 5 WHERE case_id = 'case1'")
        print("transaction open", flush=True)
        time.sleep(120)
    """
)


def test_killed_writer_loses_nothing_committed(tmp_path):
    study = Study.create(tmp_path / "s.sqlite", name="crash", methods=["ig", "gradcam"], seed=1)
    study.add_cases([CaseSpec(f"case{i}", maps={}) for i in range(4)])
    study.close()
    rng = np.random.default_rng(0)
    attribution = Volume(rng.random((6, 8, 7)).astype(np.float32), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    map_path = write_volume(attribution, tmp_path / "map.nrrd")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "s.sqlite"), str(map_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("transaction open"):
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert lines == [f"committed {i}" for i in range(4)] + ["transaction open"]
    assert (tmp_path / "s.sqlite-wal").exists()  # the commits live in the WAL, not yet checkpointed

    reopened = Study.open(tmp_path / "s.sqlite")
    assert reopened.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ratings = reopened.db.rows("SELECT case_id, label, trust FROM ratings ORDER BY case_id")
    assert ratings == [{"case_id": f"case{i}", "label": "A", "trust": 1 + i} for i in range(4)]
    rows = reopened.annotations()
    assert [r["case_id"] for r in rows] == [f"case{i}" for i in range(4)]
    for i, row in enumerate(rows):
        ann = reopened.load_annotation(row["id"])  # the file exists and its SHA-256 matches
        assert ann.segments[0].comment == f"comment {i}"
        assert int((ann.labels.array > 0).sum()) == 8 * 7
        assert row["irrelevant_mass_share"] == pytest.approx(
            attribution.array[i].astype(np.float64).sum() / attribution.array.astype(np.float64).sum(),
            rel=1e-9,
        )
    with reopened.db.transaction() as conn:  # the killed writer left no lock behind
        conn.execute("INSERT INTO ratings VALUES ('R2', 'case0', 'A', 3, '', 'now')")
    assert reopened.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_refuses_files_that_are_not_studies_without_touching_them(tmp_path):
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(XAIError, match="not a study database"):
        StudyDB(other)
    assert other.read_bytes() == before
    text = tmp_path / "notes.sqlite"
    text.write_text("hello")
    with pytest.raises(XAIError, match="not a study database"):
        StudyDB(text)
    assert text.read_text() == "hello"
    with pytest.raises(XAIError, match="already exists"):
        Study.create(other, name="x", methods=["ig"])
    with pytest.raises(XAIError, match="not found"):
        Study.open(tmp_path / "missing.sqlite")
