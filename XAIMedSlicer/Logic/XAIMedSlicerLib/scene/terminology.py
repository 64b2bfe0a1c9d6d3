"""SNOMED CT terminology tags for segments, from structure names.

``terminology_entry(name)`` looks a structure name up in ``snomed_table`` (TotalSegmentator, MeshNet and
FreeSurfer spellings; ``left``/``right``/``lh``/``rh`` become the laterality modifier). Names that the
table does not cover get the generic type "Anatomical Structure" (SCT 91723000) under the category
"Anatomical Structure" (SCT 123037004, the category Slicer's and TotalSegmentator's terminologies use),
and ``generic`` is True in the returned entry, so nothing is labelled with a code it does not have.
"""

from __future__ import annotations

import re

from . import snomed_table as table

CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
_SIDES = {"left": table.LEFT, "lh": table.LEFT, "right": table.RIGHT, "rh": table.RIGHT}


def normalise(name: str) -> tuple[str, tuple[str, str] | None]:
    """(table key, side code or None) of a structure name such as ``Left-Thalamus`` or ``rib_left_3``."""
    tokens = [t for t in re.split(r"[^0-9a-z]+", name.strip().lower()) if t]
    side = None
    kept = []
    for token in tokens:
        if token in _SIDES and side is None:
            side = _SIDES[token]
        else:
            kept.append(token)
    return "_".join(kept), side


def _lookup(key: str) -> str | None:
    candidates = [key, table.ALIASES.get(key, "")]
    stripped = re.sub(r"(_\d+)+$", "", key)  # rib_3 -> rib
    candidates += [stripped, table.ALIASES.get(stripped, "")]
    first = key.split("_", 1)[0]
    candidates.append(table.PREFIXES.get(first, ""))
    for candidate in candidates:
        if candidate and (candidate in table.STRUCTURES or candidate in table.ALTERED):
            return candidate
    return None


def terminology_entry(name: str) -> dict:
    """SNOMED CT codes of a structure: ``category``, ``type``, ``modifier``, ``region``,
    ``region_modifier`` (each ``(code, meaning)`` or None) and ``generic`` (True for the fallback)."""
    key, side = normalise(name)
    found = _lookup(key)
    entry = {"category": table.BODY_STRUCTURE, "type": table.ANATOMICAL_STRUCTURE, "modifier": None}
    entry.update({"region": None, "region_modifier": None, "generic": found is None})
    if found in table.ALTERED:
        kind, region = table.ALTERED[found]
        entry.update(category=table.ALTERED_STRUCTURE, type=kind, region=region, region_modifier=side)
    elif found is not None:
        code = table.STRUCTURES[found]
        inherent = any(word in code[1].lower() for word in ("left", "right"))
        entry.update(type=code, modifier=None if inherent else side)
    return entry


def terminology_string(name: str) -> str:
    """Slicer's serialised terminology entry (``vtkSegment.SetTerminology``) for a structure name."""
    import slicer

    codes = terminology_entry(name)
    entry = slicer.vtkSlicerTerminologyEntry()
    entry.SetTerminologyContextName(CONTEXT)
    for getter, key in (
        (entry.GetCategoryObject, "category"),
        (entry.GetTypeObject, "type"),
        (entry.GetTypeModifierObject, "modifier"),
        (entry.GetRegionObject, "region"),
        (entry.GetRegionModifierObject, "region_modifier"),
    ):
        if codes[key] is not None:
            value, meaning = codes[key]
            obj = getter()
            obj.SetCodingSchemeDesignator("SCT")
            obj.SetCodeValue(value)
            obj.SetCodeMeaning(meaning)
    if codes["region"] is not None:
        entry.SetRegionContextName(ANATOMIC_CONTEXT)
    return slicer.vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry(entry)


def set_segment_terminology(segment, name: str) -> str:
    """Tag ``segment`` with the SNOMED CT terminology of ``name``; returns the serialised entry."""
    text = terminology_string(name)
    segment.SetTerminology(text)
    return text


def parse_terminology(text: str) -> dict:
    """The codes of a serialised terminology entry: {"category"|"type"|...: (scheme, code, meaning)}."""
    import slicer

    entry = slicer.vtkSlicerTerminologyEntry()
    if not slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(text, entry):
        return {}
    out = {}
    for key, obj in (
        ("category", entry.GetCategoryObject()),
        ("type", entry.GetTypeObject()),
        ("modifier", entry.GetTypeModifierObject()),
        ("region", entry.GetRegionObject()),
        ("region_modifier", entry.GetRegionModifierObject()),
    ):
        if obj.GetCodeValue():
            out[key] = (obj.GetCodingSchemeDesignator(), obj.GetCodeValue(), obj.GetCodeMeaning())
    return out
