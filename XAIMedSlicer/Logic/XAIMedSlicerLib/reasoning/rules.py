"""Rules over the facts, declared in a YAML file the user can edit (``rules/default.yaml``).

A rules file holds ``version: 1``, optional ``constants`` (lists and tables the conditions may use,
such as which structures cannot hold a finding) and ``rules``, each with ``name``, ``condition`` (a
safe expression, see ``expression.py``), ``severity`` (info, warning, critical), ``action`` (none,
downgrade, abstain: what the hybrid decision does when the rule fires), ``message`` (a template whose
``{placeholders}`` are variables) and ``source`` (where the rule's threshold comes from). Everything is
checked when the file is loaded; a mistake is a one-line :class:`XAIError` naming the rule.

The variables a condition reads are built from the facts by :func:`namespace`; see ``VARIABLES``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import XAIError
from .expression import FUNCTIONS, evaluate, parse_condition
from .facts import (
    CheckFact,
    LateralityFact,
    MaskingFact,
    OutsideFact,
    PredictionFact,
    StructureFact,
    facts_of,
)

DEFAULT_RULES = Path(__file__).resolve().parent / "rules" / "default.yaml"
SEVERITIES = ("info", "warning", "critical")
ACTIONS = ("none", "downgrade", "abstain")
RULE_KEYS = {"name", "condition", "severity", "action", "message", "source"}
VARIABLES = {
    "task": "classification or segmentation",
    "predicted_class": "the network's predicted class",
    "target_class": "the class the map explains",
    "confidence": "probability of the predicted class, 0-1 (None for segmentation)",
    "confidence_percent": "the same in percent",
    "labelled": "True when a label map was given",
    "top_structure": "name of the structure holding the largest share of the evidence (None without labels)",
    "top_share": "its share, 0-1",
    "top_percent": "the same in percent",
    "outside_share": "share of the evidence outside the labelled anatomy, 0-1 (None without labels)",
    "outside_percent": "the same in percent",
    "left_share": "share of the evidence left of the midline, 0-1",
    "right_share": "share right of the midline, 0-1",
    "left_percent": "the same in percent",
    "right_percent": "the same in percent",
    "lateralisation": "|right - left| / (right + left), 0-1 (None when the map has no evidence)",
    "evidence_side": "left or right: the side holding more evidence",
    "randomisation": "passed, failed or not checked",
    "randomisation_spearman": "mean Spearman of the randomisation cascade (None when not checked)",
    "deletion": "passed, failed or not checked",
    "deletion_auc": "normalised deletion AUC of the map (None when not checked)",
    "deletion_random_auc": "the same for a random order",
    "masking": "checked, not checked or not applicable",
    "masked_confidence": "probability of the predicted class with the anatomy masked out, 0-1",
    "masked_percent": "the same in percent",
    "masked_class": "the class predicted with the anatomy masked out",
}


@dataclass(frozen=True)
class Rule:
    name: str
    condition: str
    severity: str
    action: str
    message: str
    source: str


@dataclass(frozen=True)
class RuleSet:
    path: str
    version: int
    constants: dict
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    fired: bool
    message: str | None  # the filled template when fired


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Read and check a rules file (default: the shipped ``rules/default.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_RULES
    if not path.is_file():
        raise XAIError(f"rules file not found: {path}", "give a YAML rules file (see rules/default.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise XAIError(f"{path.name} is not valid YAML{where}", "fix the rules file") from None
    return parse_rules(data, str(path))


def parse_rules(data, path: str = "<rules>") -> RuleSet:
    """Check the parsed YAML of a rules file and return the rule set."""
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise XAIError(f"{path} has no list of rules", "write 'rules:' followed by a list of rules")
    if data.get("version") != 1:
        raise XAIError(f"{path}: unsupported rules version {data.get('version')!r}", "write 'version: 1'")
    constants = data.get("constants") or {}
    if not isinstance(constants, dict) or not all(isinstance(k, str) for k in constants):
        raise XAIError(f"{path}: 'constants' must map names to values", "write 'constants: {name: value}'")
    clash = sorted(set(constants) & (set(VARIABLES) | set(FUNCTIONS) | {"share_in"}))
    if clash:
        raise XAIError(f"{path}: constant '{clash[0]}' hides a variable", "rename the constant")
    names = set(VARIABLES) | set(constants)
    rules, seen = [], set()
    for n, item in enumerate(data["rules"], start=1):
        rule = _parse_rule(item, n, names)
        if rule.name in seen:
            raise XAIError(f"{path}: rule '{rule.name}' is declared twice", "give every rule its own name")
        seen.add(rule.name)
        rules.append(rule)
    return RuleSet(path, 1, constants, tuple(rules))


def _parse_rule(item, n: int, names: set[str]) -> Rule:
    if not isinstance(item, dict):
        raise XAIError(f"rule {n} is not a mapping", "write each rule as name:, condition:, ... keys")
    name = str(item.get("name") or f"#{n}")
    missing = sorted(RULE_KEYS - set(item))
    if missing:
        raise XAIError(
            f"rule '{name}' lacks '{missing[0]}'", f"give every rule {', '.join(sorted(RULE_KEYS))}"
        )
    unknown = sorted(set(item) - RULE_KEYS)
    if unknown:
        raise XAIError(
            f"rule '{name}' has an unknown key '{unknown[0]}'", f"use only {', '.join(sorted(RULE_KEYS))}"
        )
    if not isinstance(item["name"], str) or not item["name"].isidentifier():
        raise XAIError(f"rule name {item['name']!r} is not a plain identifier", "use letters, digits and _")
    if item["severity"] not in SEVERITIES:
        raise XAIError(
            f"rule '{name}': unknown severity '{item['severity']}'", f"use one of {', '.join(SEVERITIES)}"
        )
    if item["action"] not in ACTIONS:
        raise XAIError(
            f"rule '{name}': unknown action '{item['action']}'", f"use one of {', '.join(ACTIONS)}"
        )
    if not isinstance(item["source"], str) or not item["source"].strip():
        raise XAIError(f"rule '{name}' does not say where its threshold comes from", "fill in 'source:'")
    parse_condition(item["condition"], names, set(FUNCTIONS) | {"share_in"}, rule=name)
    _check_template(item["message"], name)
    return Rule(name, item["condition"].strip(), item["severity"], item["action"], " ".join(item["message"].split()),
                " ".join(item["source"].split()))  # fmt: skip


def _check_template(message, rule: str) -> None:
    if not isinstance(message, str) or not message.strip():
        raise XAIError(f"rule '{rule}' has no message", "write a message template")
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(message) if f is not None]
    except ValueError as exc:
        raise XAIError(
            f"rule '{rule}': message template is malformed ({exc})", "balance the { and }"
        ) from None
    for field, spec, conversion in parts:
        if spec or conversion or field not in VARIABLES:
            raise XAIError(
                f"rule '{rule}': message placeholder '{{{field}}}' is not a variable",
                "use plain variable names such as {outside_percent}",
            )


def namespace(facts) -> dict:
    """The variables of :data:`VARIABLES` from a tuple of facts."""
    pred = facts_of(facts, PredictionFact)[0]
    structures = facts_of(facts, StructureFact)
    outside = facts_of(facts, OutsideFact)[0]
    side = facts_of(facts, LateralityFact)[0]
    checks = {c.check: c for c in facts_of(facts, CheckFact)}
    mask = facts_of(facts, MaskingFact)[0]
    top = structures[0] if structures else None
    lr = side.left_percent + side.right_percent
    return {
        "task": pred.task,
        "predicted_class": pred.predicted_class,
        "target_class": pred.target_class,
        "confidence": _share(pred.confidence_percent),
        "confidence_percent": pred.confidence_percent,
        "labelled": outside.labelled,
        "top_structure": None if top is None else top.name,
        "top_share": None if top is None else _share(top.share_percent),
        "top_percent": None if top is None else top.share_percent,
        "outside_share": _share(outside.share_percent),
        "outside_percent": outside.share_percent,
        "left_share": _share(side.left_percent),
        "right_share": _share(side.right_percent),
        "left_percent": side.left_percent,
        "right_percent": side.right_percent,
        "lateralisation": abs(side.right_percent - side.left_percent) / lr if lr > 0 else None,
        "evidence_side": "right" if side.right_percent >= side.left_percent else "left",
        "randomisation": checks["randomisation"].status,
        "randomisation_spearman": checks["randomisation"].value,
        "deletion": checks["deletion"].status,
        "deletion_auc": checks["deletion"].value,
        "deletion_random_auc": checks["deletion"].reference,
        "masking": mask.status,
        "masked_confidence": _share(mask.masked_percent),
        "masked_percent": mask.masked_percent,
        "masked_class": mask.masked_class,
    }


def _share(percent: float | None) -> float | None:
    return None if percent is None else percent / 100.0


def evaluate_rules(rule_set: RuleSet, facts) -> list[RuleResult]:
    """Every rule's condition over the facts, in file order; fired rules get their message filled in."""
    ns = {**rule_set.constants, **namespace(facts)}
    shares = {s.name: s.share_percent / 100.0 for s in facts_of(facts, StructureFact)}

    def share_in(names) -> float:
        """Summed share (0-1) of the evidence in the named structures."""
        names = [names] if isinstance(names, str) else list(names)
        return sum(shares.get(n, 0.0) for n in names)

    functions = {**FUNCTIONS, "share_in": share_in}
    results = []
    for rule in rule_set.rules:
        tree = parse_condition(rule.condition, set(ns), set(functions), rule=rule.name)
        fired = bool(evaluate(tree, ns, functions))
        message = rule.message.format_map(_Display(ns)) if fired else None
        results.append(RuleResult(rule, fired, message))
    return results


class _Display(dict):
    """Placeholder values as the message shows them (None as 'n/a', shares to two decimals)."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if value is None:
            return "n/a"
        if isinstance(value, float) and not key.endswith("_percent"):
            return f"{value:.2f}"
        return value
