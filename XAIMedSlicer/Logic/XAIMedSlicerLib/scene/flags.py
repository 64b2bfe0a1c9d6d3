"""The map checks (``metrics.validate``) as attributes of an attribution node, kept by a saved scene."""

from __future__ import annotations

import json

from .provenance import PREFIX

FLAGS = PREFIX + "flags"  # the one-line verdict, e.g. 'passes randomisation check; deletion AUC ...'
FAILED = PREFIX + "flagsFailed"  # "true" or "false"
NUMBERS = PREFIX + "flagsNumbers"  # the whole check result, JSON
FAILED_MARKER = " [fails checks]"


def set_flags(node, validation: dict, *, mark_name: bool = False) -> None:
    """Store the checks on ``node``; ``mark_name`` appends the failure marker to a new node's name."""
    failed = bool(validation.get("failed"))
    node.SetAttribute(FLAGS, str(validation.get("text", "")))
    node.SetAttribute(FAILED, "true" if failed else "false")
    node.SetAttribute(NUMBERS, json.dumps(validation, sort_keys=True))
    name = node.GetName() or ""
    if mark_name and failed and not name.endswith(FAILED_MARKER):
        node.SetName(name + FAILED_MARKER)


def get_flags(node) -> dict | None:
    """``{"text", "failed", "numbers"}`` of a checked node; None when the node was not checked."""
    if node is None or not node.GetAttribute(FLAGS):
        return None
    numbers = node.GetAttribute(NUMBERS)
    return {
        "text": node.GetAttribute(FLAGS),
        "failed": node.GetAttribute(FAILED) == "true",
        "numbers": json.loads(numbers) if numbers else {},
    }
