"""One-line verdicts shown next to each map: sanity and faithfulness, and whether the map is trustworthy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .faithfulness import FaithfulnessResult
from .randomisation import RandomisationResult
from .results import JSONResult


@dataclass
class MapFlags(JSONResult):
    """What the module shows beside a map: a short text and which checks failed."""

    text: str
    trustworthy: bool
    failed: list[str] = field(default_factory=list)


def map_flags(
    randomisation: RandomisationResult | None = None, faithfulness: FaithfulnessResult | None = None
) -> MapFlags:
    """E.g. 'passes randomisation check; deletion AUC 0.21 against 0.48 random'.

    A map from a method that fails the randomisation check, or whose deletion curve does not fall
    faster than a random order's, is marked as failing.
    """
    parts, failed = [], []
    if randomisation is not None:
        if randomisation.passed:
            parts.append("passes randomisation check")
        else:
            parts.append(f"FAILS randomisation check (mean Spearman {randomisation.mean_spearman:.2f})")
            failed.append("randomisation")
    if faithfulness is not None:
        d, r = faithfulness.deletion.normalised_auc, faithfulness.deletion_random.normalised_auc
        if math.isnan(d) or math.isnan(r):
            parts.append("deletion not measurable (removing the input barely changes the score)")
        else:
            parts.append(f"deletion AUC {d:.2f} against {r:.2f} random")
            if not d < r:
                failed.append("deletion")
    if not parts:
        return MapFlags(text="not checked", trustworthy=False, failed=["unchecked"])
    text = "; ".join(parts)
    if failed:
        text += " - not trustworthy"
    return MapFlags(text=text, trustworthy=not failed, failed=failed)
