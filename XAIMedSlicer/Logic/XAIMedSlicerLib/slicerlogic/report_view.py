"""The module's "Report" area, Qt-free: what an explain output folder says in words.

Reads ``explanation.txt``, ``rules.json`` and ``report.html`` (the output-folder contract of
``xaimed explain --out``); each file is optional, a missing one is listed, an unreadable one is
reported in one line and the others are still shown. The worker's output folder is temporary, so the
module captures the report of a finished job (``ReportStore.capture``) before the folder is removed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

FILES = ("explanation.txt", "rules.json", "report.html")
_RULE_TEXT_KEYS = ("message", "text", "statement", "description")


@dataclass(frozen=True)
class ReportContents:
    """The texts of one output folder (None: the file is absent) and one-line problems."""

    folder: str
    explanation: str | None = None
    rules: object = None  # the parsed rules.json
    html: str | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def missing(self) -> tuple[str, ...]:
        present = (self.explanation, self.rules, self.html)
        return tuple(name for name, value in zip(FILES, present, strict=True) if value is None)

    def rules_text(self) -> str:
        """One line per fired rule: ``[severity] name: message`` (any other JSON is shown as it is)."""
        return rules_text(self.rules)

    def plain_text(self) -> str:
        """Everything as plain text for a text browser: explanation, rules, missing files, problems."""
        parts = []
        if self.explanation:
            parts.append(self.explanation.strip())
        if self.rules is not None:
            parts.append("Rules:\n" + (self.rules_text() or "(none fired)"))
        if self.missing:
            parts.append("Not in the output folder: " + ", ".join(self.missing))
        parts += list(self.problems)
        return "\n\n".join(parts) if parts else "No report."


def _rules_list(rules) -> list:
    if isinstance(rules, dict):
        for key in ("rules", "fired", "results"):
            if isinstance(rules.get(key), list):
                return rules[key]
        return []
    return rules if isinstance(rules, list) else []


def rules_text(rules) -> str:
    """See :meth:`ReportContents.rules_text`."""
    if rules is None:
        return ""
    items = _rules_list(rules)
    if not items:
        return json.dumps(rules, indent=2, sort_keys=True) if rules not in ({}, []) else ""
    lines = []
    for item in items:
        if not isinstance(item, dict):
            lines.append(str(item))
            continue
        if item.get("fired") is False:
            continue
        message = next((str(item[k]) for k in _RULE_TEXT_KEYS if item.get(k)), "")
        severity = item.get("severity")
        head = f"[{severity}] " if severity else ""
        name = item.get("name") or item.get("rule") or item.get("id") or ""
        lines.append(f"{head}{name}: {message}".strip(": ") if name else f"{head}{message}")
    return "\n".join(lines)


def read_report(folder: str | os.PathLike | None) -> ReportContents:
    """The report files of ``folder`` (an empty result for None or a folder that does not exist)."""
    if folder is None or not str(folder) or not Path(folder).is_dir():
        return ReportContents(str(folder or ""))
    folder = Path(folder)
    texts: dict[str, str | None] = {}
    problems = []
    for name in FILES:
        path = folder / name
        try:
            texts[name] = path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError) as exc:
            texts[name] = None
            problems.append(f"{name} could not be read ({type(exc).__name__}); rerun the explanation")
    rules = None
    if texts["rules.json"] is not None:
        try:
            rules = json.loads(texts["rules.json"])
        except ValueError:
            problems.append("rules.json is not valid JSON; rerun the explanation")
    return ReportContents(str(folder), texts["explanation.txt"], rules, texts["report.html"], tuple(problems))


class ReportStore:
    """Reports of finished jobs by attribution node ID (the worker's folder is deleted after loading)."""

    def __init__(self) -> None:
        self._reports: dict[str, ReportContents] = {}

    def capture(self, node, folder) -> ReportContents:
        """Read ``folder``'s report now and keep it for ``node``."""
        report = read_report(folder)
        if node is not None:
            self._reports[node.GetID()] = report
        return report

    def for_node(self, node) -> ReportContents | None:
        """The captured report of a map or of a map derived from it (None when none was captured)."""
        if node is None:
            return None
        from ..scene import source_map

        return self._reports.get(node.GetID()) or self._reports.get(source_map(node).GetID())
