"""The hybrid decision: the network's prediction, kept, downgraded or withheld by the rules that fired.

Each fired rule's ``action`` moves the decision at most one way, towards caution: ``keep`` <
``downgrade`` (the class stands but is marked unconfirmed) < ``abstain`` (no class is given). The
trace records, for every fired rule with an action, the decision before and after it, so a reader sees
which rule changed what.
"""

from __future__ import annotations

from dataclasses import dataclass

from .facts import DecisionFact, PredictionFact, RuleFact
from .rules import RuleResult

LEVELS = ("keep", "downgrade", "abstain")
_BY_ACTION = {"none": "keep", "downgrade": "downgrade", "abstain": "abstain"}


@dataclass(frozen=True)
class TraceStep:
    rule: str
    action: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class Decision:
    network_class: str
    network_confidence_percent: float | None
    decision: str  # keep, downgrade or abstain
    final_class: str | None  # None when abstaining
    trace: tuple[TraceStep, ...]

    @property
    def changed_by(self) -> tuple[str, ...]:
        """The rules that changed the decision."""
        return tuple(step.rule for step in self.trace if step.changed)

    def to_dict(self) -> dict:
        return {
            "network_class": self.network_class,
            "network_confidence_percent": self.network_confidence_percent,
            "decision": self.decision,
            "final_class": self.final_class,
            "changed_by": list(self.changed_by),
            "trace": [{**step.__dict__, "changed": step.changed} for step in self.trace],
        }


def decide(prediction: PredictionFact, results: list[RuleResult]) -> Decision:
    """Combine the prediction with the fired rules (in rule-file order)."""
    level = "keep"
    trace = []
    for result in results:
        if not result.fired or result.rule.action == "none":
            continue
        wanted = _BY_ACTION[result.rule.action]
        after = max(level, wanted, key=LEVELS.index)
        trace.append(TraceStep(result.rule.name, result.rule.action, level, after))
        level = after
    return Decision(
        network_class=prediction.predicted_class,
        network_confidence_percent=prediction.confidence_percent,
        decision=level,
        final_class=None if level == "abstain" else prediction.predicted_class,
        trace=tuple(trace),
    )


def reasoning_facts(results: list[RuleResult], decision: Decision) -> tuple:
    """The fired rules and the decision as facts (``R1``..., ``D1``), for the text."""
    fired = [r for r in results if r.fired]
    facts = [
        RuleFact(f"R{n}", r.rule.name, r.rule.severity, r.rule.action, r.message)
        for n, r in enumerate(fired, start=1)
    ]
    facts.append(
        DecisionFact(
            "D1", decision.decision, decision.network_class, decision.final_class, decision.changed_by
        )
    )
    return tuple(facts)
