"""The study database: one SQLite file per study, WAL journal, every write in one transaction.

A transaction is committed as a whole or not at all, so killing the process (or Slicer crashing)
loses at most the write in progress, never a committed one. ``synchronous=FULL`` makes a commit
durable before it returns. Large payloads (annotation label maps) live beside the database as
``.seg.nrrd`` files written atomically before the row that names them is committed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ..errors import XAIError

SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE,
    image_ref TEXT NOT NULL DEFAULT '',
    model_hash TEXT NOT NULL DEFAULT '',
    target TEXT NOT NULL DEFAULT '{}',
    info TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS maps (
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    method TEXT NOT NULL,
    label TEXT NOT NULL,
    attribution_ref TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (case_id, method),
    UNIQUE (case_id, label)
);
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL,
    reader TEXT NOT NULL,
    method TEXT NOT NULL,
    version INTEGER NOT NULL,
    seg_path TEXT NOT NULL,
    seg_sha256 TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created TEXT NOT NULL,
    UNIQUE (case_id, reader, method, version)
);
CREATE TABLE IF NOT EXISTS agreement (
    annotation_id INTEGER PRIMARY KEY REFERENCES annotations(id),
    irrelevant_mass_share REAL,
    missed_share REAL,
    missed_mass_share REAL,
    dice_irrelevant REAL,
    dice_missed REAL,
    dice_agree REAL,
    k_percent REAL NOT NULL,
    result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS visits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reader TEXT NOT NULL,
    case_id TEXT NOT NULL,
    opened_at REAL NOT NULL,
    closed_at REAL
);
CREATE TABLE IF NOT EXISTS ratings (
    reader TEXT NOT NULL,
    case_id TEXT NOT NULL,
    label TEXT NOT NULL,
    trust INTEGER NOT NULL CHECK (trust BETWEEN 1 AND 5),
    comment TEXT NOT NULL DEFAULT '',
    rated_at TEXT NOT NULL,
    PRIMARY KEY (reader, case_id, label)
);
CREATE TABLE IF NOT EXISTS completed (
    reader TEXT NOT NULL,
    case_id TEXT NOT NULL,
    seconds REAL NOT NULL,
    completed_at TEXT NOT NULL,
    PRIMARY KEY (reader, case_id)
);
"""


class StudyDB:
    """An open study database. Use :meth:`transaction` for every write."""

    def __init__(self, path: str | os.PathLike, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise XAIError(
                f"study database not found: {self.path}", "create the study first or check the path"
            )
        if create and self.path.exists():
            raise XAIError(
                f"study database already exists: {self.path}", "open it instead, or choose a new file name"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
            self.conn.row_factory = sqlite3.Row
            if not create:
                self._check_existing()
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise XAIError(
                f"{self.path.name} is not a study database ({exc})", "give the study's .sqlite file"
            ) from None
        if mode.lower() != "wal":
            raise XAIError(
                f"cannot switch {self.path.name} to WAL journaling", "put the study on a local disk"
            )
        if create:
            with self.transaction():
                for statement in filter(str.strip, SCHEMA.split(";")):
                    self.conn.execute(statement)
                self._set_meta("schema_version", SCHEMA_VERSION)

    def _check_existing(self) -> None:
        """Refuse (without changing it) a file that is not a study database of this schema."""
        has_meta = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        version = self.get_meta("schema_version") if has_meta else None
        if version is None:
            self.conn.close()
            raise XAIError(f"{self.path.name} is not a study database", "give the study's .sqlite file")
        if version != SCHEMA_VERSION:
            self.conn.close()
            raise XAIError(
                f"study schema {version} is not supported", f"use a study of schema {SCHEMA_VERSION}"
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ---- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value) -> None:
        """Store one meta value (JSON-encoded when not a string), in its own transaction."""
        with self.transaction():
            self._set_meta(key, value)

    def _set_meta(self, key: str, value) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))

    # ---- reading ----------------------------------------------------------------------------
    def rows(self, sql: str, params: tuple = ()) -> list[dict]:
        """Run a query and return plain dictionaries."""
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StudyDB:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
