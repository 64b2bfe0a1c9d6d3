"""How far a reader's disagreement regions and an attribution map agree.

* ``irrelevant_mass_share``: share of the map's attribution mass inside the regions marked "model relies
  on an irrelevant region" (high: the reader is right that the model looks there);
* ``missed_share``: share of the voxels marked "model misses a relevant region" that lie outside the
  map's top-k% region (high: the map indeed misses them); ``missed_mass_share`` is their mass share;
* ``dice_<category>``: Dice overlap of the top-k% region with each category's regions.

Mass is the positive part of the map (``mass="positive"``, signed maps) or its absolute value.
The map is resampled (linear) onto the annotation's grid when the grids differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import XAIError
from ..geometry.resample import resample_to
from ..geometry.volume import Volume
from ..metrics.localisation import top_k_region
from ..metrics.results import JSONResult
from .annotation import DisagreementAnnotation


@dataclass
class SegmentAgreement(JSONResult):
    """Agreement of one segment with the map."""

    label: int
    category: str
    voxels: int
    mass_share: float
    top_k_coverage: float  # share of the segment inside the top-k% region
    dice: float


@dataclass
class AgreementResult(JSONResult):
    """Agreement between one annotation and one attribution map."""

    case_id: str
    reader: str
    method: str
    k_percent: float
    mass: str
    irrelevant_mass_share: float
    missed_share: float
    missed_mass_share: float
    dice_irrelevant: float
    dice_missed: float
    dice_agree: float
    segments: list[SegmentAgreement] = field(default_factory=list)


def attribution_mass(values: np.ndarray, mass: str) -> np.ndarray:
    """Non-negative mass per voxel: the positive part or the absolute value."""
    if mass == "positive":
        return np.clip(values, 0, None)
    if mass == "absolute":
        return np.abs(values)
    raise XAIError(f"unknown mass '{mass}'", "use 'positive' or 'absolute'")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2.0 * (a & b).sum() / total) if total else float("nan")


def agreement(
    annotation: DisagreementAnnotation, attribution: Volume, *, k_percent: float = 5.0, mass: str = "positive"
) -> AgreementResult:
    """Agreement metrics between ``annotation`` and ``attribution`` (a Volume in physical space)."""
    if not isinstance(attribution, Volume):
        raise XAIError("the attribution must be a Volume with its geometry", "pass Explanation.attribution")
    if not attribution.same_grid(annotation.labels):
        attribution = resample_to(attribution, annotation.labels, "linear")
    values = np.asarray(attribution.array, np.float64)
    if not np.all(np.isfinite(values)):
        raise XAIError("the attribution map contains NaN or Inf values", "recompute the attribution")
    m = attribution_mass(values, mass)
    total = m.sum()
    if total <= 0:
        raise XAIError("the attribution map has no positive mass", "use mass='absolute' for a negative map")
    ranked = np.abs(values) if mass == "absolute" else values
    top = top_k_region(ranked, k_percent)

    def share(region: np.ndarray) -> float:
        return float(m[region].sum() / total) if region.any() else float("nan")

    irrelevant, missed, agree = (annotation.mask(c) for c in ("irrelevant", "missed", "agree"))
    segments = []
    for seg in sorted(annotation.segments, key=lambda s: s.label):
        region = annotation.mask(label=seg.label)
        n = int(region.sum())
        segments.append(
            SegmentAgreement(
                label=seg.label,
                category=seg.category,
                voxels=n,
                mass_share=share(region),
                top_k_coverage=float((region & top).sum() / n) if n else float("nan"),
                dice=_dice(region, top),
            )
        )
    p = annotation.provenance
    return AgreementResult(
        case_id=p.case_id,
        reader=p.reader,
        method=p.method,
        k_percent=float(k_percent),
        mass=mass,
        irrelevant_mass_share=share(irrelevant),
        missed_share=float((missed & ~top).sum() / missed.sum()) if missed.any() else float("nan"),
        missed_mass_share=share(missed),
        dice_irrelevant=_dice(irrelevant, top) if irrelevant.any() else float("nan"),
        dice_missed=_dice(missed, top) if missed.any() else float("nan"),
        dice_agree=_dice(agree, top) if agree.any() else float("nan"),
        segments=segments,
    )
