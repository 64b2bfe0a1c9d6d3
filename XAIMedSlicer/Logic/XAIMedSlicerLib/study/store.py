"""A study: cases with their attribution maps, annotations with agreement metrics, in one database.

Layout: ``<name>.sqlite`` (the database) and ``<name>_annotations/`` (the ``.seg.nrrd`` files) side by
side. An annotation file is written atomically first; the row that names it (with its SHA-256 and the
agreement metrics) is committed after, in one transaction. A crash in between leaves an unreferenced
file, never a row pointing to a missing or half-written one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import XAIError
from ..geometry.volume import Volume
from .agreement import AgreementResult, agreement
from .annotation import DisagreementAnnotation, utc_now
from .blinding import case_order, case_permutation, new_secret_key
from .database import StudyDB
from .segfile import read_seg_nrrd, write_seg_nrrd


@dataclass
class CaseSpec:
    """One case: its image, the model that was explained and the map of each method."""

    case_id: str
    image_ref: str = ""
    model_hash: str = ""
    target: dict = field(default_factory=dict)
    maps: dict[str, str] = field(default_factory=dict)  # method -> attribution file (or node ID)
    info: dict = field(default_factory=dict)


def _slug(text: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:40] or "x"
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Study:
    """Open with :meth:`open`, make with :meth:`create`; the database does the bookkeeping."""

    def __init__(self, db: StudyDB) -> None:
        self.db = db
        self.path = db.path
        self.annotation_dir = self.path.with_name(f"{self.path.stem}_annotations")

    # ---- life cycle --------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, *, name: str, methods: list[str], seed: int = 0) -> Study:
        """A new, empty study database at ``path`` comparing ``methods``."""
        if len(set(methods)) != len(methods) or not methods:
            raise XAIError(f"methods must be distinct and non-empty, got {methods}", "list each method once")
        db = StudyDB(path, create=True)
        with db.transaction():
            db._set_meta("name", name)
            db._set_meta("seed", str(int(seed)))
            db._set_meta("methods", json.dumps(list(methods)))
            db._set_meta("blinding_key", new_secret_key())
            db._set_meta("created", utc_now())
        return cls(db)

    @classmethod
    def open(cls, path: str | os.PathLike) -> Study:
        return cls(StudyDB(path))

    def close(self) -> None:
        self.db.close()

    @property
    def methods(self) -> list[str]:
        return json.loads(self.db.get_meta("methods", "[]"))

    @property
    def seed(self) -> int:
        return int(self.db.get_meta("seed", "0"))

    # ---- cases -------------------------------------------------------------------------------
    def add_cases(self, cases: list[CaseSpec]) -> None:
        """Add cases in the study's seeded random order, each with a secret blinding of its maps."""
        methods = self.methods
        key = self.db.get_meta("blinding_key")
        by_id = {c.case_id: c for c in cases}
        if len(by_id) != len(cases):
            raise XAIError("case IDs must be unique", "give every case its own ID")
        with self.db.transaction() as conn:
            start = conn.execute("SELECT COALESCE(MAX(position), 0) FROM cases").fetchone()[0]
            for offset, case_id in enumerate(case_order(list(by_id), self.seed + start), start=1):
                c = by_id[case_id]
                if set(c.maps) - set(methods):
                    raise XAIError(
                        f"case {case_id} has maps of unknown methods {sorted(set(c.maps) - set(methods))}",
                        f"use {methods}",
                    )
                if conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone():
                    raise XAIError(f"case {case_id} is already in the study", "give new cases new IDs")
                conn.execute(
                    "INSERT INTO cases (case_id, position, image_ref, model_hash, target, info) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        case_id,
                        start + offset,
                        c.image_ref,
                        c.model_hash,
                        json.dumps(c.target),
                        json.dumps(c.info),
                    ),
                )
                for label, method in case_permutation(key, start + offset, methods).items():
                    conn.execute(
                        "INSERT INTO maps (case_id, method, label, attribution_ref) VALUES (?, ?, ?, ?)",
                        (case_id, method, label, str(c.maps.get(method, ""))),
                    )

    def cases(self) -> list[dict]:
        """Cases in reading order."""
        rows = self.db.rows("SELECT * FROM cases ORDER BY position")
        for r in rows:
            r["target"], r["info"] = json.loads(r["target"]), json.loads(r["info"])
        return rows

    def case(self, case_id: str) -> dict:
        for r in self.cases():
            if r["case_id"] == case_id:
                return r
        raise XAIError(f"case {case_id} is not in the study", "add it with add_cases")

    def unblind(self, case_id: str) -> dict[str, str]:
        """Label -> method for a case (for reports and exports, never for the reader's view)."""
        rows = self.db.rows("SELECT label, method FROM maps WHERE case_id = ? ORDER BY label", (case_id,))
        return {r["label"]: r["method"] for r in rows}

    def attribution_ref(self, case_id: str, method: str) -> str:
        row = self.db.conn.execute(
            "SELECT attribution_ref FROM maps WHERE case_id = ? AND method = ?", (case_id, method)
        ).fetchone()
        if row is None:
            raise XAIError(f"no map of method {method} for case {case_id}", "add the case with that map")
        return row[0]

    # ---- annotations -------------------------------------------------------------------------
    def save_annotation(
        self,
        annotation: DisagreementAnnotation,
        *,
        method: str | None = None,
        attribution: Volume | None = None,
        k_percent: float = 5.0,
        mass: str = "positive",
    ) -> int:
        """Store a new version of the (case, reader, method) annotation; returns its row ID.

        ``method`` overrides the provenance's (reader mode keeps the real method out of the file).
        With ``attribution`` the agreement metrics are computed and stored in the same transaction.
        """
        p = annotation.provenance
        method = method or p.method
        if not (p.case_id and p.reader and method):
            raise XAIError(
                "an annotation needs a case ID, a reader ID and a method", "fill in its provenance"
            )
        annotation.validate()
        result: AgreementResult | None = None
        if attribution is not None:
            result = agreement(annotation, attribution, k_percent=k_percent, mass=mass)
            result.method = method
        with self.db.transaction() as conn:
            version = conn.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM annotations WHERE case_id = ? AND reader = ? AND method = ?",
                (p.case_id, p.reader, method),
            ).fetchone()[0]
            name = f"{_slug(p.case_id)}__{_slug(p.reader)}__{_slug(p.blinded_label or method)}__v{version}.seg.nrrd"
            seg_path = write_seg_nrrd(annotation, self.annotation_dir / name)
            cur = conn.execute(
                "INSERT INTO annotations (case_id, reader, method, version, seg_path, seg_sha256, metadata, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    p.case_id,
                    p.reader,
                    method,
                    version,
                    name,
                    _sha256(seg_path),
                    json.dumps(annotation.metadata()),
                    utc_now(),
                ),
            )
            annotation_id = int(cur.lastrowid)
            if result is not None:
                conn.execute(
                    "INSERT INTO agreement VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        annotation_id,
                        *(_real(getattr(result, k)) for k in AGREEMENT_COLUMNS),
                        k_percent,
                        result.to_json(indent=None),
                    ),
                )
        return annotation_id

    def annotations(self, *, latest: bool = True) -> list[dict]:
        """Annotation rows (with agreement columns where computed); only the newest versions by default."""
        sql = (
            "SELECT a.*, g.irrelevant_mass_share, g.missed_share, g.missed_mass_share, g.dice_irrelevant, "
            "g.dice_missed, g.dice_agree, g.k_percent FROM annotations a LEFT JOIN agreement g ON g.annotation_id = a.id"
        )
        if latest:
            sql += (
                " WHERE a.version = (SELECT MAX(version) FROM annotations b WHERE b.case_id = a.case_id "
                "AND b.reader = a.reader AND b.method = a.method)"
            )
        rows = self.db.rows(sql + " ORDER BY a.id")
        for r in rows:
            r["metadata"] = json.loads(r["metadata"])
        return rows

    def load_annotation(self, annotation_id: int) -> DisagreementAnnotation:
        """Read an annotation's file back, checking it is the one that was committed."""
        row = self.db.conn.execute(
            "SELECT seg_path, seg_sha256 FROM annotations WHERE id = ?", (annotation_id,)
        ).fetchone()
        if row is None:
            raise XAIError(f"no annotation with ID {annotation_id}", "list them with Study.annotations()")
        path = self.annotation_dir / row[0]
        if not path.exists() or _sha256(path) != row[1]:
            raise XAIError(
                f"annotation file {path.name} is missing or was changed", "restore it from a backup"
            )
        return read_seg_nrrd(path)


AGREEMENT_COLUMNS = (
    "irrelevant_mass_share",
    "missed_share",
    "missed_mass_share",
    "dice_irrelevant",
    "dice_missed",
    "dice_agree",
)


def _real(value: float) -> float | None:
    return None if value is None or value != value else float(value)
