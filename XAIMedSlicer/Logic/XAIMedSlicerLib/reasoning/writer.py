"""Write the reasoning of one explanation: ``facts.json``, ``rules.json`` and ``explanation.txt``.

``facts.json`` holds every fact (explanation facts, fired rules, decision) with its reference id;
``rules.json`` every rule of the rules file with whether it fired, its filled message, its threshold's
source, and the hybrid decision with its trace; ``explanation.txt`` the sentences, one per fact. Each
file is written atomically (``io.atomic``); the three are computed before the first is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..explanation import Explanation
from ..io.atomic import write_json, write_text
from .facts import FACT_VERSION, PredictionFact, build_facts, fact_to_dict, facts_of
from .hybrid import Decision, decide, reasoning_facts
from .masking import anatomy_masking
from .rules import RuleResult, RuleSet, evaluate_rules, load_rules
from .text import render_text

FILES = ("facts.json", "rules.json", "explanation.txt")


def reason(
    explanation: Explanation,
    *,
    rules: RuleSet | str | os.PathLike | None = None,
    validation: dict | None = None,
    model=None,
    masking: dict | None = None,
) -> tuple[tuple, list[RuleResult], Decision]:
    """All facts (the explanation's, then the fired rules and the decision), the rule results, the decision.

    ``validation`` defaults to ``explanation.provenance["validation"]`` when present; ``masking`` is run
    with ``model`` (a ``LoadedModel``; None: the model named in the provenance) unless given.
    """
    rule_set = rules if isinstance(rules, RuleSet) else load_rules(rules)
    if validation is None:
        validation = explanation.provenance.get("validation")
    if masking is None:
        masking = anatomy_masking(explanation, model)
    facts = build_facts(explanation, validation=validation, masking=masking)
    results = evaluate_rules(rule_set, facts)
    decision = decide(facts_of(facts, PredictionFact)[0], results)
    return facts + reasoning_facts(results, decision), results, decision


def write_reasoning(
    explanation: Explanation,
    out_dir: str | os.PathLike,
    *,
    rules: str | os.PathLike | None = None,
    validation: dict | None = None,
    model=None,
    masking: dict | None = None,
) -> list[Path]:
    """Write ``facts.json``, ``rules.json`` and ``explanation.txt`` into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    rule_set = load_rules(rules)
    facts, results, decision = reason(
        explanation, rules=rule_set, validation=validation, model=model, masking=masking
    )
    facts_doc = {"format_version": FACT_VERSION, "facts": [fact_to_dict(f) for f in facts]}
    rules_doc = {
        "format_version": FACT_VERSION,
        "rules_file": rule_set.path,
        "rules": [
            {
                "name": r.rule.name,
                "severity": r.rule.severity,
                "action": r.rule.action,
                "condition": r.rule.condition,
                "source": r.rule.source,
                "fired": r.fired,
                "message": r.message,
            }
            for r in results
        ],
        "fired": [r.rule.name for r in results if r.fired],
        "decision": decision.to_dict(),
    }
    text = render_text(facts)
    write_json(out / "facts.json", facts_doc)
    write_json(out / "rules.json", rules_doc)
    write_text(out / "explanation.txt", text)
    return [out / name for name in FILES]
