"""The hybrid decision: the network's prediction kept, downgraded or withheld, with the trace of each rule."""

from __future__ import annotations

from reasoning_cases import clean_facts, replace, tripping
from XAIMedSlicerLib.reasoning.facts import DecisionFact, PredictionFact, RuleFact
from XAIMedSlicerLib.reasoning.hybrid import decide, reasoning_facts
from XAIMedSlicerLib.reasoning.rules import evaluate_rules, load_rules, parse_rules


def rule(name: str, condition: str, action: str) -> dict:
    return {"name": name, "condition": condition, "severity": "warning", "action": action,
            "message": f"{name} fired", "source": "a test"}  # fmt: skip


RULES = parse_rules(
    {
        "version": 1,
        "rules": [
            rule("note", "confidence > 0.5", "none"),
            rule("soft", "confidence < 0.99", "downgrade"),
            rule("hard", "outside_share > 0.5", "abstain"),
            rule("late_soft", "confidence < 0.99", "downgrade"),
            rule("silent", "confidence < 0.1", "abstain"),
        ],
    }
)


def prediction(facts) -> PredictionFact:
    return next(f for f in facts if isinstance(f, PredictionFact))


def test_trace_records_which_rule_changed_what():
    facts = replace(clean_facts(), "O1", share_percent=80.0)
    results = evaluate_rules(RULES, facts)
    assert [r.rule.name for r in results if r.fired] == ["note", "soft", "hard", "late_soft"]
    decision = decide(prediction(facts), results)
    steps = [(s.rule, s.action, s.before, s.after, s.changed) for s in decision.trace]
    assert steps == [
        ("soft", "downgrade", "keep", "downgrade", True),
        ("hard", "abstain", "downgrade", "abstain", True),
        ("late_soft", "downgrade", "abstain", "abstain", False),
    ]
    assert decision.decision == "abstain" and decision.final_class is None
    assert decision.network_class == "lesion" and decision.network_confidence_percent == 97.5
    assert decision.changed_by == ("soft", "hard")
    record = decision.to_dict()
    assert record["changed_by"] == ["soft", "hard"] and record["trace"][2]["changed"] is False


def test_downgrade_keeps_the_class_and_no_rule_keeps_everything():
    decision = decide(prediction(clean_facts()), evaluate_rules(RULES, clean_facts()))
    assert (decision.decision, decision.final_class, decision.changed_by) == (
        "downgrade",
        "lesion",
        ("soft",),
    )
    certain = replace(clean_facts(), "P1", confidence_percent=99.5)
    decision = decide(prediction(certain), evaluate_rules(RULES, certain))
    assert (decision.decision, decision.final_class, decision.trace) == ("keep", "lesion", ())


def test_shipped_rules_on_a_shortcut_case():
    shipped = load_rules()
    masking = next(r for r in shipped.rules if r.name == "prediction_survives_anatomy_masking")
    outside = next(r for r in shipped.rules if r.name == "evidence_outside_anatomy")
    facts = replace(tripping(masking), "O1", share_percent=tripping(outside)[4].share_percent)
    results = evaluate_rules(shipped, facts)
    decision = decide(prediction(facts), results)
    fired = [r.rule.name for r in results if r.fired]
    assert fired == ["evidence_outside_anatomy", "prediction_survives_anatomy_masking"]
    assert decision.decision == "abstain" and decision.changed_by == ("evidence_outside_anatomy",)
    assert [s.rule for s in decision.trace] == fired  # the second abstain changes nothing more
    extra = reasoning_facts(results, decision)
    assert [type(f) for f in extra] == [RuleFact, RuleFact, DecisionFact]
    assert [f.ref for f in extra] == ["R1", "R2", "D1"]
    assert extra[0].message == results[0].message and extra[-1].changed_by == ("evidence_outside_anatomy",)


def test_clean_case_keeps_the_prediction_under_the_shipped_rules():
    results = evaluate_rules(load_rules(), clean_facts())
    decision = decide(prediction(clean_facts()), results)
    assert not any(r.fired for r in results)
    assert (decision.decision, decision.final_class) == ("keep", "lesion")
