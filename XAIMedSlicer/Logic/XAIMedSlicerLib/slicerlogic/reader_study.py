"""Blinded reader study, Qt-free: a loop shared by ``xaimed study reader``, the module and the web viewer.

``run_reader(study, reader, ratings=None, ask=input, say=print)`` walks the reader's remaining cases in
the study's seeded order, maps labelled A, B, C (the per-case permutation is secret, drawn from the
study's key, so methods are counterbalanced across cases), records a 1-5 trust per map and the time per
case. ``summary_rows(study)`` is the tidy table: one row per reader, case and map.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import XAIError
from ..study.reader import ReaderSession
from ..study.store import Study


def _trust(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise XAIError(f"trust must be a number from 1 to 5, got '{text}'", "type 1 to 5") from None
    return value


def run_reader(
    study: Study,
    reader: str,
    *,
    ratings: list[dict] | None = None,
    ask: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
) -> int:
    """Rate every remaining case; returns the number completed. ``ratings`` replaces the prompts."""
    session = ReaderSession(study, reader)
    done = 0
    while (view := session.next_case()) is not None:
        say(f"case {view.position}/{view.total}: {view.image_ref}; maps {', '.join(view.labels)}")
        given = None
        if ratings is not None:
            if done >= len(ratings):
                session.pause()
                break
            given = ratings[done]
            if not isinstance(given, dict) or set(given) != set(view.labels):
                session.pause()
                raise XAIError(
                    f"ratings entry {done + 1} must rate maps {', '.join(view.labels)}",
                    "give one {label: trust} object per case in reading order",
                )
        for label in view.labels:
            trust = given[label] if given is not None else _trust(ask(f"trust in map {label} (1-5): "))
            session.rate(label, _trust(trust))
        seconds = session.finish_case()
        say(f"  {seconds:.1f} s")
        done += 1
    return done


def summary_rows(study: Study) -> list[dict]:
    """One row per (reader, case, map): blinded label, method, position, trust, seconds on the case."""
    seconds = {
        (r["reader"], r["case_id"]): r["seconds"]
        for r in study.db.rows("SELECT reader, case_id, seconds FROM completed")
    }
    positions = {c["case_id"]: c["position"] for c in study.cases()}
    rows = []
    for r in study.db.rows(
        "SELECT reader, case_id, label, trust FROM ratings ORDER BY reader, case_id, label"
    ):
        rows.append(
            {
                "reader": r["reader"],
                "case_id": r["case_id"],
                "position": positions[r["case_id"]],
                "label": r["label"],
                "method": study.unblind(r["case_id"])[r["label"]],
                "trust": r["trust"],
                "seconds": seconds.get((r["reader"], r["case_id"])),
            }
        )
    return rows
