"""Reader-study mode: cases in the study's fixed order, maps shown blinded as A, B, C, trust ratings.

A :class:`ReaderSession` hands the reader one :class:`ReaderView` at a time: the case, its place in
the order and the labels, nothing about methods. Maps are loaded by label. Opening a case starts a
visit (its start time is committed at once), ``finish_case`` closes it and records the time spent
(the sum of all visits, so a crash or a pause only loses the open visit's end). Every rating and
every annotation is committed when it is made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import XAIError
from ..geometry.volume import Volume
from ..io.volumes import read_volume
from .annotation import DisagreementAnnotation, Provenance, utc_now
from .store import Study

TRUST_SCALE = {1: "no trust", 2: "little trust", 3: "some trust", 4: "much trust", 5: "full trust"}


@dataclass(frozen=True)
class ReaderView:
    """Everything the reader is shown about a case (no method names, no file names of maps)."""

    case_id: str
    position: int
    total: int
    image_ref: str
    labels: tuple[str, ...]


class ReaderSession:
    """One reader working through a study."""

    def __init__(self, study: Study, reader: str) -> None:
        if not reader.strip():
            raise XAIError("a reader ID is required", "give the reader's ID or initials")
        self.study = study
        self.reader = reader.strip()
        self._case: str | None = None
        self._visit: int | None = None

    # ---- navigation --------------------------------------------------------------------------
    def remaining(self) -> list[str]:
        """Case IDs this reader has not completed, in reading order."""
        done = {
            r["case_id"]
            for r in self.study.db.rows("SELECT case_id FROM completed WHERE reader = ?", (self.reader,))
        }
        return [c["case_id"] for c in self.study.cases() if c["case_id"] not in done]

    def next_case(self) -> ReaderView | None:
        """Open the next case not yet completed (None when the study is done for this reader)."""
        remaining = self.remaining()
        return self.open_case(remaining[0]) if remaining else None

    def open_case(self, case_id: str) -> ReaderView:
        """Start (or resume) a case: a visit with its start time is committed now."""
        if self._case is not None:
            self.pause()
        cases = self.study.cases()
        row = next((c for c in cases if c["case_id"] == case_id), None)
        if row is None:
            raise XAIError(f"case {case_id} is not in the study", "pick a case from the study's list")
        with self.study.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO visits (reader, case_id, opened_at) VALUES (?, ?, ?)",
                (self.reader, case_id, time.time()),
            )
        self._case, self._visit = case_id, int(cur.lastrowid)
        labels = tuple(sorted(self.study.unblind(case_id)))
        return ReaderView(case_id, int(row["position"]), len(cases), row["image_ref"], labels)

    def pause(self) -> None:
        """Close the open visit without completing the case."""
        self._close_visit()
        self._case = None

    # ---- judging -----------------------------------------------------------------------------
    def map_volume(self, label: str) -> Volume:
        """The attribution map behind ``label`` of the open case, read from its file."""
        return read_volume(self.study.attribution_ref(self._open(), self._method(label)))

    def rate(self, label: str, trust: int, comment: str = "") -> None:
        """Record a 1-5 trust rating for the map shown as ``label`` (a new rating replaces the old one)."""
        case_id = self._open()
        self._method(label)
        if int(trust) not in TRUST_SCALE or int(trust) != trust:
            raise XAIError(
                f"trust must be an integer from 1 to 5, got {trust}", "1 = no trust ... 5 = full trust"
            )
        with self.study.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO ratings (reader, case_id, label, trust, comment, rated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (self.reader, case_id, label, int(trust), comment, utc_now()),
            )

    def new_annotation(self, label: str, reference: Volume, comment: str = "") -> DisagreementAnnotation:
        """A blank disagreement annotation for the map ``label``; the file will name the label, not the method."""
        case_id = self._open()
        self._method(label)
        case = self.study.case(case_id)
        provenance = Provenance(
            case_id=case_id,
            reader=self.reader,
            method="",
            model_hash=case["model_hash"],
            target=case["target"],
            attribution_ref=f"blinded map {label}",
            blinded_label=label,
        )
        return DisagreementAnnotation.empty(reference, provenance, comment)

    def save_annotation(self, annotation: DisagreementAnnotation, k_percent: float = 5.0) -> int:
        """Commit the annotation with the agreement against the map it refers to."""
        label = annotation.provenance.blinded_label
        method = self._method(label)
        attribution = self.map_volume(label) if self.study.attribution_ref(self._open(), method) else None
        return self.study.save_annotation(
            annotation, method=method, attribution=attribution, k_percent=k_percent
        )

    def finish_case(self) -> float:
        """Complete the open case (every label must be rated); returns the seconds spent on it."""
        case_id = self._open()
        labels = set(self.study.unblind(case_id))
        rated = {
            r["label"]
            for r in self.study.db.rows(
                "SELECT label FROM ratings WHERE reader = ? AND case_id = ?", (self.reader, case_id)
            )
        }
        if labels - rated:
            raise XAIError(
                f"maps {', '.join(sorted(labels - rated))} are not rated yet", "rate every map from 1 to 5"
            )
        self._close_visit()
        rows = self.study.db.rows(
            "SELECT opened_at, closed_at FROM visits WHERE reader = ? AND case_id = ? AND closed_at IS NOT NULL",
            (self.reader, case_id),
        )
        seconds = float(sum(r["closed_at"] - r["opened_at"] for r in rows))
        with self.study.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO completed (reader, case_id, seconds, completed_at) VALUES (?, ?, ?, ?)",
                (self.reader, case_id, seconds, utc_now()),
            )
        self._case = None
        return seconds

    # ---- helpers -----------------------------------------------------------------------------
    def _open(self) -> str:
        if self._case is None:
            raise XAIError("no case is open", "call next_case() or open_case() first")
        return self._case

    def _method(self, label: str) -> str:
        mapping = self.study.unblind(self._open())
        if label not in mapping:
            raise XAIError(
                f"there is no map {label} in this case", f"use one of {', '.join(sorted(mapping))}"
            )
        return mapping[label]

    def _close_visit(self) -> None:
        if self._visit is None:
            return
        with self.study.db.transaction() as conn:
            conn.execute(
                "UPDATE visits SET closed_at = ? WHERE id = ? AND closed_at IS NULL",
                (time.time(), self._visit),
            )
        self._visit = None
