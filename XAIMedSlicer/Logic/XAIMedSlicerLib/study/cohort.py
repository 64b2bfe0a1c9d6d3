"""The cohort table: one row per case, reader and method, unblinded, as a list or a CSV file."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..io.atomic import write_text
from .store import AGREEMENT_COLUMNS, Study

COLUMNS = (
    "case_id",
    "position",
    "reader",
    "method",
    "blinded_label",
    "trust",
    "rating_comment",
    "case_seconds",
    "annotation_id",
    "annotation_version",
    "seg_file",
    "n_irrelevant",
    "n_missed",
    "n_agree",
    *AGREEMENT_COLUMNS,
    "k_percent",
    "model_hash",
    "attribution_ref",
)


def cohort_rows(study: Study) -> list[dict]:
    """Every (case, reader, method) that has a rating or an annotation, in reading order."""
    cases = {c["case_id"]: c for c in study.cases()}
    maps = {(r["case_id"], r["method"]): r for r in study.db.rows("SELECT * FROM maps")}
    by_label = {(r["case_id"], r["label"]): r["method"] for r in maps.values()}
    ratings = {
        (r["case_id"], r["reader"], by_label[(r["case_id"], r["label"])]): r
        for r in study.db.rows("SELECT * FROM ratings")
    }
    seconds = {(r["case_id"], r["reader"]): r["seconds"] for r in study.db.rows("SELECT * FROM completed")}
    annotations = {(a["case_id"], a["reader"], a["method"]): a for a in study.annotations(latest=True)}
    rows = []
    for key in sorted(set(ratings) | set(annotations), key=lambda k: (cases[k[0]]["position"], k[1], k[2])):
        case_id, reader, method = key
        rating, ann, m = ratings.get(key, {}), annotations.get(key), maps.get((case_id, method), {})
        counts = {"irrelevant": 0, "missed": 0, "agree": 0}
        for seg in (ann or {}).get("metadata", {}).get("segments", []):
            counts[seg["category"]] += 1
        row = {
            "case_id": case_id,
            "position": cases[case_id]["position"],
            "reader": reader,
            "method": method,
            "blinded_label": m.get("label", ""),
            "trust": rating.get("trust"),
            "rating_comment": rating.get("comment", ""),
            "case_seconds": seconds.get((case_id, reader)),
            "annotation_id": ann["id"] if ann else None,
            "annotation_version": ann["version"] if ann else None,
            "seg_file": ann["seg_path"] if ann else "",
            "n_irrelevant": counts["irrelevant"] if ann else None,
            "n_missed": counts["missed"] if ann else None,
            "n_agree": counts["agree"] if ann else None,
            "k_percent": ann["k_percent"] if ann else None,
            "model_hash": cases[case_id]["model_hash"],
            "attribution_ref": m.get("attribution_ref", ""),
        }
        for col in AGREEMENT_COLUMNS:
            row[col] = ann[col] if ann else None
        rows.append(row)
    return rows


def write_cohort_csv(study: Study, path: str | os.PathLike) -> Path:
    """Write the cohort table as CSV (atomically); empty cells for missing values."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in cohort_rows(study):
        writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
    write_text(path, buf.getvalue())
    return Path(path)
