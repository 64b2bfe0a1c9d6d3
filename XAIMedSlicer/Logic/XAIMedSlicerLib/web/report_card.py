"""The "Rules and words" card: the hybrid decision, the fired rules and the sentences of an explanation.

Read from an output folder with ``slicerlogic.report_view.read_report`` (the worker's folder is removed
after a job, so the report is read, and its files are kept in the viewer's own folder, before that);
``report.html`` is served from the kept copy, never from the deleted job folder.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import weakref
from pathlib import Path

ROUTE = "xaimed-reports"  # URL prefix of the kept reports
KEPT = ("explanation.txt", "rules.json", "facts.json", "report.html")
_EMPHASIS = re.compile(r"\*([^*]+)\*")


def sentence_parts(line: str) -> list[dict]:
    """A sentence as text runs: ``*term*`` marks become emphasised runs (the page shows them in italics)."""
    parts, at = [], 0
    for match in _EMPHASIS.finditer(line):
        if match.start() > at:
            parts.append({"t": line[at : match.start()], "em": False})
        parts.append({"t": match.group(1), "em": True})
        at = match.end()
    if at < len(line):
        parts.append({"t": line[at:], "em": False})
    return parts


def plain_sentence(line: str) -> str:
    """A sentence as the page reads (emphasis marks removed)."""
    return _EMPHASIS.sub(r"\1", line)


def card_state(contents, url: str = "") -> dict:
    """What the card shows of one ``ReportContents``: decision, fired rules, sentences, report link."""
    rules = contents.rules if isinstance(contents.rules, dict) else {}
    decision = rules.get("decision") if isinstance(rules.get("decision"), dict) else {}
    fired = [
        {
            "name": str(r.get("name", "")),
            "severity": str(r.get("severity", "")),
            "message": str(r.get("message", "")),
        }
        for r in rules.get("rules", [])
        if isinstance(r, dict) and r.get("fired")
    ]
    lines = [line for line in (contents.explanation or "").splitlines() if line.strip()]
    text = ""
    if decision:
        text = f"decision: {decision.get('decision', '?')}"
        if decision.get("decision") != "keep" and decision.get("changed_by"):
            text += " (by " + ", ".join(str(n) for n in decision["changed_by"]) + ")"
        if decision.get("network_class"):
            final = decision.get("final_class")
            text += f"; network: {decision['network_class']}" + (f", final: {final}" if final else "")
    problems = list(contents.problems)
    if contents.missing and len(contents.missing) < 3:
        problems.append("not in the output folder: " + ", ".join(contents.missing))
    return {
        "report_decision": text,
        "report_rules": fired,
        "report_sentences": [sentence_parts(line) for line in lines],
        "report_url": url if contents.html is not None else "",
        "report_problems": problems,
        "report_shown": bool(lines or fired or decision or problems),
    }


class ReportKeeper:
    """Copies each result's report files into the viewer's own folder, served at ``/xaimed-reports``."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="xaimed-view-reports-"))
        self.count = 0
        if root is None:  # our own temporary folder: removed when the viewer goes (or the server exits)
            weakref.finalize(self, shutil.rmtree, str(self.root), True)

    def keep(self, folder) -> tuple[object, str, Path | None]:
        """(ReportContents, URL of the kept report.html or "", kept folder or None) of ``folder``."""
        from ..io.atomic import atomic_path
        from ..slicerlogic.report_view import read_report

        contents = read_report(folder)
        present = [n for n in KEPT if folder and (Path(folder) / n).is_file()]
        if not present:
            return contents, "", None
        self.count += 1
        kept = self.root / f"{self.count:03d}"
        kept.mkdir(parents=True, exist_ok=False)
        for name in present:
            with atomic_path(kept / name) as target:
                shutil.copyfile(Path(folder) / name, target)
        url = f"/{ROUTE}/{kept.name}/report.html" if "report.html" in present else ""
        return contents, url, kept


def empty_state() -> dict:
    """The card's state names with nothing shown."""
    return {
        "report_decision": "",
        "report_rules": [],
        "report_sentences": [],
        "report_url": "",
        "report_problems": [],
        "report_shown": False,
    }
