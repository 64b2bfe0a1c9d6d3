"""The cohort summary: one row per case and method, as CSV, Parquet and a table in the study database.

Columns: prediction (class and probability, target class and probability), time (whole task and the
attribution alone), localisation against the lesion mask (``metrics.localisation``: pointing game,
energy inside, relevance rank accuracy, top-5 % IoU) and faithfulness (``metrics.faithfulness``:
deletion AUC of the map and of a random order), the result key and folder, or the case's one-line error.

In the study database (``study.store.Study``) the cases with a result are added with their maps (so
a reader study can open them) and every row goes into the table ``cohort_results``, in one transaction.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from ..io.atomic import atomic_path, write_text
from .cases import Case
from .task import RESULTS

TEXT, REAL, INTEGER = "TEXT", "REAL", "INTEGER"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("case_id", TEXT),
    ("method", TEXT),
    ("status", TEXT),
    ("error", TEXT),
    ("predicted_class", TEXT),
    ("predicted_probability", REAL),
    ("target_class", TEXT),
    ("target_probability", REAL),
    ("seconds", REAL),
    ("attribution_seconds", REAL),
    ("pointing_game", REAL),
    ("energy_inside", REAL),
    ("relevance_rank_accuracy", REAL),
    ("top_k_iou", REAL),
    ("deletion_auc", REAL),
    ("deletion_random_auc", REAL),
    ("key", TEXT),
    ("result", TEXT),
    ("worker_pid", INTEGER),
)
NAMES = tuple(name for name, _ in COLUMNS)
TABLE = "cohort_results"


def table_rows(rows: Sequence[dict]) -> list[dict]:
    """The rows with exactly the summary's columns (None where a value does not apply)."""
    out = []
    for row in rows:
        values = {name: row.get(name) for name in NAMES}
        if values["status"] == "ok" and values["key"]:
            values["result"] = f"{RESULTS}/{values['key']}"
        out.append(values)
    return out


def write_csv(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """The table as CSV (atomically); empty cells for missing values."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=NAMES, lineterminator="\n")
    writer.writeheader()
    for row in table_rows(rows):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    write_text(path, buf.getvalue())
    return Path(path)


def write_parquet(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """The table as Parquet (pyarrow; typed columns, nulls for missing values), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {TEXT: pa.string(), REAL: pa.float64(), INTEGER: pa.int64()}
    schema = pa.schema([(name, types[kind]) for name, kind in COLUMNS])
    values = table_rows(rows)
    columns = {}
    for name, kind in COLUMNS:
        cast = {TEXT: str, REAL: float, INTEGER: int}[kind]
        columns[name] = [None if r[name] is None else cast(r[name]) for r in values]
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pydict(columns, schema=schema), tmp)
    return Path(path)


def write_study(
    path: str | os.PathLike,
    rows: Sequence[dict],
    cases: Sequence[Case],
    methods: Sequence[str],
    out: Path,
    model_hashes: dict[str, str] | None = None,
) -> Path:
    """Add the cases with results (and their maps) to the study at ``path`` (made when missing) and
    store every row in its ``cohort_results`` table (rows of the same case and method are replaced)."""
    from ..study.store import CaseSpec, Study

    path = Path(path)
    study = Study.open(path) if path.exists() else Study.create(path, name=out.name, methods=list(methods))
    try:
        values = table_rows(rows)
        known = {c["case_id"] for c in study.cases()}
        by_id = {c.case_id: c for c in cases}
        maps: dict[str, dict[str, str]] = {}
        for row in values:
            if row["status"] == "ok" and row["method"] in study.methods:
                maps.setdefault(row["case_id"], {})[row["method"]] = str(
                    out / row["result"] / "attribution.nrrd"
                )
        new = [
            CaseSpec(
                case_id=case_id,
                image_ref=by_id[case_id].image,
                model_hash=(model_hashes or {}).get(case_id, ""),
                target={"class_name": by_id[case_id].target} if by_id[case_id].target else {},
                maps=case_maps,
                info={"cohort": str(out)},
            )
            for case_id, case_maps in maps.items()
            if case_id not in known and case_id in by_id
        ]
        if new:
            study.add_cases(new)
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
        with study.db.transaction() as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns}, PRIMARY KEY (case_id, method))")
            marks = ", ".join("?" for _ in NAMES)
            conn.executemany(
                f"INSERT OR REPLACE INTO {TABLE} ({', '.join(NAMES)}) VALUES ({marks})",
                [tuple(row[name] for name in NAMES) for row in values],
            )
    finally:
        study.close()
    return path


def read_study_rows(path: str | os.PathLike) -> list[dict]:
    """The ``cohort_results`` rows of a study database, by case and method."""
    from ..study.database import StudyDB

    with StudyDB(path) as db:
        return db.rows(f"SELECT * FROM {TABLE} ORDER BY case_id, method")


def write_summary(
    out: Path,
    rows: Sequence[dict],
    cases: Sequence[Case],
    methods: Sequence[str],
    study: str | os.PathLike,
    *,
    model_hashes: dict[str, str] | None = None,
) -> dict[str, Path]:
    """``summary.csv``, ``summary.parquet`` and the study database; returns their paths."""
    return {
        "csv": write_csv(rows, out / "summary.csv"),
        "parquet": write_parquet(rows, out / "summary.parquet"),
        "study": write_study(study, rows, cases, methods, out, model_hashes),
    }
