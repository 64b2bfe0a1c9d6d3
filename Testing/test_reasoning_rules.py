"""Rules from YAML: parsing, the safe expression language, and every shipped rule on constructed cases."""

from __future__ import annotations

import ast

import pytest
import yaml

from reasoning_cases import clean_facts, just_short, tripping
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.reasoning.expression import FUNCTIONS, evaluate, parse_condition
from XAIMedSlicerLib.reasoning.rules import (
    ACTIONS,
    DEFAULT_RULES,
    SEVERITIES,
    VARIABLES,
    evaluate_rules,
    load_rules,
    namespace,
    parse_rules,
)

REQUIRED = {  # issue 12: the rules that must ship
    "evidence_outside_anatomy",
    "evidence_in_structure_that_cannot_hold",
    "lateralised_evidence",
    "randomisation_failed",
    "low_confidence",
    "prediction_survives_anatomy_masking",
}
SHIPPED = load_rules()


def rule_doc(**changes) -> dict:
    rule = {
        "name": "r",
        "condition": "confidence < 0.5",
        "severity": "warning",
        "action": "downgrade",
        "message": "low {confidence_percent}%",
        "source": "a test",
    }
    rule.update(changes)
    return {"version": 1, "rules": [rule]}


def test_shipped_rules_load_with_sources():
    names = {r.name for r in SHIPPED.rules}
    assert REQUIRED <= names
    assert SHIPPED.path == str(DEFAULT_RULES)
    raw = yaml.safe_load(DEFAULT_RULES.read_text())
    assert [r["name"] for r in raw["rules"]] == [r.name for r in SHIPPED.rules]
    for rule in SHIPPED.rules:
        assert rule.severity in SEVERITIES and rule.action in ACTIONS
        assert "PENDING" not in rule.source and len(rule.source) > 20, rule.name
        assert rule.condition == raw["rules"][[r["name"] for r in raw["rules"]].index(rule.name)]["condition"]


@pytest.mark.parametrize("rule", SHIPPED.rules, ids=lambda r: r.name)
def test_every_shipped_rule_fires_on_its_case_and_is_silent_otherwise(rule):
    clean = {r.rule.name: r for r in evaluate_rules(SHIPPED, clean_facts())}
    assert not clean[rule.name].fired, f"{rule.name} fires on the clean case"
    short = {r.rule.name: r for r in evaluate_rules(SHIPPED, just_short(rule))}
    assert not short[rule.name].fired, f"{rule.name} fires just inside its threshold"
    tripped = {r.rule.name: r for r in evaluate_rules(SHIPPED, tripping(rule))}
    assert tripped[rule.name].fired, f"{rule.name} does not fire on its case"
    others = [n for n, r in tripped.items() if r.fired and n != rule.name]
    assert others == [], f"{rule.name}'s case also trips {others}"
    message = tripped[rule.name].message
    assert "{" not in message and "\n" not in message


def test_message_is_filled_from_the_facts():
    rule = next(r for r in SHIPPED.rules if r.name == "evidence_outside_anatomy")
    facts = tripping(rule)
    result = next(r for r in evaluate_rules(SHIPPED, facts) if r.rule.name == rule.name)
    outside = next(f for f in facts if f.ref == "O1")
    assert result.message.startswith(f"{outside.share_percent}% of the evidence lies outside")


def test_namespace_numbers():
    ns = namespace(clean_facts())
    assert ns["confidence"] == pytest.approx(0.975)
    assert ns["outside_share"] == pytest.approx(0.06)
    assert ns["top_structure"] == "white matter" and ns["top_share"] == pytest.approx(0.6)
    assert ns["lateralisation"] == pytest.approx(abs(52.0 - 48.0) / 100.0)
    assert ns["evidence_side"] == "right"
    assert set(ns) == set(VARIABLES)


EXPRESSIONS = [
    "confidence < 0.5 or outside_share >= 0.25",
    "not (confidence > 0.9) and -outside_share < -0.1",
    "predicted_class in ['lesion', 'tumour'] and predicted_class not in ('no lesion',)",
    "abs(left_share - right_share) / (left_share + right_share) > 0.3",
    "max(left_share, right_share) * 2 - min(left_share, 0.1) >= 1.0",
    "0.1 < outside_share <= 0.3 == 0.3",
    "confidence is not None and masked is None",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
@pytest.mark.parametrize("values", [(0.4, 0.2, 0.7, 0.3), (0.95, 0.3, 0.1, 0.85), (0.7, 0.05, 0.5, 0.5)])
def test_expressions_agree_with_python(text, values):
    confidence, outside, left, right = values
    ns = {"confidence": confidence, "outside_share": outside, "left_share": left, "right_share": right}
    ns.update(predicted_class="lesion", masked=None)
    tree = parse_condition(text, set(ns), set(FUNCTIONS))
    reference = eval(
        compile(ast.parse(text, mode="eval"), "<test>", "eval"), {"__builtins__": {}}, {**ns, **FUNCTIONS}
    )
    assert evaluate(tree, ns, FUNCTIONS) == reference


def test_ordering_with_a_missing_number_is_false():
    ns = {"masked_confidence": None}
    for text in ("masked_confidence >= 0.5", "masked_confidence < 0.5", "0.5 > masked_confidence"):
        assert evaluate(parse_condition(text, set(ns), set()), ns, {}) is False
    assert evaluate(parse_condition("masked_confidence == None", set(ns), set()), ns, {}) is True


BAD_CONDITIONS = [
    ("__import__('os').system('echo hi')", "call of '__import__('os').system' is not allowed"),
    ("confidence.__class__", "'Attribute' is not allowed"),
    ("(lambda: 1)()", "not allowed"),
    ("[c for c in normal_classes]", "'ListComp' is not allowed"),
    ("open('/etc/passwd')", "call of 'open'"),
    ("max(confidence, key=abs)", "call of 'max'"),
    ("confidence ** 2 > 0", "'Pow' is not allowed"),
    ("b'x' == 1", "constant b'x' is not allowed"),
    ("unknown_variable > 1", "unknown name 'unknown_variable'"),
    ("confidence >", "not a valid expression"),
    ("x := 1", "not a valid expression"),
    ("", "empty condition"),
    ("{'a': 1}", "'Dict' is not allowed"),
    ("confidence if confidence else 0", "'IfExp' is not allowed"),
]


@pytest.mark.parametrize("condition, expected", BAD_CONDITIONS)
def test_unsafe_or_bad_conditions_are_one_line_errors(condition, expected):
    with pytest.raises(XAIError) as info:
        parse_rules(rule_doc(condition=condition), "bad.yaml")
    text = str(info.value)
    assert expected in text and "'r'" in text and "\n" not in text and "Fix:" in text


BAD_FILES = [
    (rule_doc(source=""), "does not say where its threshold comes from"),
    (rule_doc(severity="fatal"), "unknown severity 'fatal'"),
    (rule_doc(action="delete"), "unknown action 'delete'"),
    (rule_doc(extra=1), "unknown key 'extra'"),
    (rule_doc(name="two words"), "not a plain identifier"),
    (rule_doc(message="{confidence.__class__}"), "placeholder"),
    (rule_doc(message="{nope}"), "placeholder '{nope}'"),
    (rule_doc(message="{confidence:.2f}"), "placeholder"),
    (rule_doc(message="{confidence"), "malformed"),
    ({"version": 2, "rules": rule_doc()["rules"]}, "unsupported rules version 2"),
    ({"version": 1, "rules": []}, "has no list of rules"),
    ({"version": 1, "constants": {"confidence": 1}, "rules": rule_doc()["rules"]}, "hides a variable"),
    ({"version": 1, "rules": rule_doc()["rules"] * 2}, "declared twice"),
]


@pytest.mark.parametrize("doc, expected", BAD_FILES, ids=[e for _, e in BAD_FILES])
def test_bad_rule_files_are_one_line_errors(doc, expected):
    with pytest.raises(XAIError) as info:
        parse_rules(doc, "bad.yaml")
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_missing_key_and_files(tmp_path):
    doc = rule_doc()
    del doc["rules"][0]["severity"]
    with pytest.raises(XAIError, match="lacks 'severity'"):
        parse_rules(doc)
    with pytest.raises(XAIError, match="rules file not found"):
        load_rules(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n  - name: a\n", encoding="utf-8")
    with pytest.raises(XAIError, match="not valid YAML"):
        load_rules(bad)


def test_a_user_rules_file_with_constants(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "constants": {"watched": ["white matter", "csf"]},
                "rules": [
                    {
                        "name": "watched_share",
                        "condition": "share_in(watched) > 0.63",
                        "severity": "info",
                        "action": "none",
                        "message": "watched structures hold much of it (top {top_structure})",
                        "source": "a test: 60% white matter + 4% csf = 64%",
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    (result,) = evaluate_rules(load_rules(path), clean_facts())
    assert result.fired and result.message == "watched structures hold much of it (top white matter)"
    (result,) = evaluate_rules(load_rules(path), just_short(result.rule))
    assert result.fired  # no threshold-specific change for this rule: the clean case itself


@pytest.mark.parametrize(
    "condition", ["predicted_class > 1", "share_in(5) > 0.1", "cannot_hold['tumour'] == 1"]
)
def test_conditions_that_fail_on_the_facts_are_one_line_errors(condition):
    rules = parse_rules({"version": 1, "constants": {"cannot_hold": {"lesion": ["csf"]}},
                         "rules": rule_doc(condition=condition)["rules"]})  # fmt: skip
    with pytest.raises(XAIError, match="cannot be evaluated") as info:
        evaluate_rules(rules, clean_facts())
    assert "\n" not in str(info.value)
