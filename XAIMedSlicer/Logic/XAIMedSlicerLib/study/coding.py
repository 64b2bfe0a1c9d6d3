"""The XAIMED coding scheme: coded categories of a reader's disagreement with an attribution map.

DICOM reserves coding scheme designators that begin with ``99`` for private schemes (PS3.3 8.1), so
the designator is ``99XAIMED``. Every disagreement segment carries a category code (what kind of
finding it is) and a type code (which finding), as Slicer terminology entries and as DICOM SEG
``SegmentedPropertyCategory/TypeCodeSequence``. The table is documented in ``study/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import XAIError

SCHEME = "99XAIMED"
SCHEME_NAME = "XAIMedSlicer explanation review codes"
SCHEME_VERSION = "1.0"
CONTEXT_NAME = "XAIMedSlicer disagreement"


@dataclass(frozen=True)
class Code:
    """A coded concept: scheme designator, code value and meaning (DICOM's three parts)."""

    scheme: str
    value: str
    meaning: str

    def slicer(self) -> str:
        """``scheme^value^meaning``, as Slicer's terminology entry strings write a code."""
        return f"{self.scheme}^{self.value}^{self.meaning}"

    def as_dict(self) -> dict:
        return {"CodingSchemeDesignator": self.scheme, "CodeValue": self.value, "CodeMeaning": self.meaning}


@dataclass(frozen=True)
class Category:
    """One disagreement category: its short key, type code, default name and display colour (RGB 0-255)."""

    key: str
    code: Code
    name: str
    color: tuple[int, int, int]


FINDING = Code(SCHEME, "XM1000", "Explanation review finding")
CATEGORIES: dict[str, Category] = {
    "irrelevant": Category(
        "irrelevant",
        Code(SCHEME, "XM1001", "Model relies on an irrelevant region"),
        "Irrelevant region used",
        (230, 57, 70),
    ),
    "missed": Category(
        "missed",
        Code(SCHEME, "XM1002", "Model misses a relevant region"),
        "Relevant region missed",
        (69, 123, 230),
    ),
    "agree": Category("agree", Code(SCHEME, "XM1003", "Agree"), "Agree", (42, 170, 90)),
}


def category(key: str) -> Category:
    """Look up a category by key (``irrelevant``, ``missed``, ``agree``) or by code value."""
    for cat in CATEGORIES.values():
        if key in (cat.key, cat.code.value):
            return cat
    raise XAIError(f"unknown disagreement category '{key}'", f"use one of {', '.join(CATEGORIES)}")


def terminology_entry(key: str) -> str:
    """Slicer's ``TerminologyEntry`` tag value for a category (context~category~type~modifier~anatomy...)."""
    cat = category(key)
    return (
        f"{CONTEXT_NAME}~{FINDING.slicer()}~{cat.code.slicer()}~^^~Anatomic codes - DICOM master list~^^~^^"
    )


def parse_terminology_entry(entry: str) -> Category:
    """The category named by a terminology entry string (its type code value)."""
    parts = entry.split("~")
    if len(parts) < 3 or parts[2].count("^") < 2:
        raise XAIError(f"not a terminology entry: {entry[:80]}", "segments need an XAIMED terminology tag")
    scheme, value, _meaning = parts[2].split("^", 2)
    if scheme != SCHEME:
        raise XAIError(
            f"segment type code is from scheme '{scheme}', not {SCHEME}", "use XAIMED disagreement codes"
        )
    return category(value)


def terminology_context() -> dict:
    """A Slicer terminology context (``*.term.json`` content) listing the XAIMED categories."""
    types = [
        {
            "CodingSchemeDesignator": c.code.scheme,
            "CodeValue": c.code.value,
            "CodeMeaning": c.code.meaning,
            "recommendedDisplayRGBValue": list(c.color),
            "contextGroupName": CONTEXT_NAME,
        }
        for c in CATEGORIES.values()
    ]
    return {
        "SegmentationCategoryTypeContextName": CONTEXT_NAME,
        "@schema": "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/schemas/segment-context-schema.json#",
        "SegmentationCodes": {"Category": [{**FINDING.as_dict(), "showAnatomy": "false", "Type": types}]},
    }
