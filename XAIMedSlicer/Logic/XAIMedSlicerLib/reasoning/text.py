"""The explanation in words: one deterministic sentence per fact, and the parser that reads it back.

Every line of ``explanation.txt`` is one sentence made from exactly one fact and ends with that
fact's reference, e.g. ``... lies in the white matter (SNOMED CT 389080008 White Matter) ... [S1]``.
Structure names are the label names as given, with the SNOMED CT concept of the segment terminology
(``scene.terminology``) where one is known and the side taken from the name; positions are RAS mm,
volumes mL (areas cm² on a radiograph), and shares percent of the map's positive attribution. :func:`parse_text` turns the text
back into the facts, and ``Testing/test_reasoning_text.py`` requires them to equal the input.
"""

from __future__ import annotations

import re

from ..errors import XAIError
from .facts import (
    PERCENT,
    SCORE,
    VALUE,
    CheckFact,
    DecisionFact,
    LateralityFact,
    MaskingFact,
    OtherStructuresFact,
    OutsideFact,
    PredictionFact,
    RuleFact,
    StructureFact,
)

_DECISION = {
    "keep": "Decision: keep the network's prediction *{c}*",
    "downgrade": "Decision: report the network's prediction *{c}* as unconfirmed",
    "abstain": "Decision: withhold the network's prediction *{c}*",
}


def _f(value: float, spec: str) -> str:
    return format(value, spec)


def sentence(fact) -> str:
    """The one sentence of ``fact``, ending with ``[ref]``."""
    return f"{_body(fact)} [{fact.ref}]"


def _body(fact) -> str:
    if isinstance(fact, PredictionFact):
        if fact.task == "classification":
            return (
                f"The network predicts *{fact.predicted_class}* with a probability of "
                f"{_f(fact.confidence_percent, PERCENT)}%; the map explains *{fact.target_class}*."
            )
        return f"The network's {fact.task} of *{fact.target_class}* is explained by the map."
    if isinstance(fact, StructureFact):
        lead = "A share of"
        if fact.rank == 1:
            lead = "Most of" if fact.share_percent > 50.0 else "The largest share of"
        terms = ([f"SNOMED CT {fact.snomed_code} {fact.snomed_meaning}"] if fact.snomed_code else []) + (
            [fact.side] if fact.side else []
        )
        term = f"{', '.join(terms)}; " if terms else ""
        r, a, s = (_f(v, ".1f") for v in fact.peak_ras)
        size = (
            f"{_f(fact.volume_ml, VALUE)} mL"
            if fact.volume_ml is not None
            else f"{_f(fact.area_cm2, VALUE)} cm² in the image plane"
        )
        return (
            f"{lead} the evidence for *{fact.evidence_for}* ({_f(fact.share_percent, PERCENT)}%) lies in "
            f"the {fact.name} ({term}{size}; mean attribution {_f(fact.mean, VALUE)}, "
            f"peak {_f(fact.peak, VALUE)} at R {r}, A {a}, S {s} mm; label {fact.label})."
        )
    if isinstance(fact, OtherStructuresFact):
        return (
            f"The other {fact.count} labelled structures hold {_f(fact.share_percent, PERCENT)}% "
            "of the evidence."
        )
    if isinstance(fact, OutsideFact):
        if not fact.labelled:
            return "No anatomical label map was given, so the evidence is not placed in named structures."
        return f"{_f(fact.share_percent, PERCENT)}% of the evidence lies outside the labelled anatomy."
    if isinstance(fact, LateralityFact):
        return (
            f"Of the evidence, {_f(fact.left_percent, PERCENT)}% lies left and "
            f"{_f(fact.right_percent, PERCENT)}% right of the midline of the {fact.basis} "
            f"(R = {_f(fact.midline_r_mm, '.1f')} mm)."
        )
    if isinstance(fact, CheckFact):
        if fact.status == "not checked":
            return f"The {fact.check} check was not run."
        if fact.check == "randomisation":
            return (
                f"The map {fact.status} the randomisation check (mean Spearman {_f(fact.value, SCORE)}, "
                f"threshold {_f(fact.reference, SCORE)})."
            )
        return (
            f"The map {fact.status} the deletion check (normalised deletion AUC {_f(fact.value, SCORE)} "
            f"against {_f(fact.reference, SCORE)} for a random order)."
        )
    if isinstance(fact, MaskingFact):
        if fact.status != "checked":
            verb = "was not run" if fact.status == "not checked" else "does not apply"
            return f"The anatomy-masking check for *{fact.predicted_class}* {verb} ({fact.reason})."
        return (
            f"With the labelled anatomy masked out, the network gives *{fact.predicted_class}* a probability "
            f"of {_f(fact.masked_percent, PERCENT)}% and predicts *{fact.masked_class}*."
        )
    if isinstance(fact, RuleFact):
        return f"Rule {fact.rule} ({fact.severity}, action {fact.action}): {fact.message}"
    if isinstance(fact, DecisionFact):
        text = _DECISION[fact.decision].format(c=fact.network_class)
        if fact.changed_by:
            text += f" (changed by {', '.join(fact.changed_by)})"
        return text + "."
    raise XAIError(f"no sentence for a fact of type {type(fact).__name__}", "report this as a bug")


def render_text(facts) -> str:
    """The whole text: one line per fact, in the facts' order."""
    return "".join(sentence(f) + "\n" for f in facts)


_NUM = r"-?[0-9.]+(?:e[-+]?\d+)?"
_PATTERNS = [
    (
        "prediction",
        rf"The network predicts \*(?P<p>.+?)\* with a probability of (?P<c>{_NUM})%; "
        r"the map explains \*(?P<t>.+?)\*\.",
    ),
    ("prediction_seg", r"The network's (?P<task>\w+) of \*(?P<t>.+?)\* is explained by the map\."),
    (
        "structure",
        rf"(?:Most of|The largest share of|A share of) the evidence for \*(?P<for>.+?)\* \((?P<share>{_NUM})%\) "
        rf"lies in the (?P<name>.+?) \((?:(?P<terms>[^;()]*); )?(?:(?P<vol>{_NUM}) mL|(?P<area>{_NUM}) cm² in the image plane); mean attribution "
        rf"(?P<mean>{_NUM}), peak (?P<peak>{_NUM}) at R (?P<r>{_NUM}), A (?P<a>{_NUM}), S (?P<s>{_NUM}) mm; "
        r"label (?P<label>-?\d+)\)\.",
    ),
    ("other", rf"The other (?P<n>\d+) labelled structures hold (?P<share>{_NUM})% of the evidence\."),
    ("unlabelled", r"No anatomical label map was given, so the evidence is not placed in named structures\."),
    ("outside", rf"(?P<share>{_NUM})% of the evidence lies outside the labelled anatomy\."),
    (
        "laterality",
        rf"Of the evidence, (?P<l>{_NUM})% lies left and (?P<r>{_NUM})% right of the midline of the "
        rf"(?P<basis>labelled anatomy|image) \(R = (?P<m>{_NUM}) mm\)\.",
    ),
    ("unchecked", r"The (?P<check>randomisation|deletion) check was not run\."),
    (
        "randomisation",
        rf"The map (?P<status>passed|failed) the randomisation check \(mean Spearman (?P<v>{_NUM}), "
        rf"threshold (?P<t>{_NUM})\)\.",
    ),
    (
        "deletion",
        rf"The map (?P<status>passed|failed) the deletion check \(normalised deletion AUC (?P<v>{_NUM}) "
        rf"against (?P<t>{_NUM}) for a random order\)\.",
    ),
    (
        "masking_off",
        r"The anatomy-masking check for \*(?P<p>.+?)\* (?P<status>was not run|does not apply) "
        r"\((?P<reason>.*)\)\.",
    ),
    (
        "masking",
        rf"With the labelled anatomy masked out, the network gives \*(?P<p>.+?)\* a probability of "
        rf"(?P<v>{_NUM})% and predicts \*(?P<c>.+?)\*\.",
    ),
    ("rule", r"Rule (?P<rule>\w+) \((?P<sev>\w+), action (?P<act>\w+)\): (?P<msg>.*)"),
    (
        "decision",
        r"Decision: (?P<d>keep the network's prediction|report the network's prediction|withhold the "
        r"network's prediction) \*(?P<c>.+?)\*(?P<unc> as unconfirmed)?(?: \(changed by (?P<by>[\w, ]+)\))?\.",
    ),
]
_COMPILED = [(kind, re.compile(f"^{pattern} \\[(?P<ref>[A-Z]+\\d+)\\]$")) for kind, pattern in _PATTERNS]


def parse_text(text: str) -> tuple:
    """The facts stated by a text written by :func:`render_text` (one sentence per line)."""
    facts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        for kind, pattern in _COMPILED:
            match = pattern.match(line)
            if match:
                facts.append(_fact(kind, match))
                break
        else:
            raise XAIError(f"line {number} of the explanation text is not a known sentence", "regenerate it")
    return tuple(facts)


def _fact(kind: str, m: re.Match):
    g, ref = m.groupdict(), m.group("ref")
    if kind == "prediction":
        return PredictionFact(ref, "classification", g["p"], g["t"], float(g["c"]))
    if kind == "prediction_seg":
        return PredictionFact(ref, g["task"], g["t"], g["t"], None)
    if kind == "structure":
        code = meaning = side = None
        for term in (g["terms"] or "").split(", "):
            if term in ("left", "right"):
                side = term
            elif term.startswith("SNOMED CT "):
                code, meaning = term[len("SNOMED CT ") :].split(" ", 1)
        return StructureFact(
            ref, int(ref[1:]), g["for"], int(g["label"]), g["name"], float(g["share"]), float(g["mean"]),
            float(g["peak"]), (float(g["r"]), float(g["a"]), float(g["s"])),
            None if g["vol"] is None else float(g["vol"]), code, meaning, side,
            None if g["area"] is None else float(g["area"]),
        )  # fmt: skip
    if kind == "other":
        return OtherStructuresFact(ref, int(g["n"]), float(g["share"]))
    if kind == "unlabelled":
        return OutsideFact(ref, False, None)
    if kind == "outside":
        return OutsideFact(ref, True, float(g["share"]))
    if kind == "laterality":
        return LateralityFact(ref, float(g["l"]), float(g["r"]), float(g["m"]), g["basis"])
    if kind == "unchecked":
        return CheckFact(ref, g["check"], "not checked", None, None)
    if kind in ("randomisation", "deletion"):
        return CheckFact(ref, kind, g["status"], float(g["v"]), float(g["t"]))
    if kind == "masking_off":
        status = "not checked" if g["status"] == "was not run" else "not applicable"
        return MaskingFact(ref, status, g["p"], None, None, g["reason"])
    if kind == "masking":
        return MaskingFact(ref, "checked", g["p"], float(g["v"]), g["c"])
    if kind == "rule":
        return RuleFact(ref, g["rule"], g["sev"], g["act"], g["msg"])
    decision = {"keep": "keep", "report": "downgrade", "withhold": "abstain"}[g["d"].split()[0]]
    by = tuple(g["by"].split(", ")) if g["by"] else ()
    return DecisionFact(ref, decision, g["c"], None if decision == "abstain" else g["c"], by)
