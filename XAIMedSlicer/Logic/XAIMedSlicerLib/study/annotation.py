"""A reader's disagreement annotation: a label map on the case grid, coded segments and provenance.

One annotation belongs to one case, one reader and one attribution map (the map the reader judged).
It works without Slicer; the scene package can wrap it as a segmentation node.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import XAIError
from ..geometry.volume import Volume
from .coding import category

FORMAT = "xaimed-disagreement/1"


def utc_now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Provenance:
    """What the annotation refers to and who made it, when."""

    case_id: str
    reader: str
    method: str
    model_hash: str
    target: dict = field(default_factory=dict)
    attribution_ref: str = ""  # MRML node ID or file path of the judged attribution map
    blinded_label: str = ""  # reader-study mode: the label shown ("A"); ``method`` then stays empty
    created: str = field(default_factory=utc_now)
    software: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> Provenance:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass
class Segment:
    """One coded region: its value in the label map, category key, name, colour and free-text comment."""

    label: int
    category: str
    name: str = ""
    comment: str = ""
    color: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        cat = category(self.category)
        self.category = cat.key
        self.name = self.name or cat.name
        self.color = tuple(int(c) for c in (self.color or cat.color))
        if not 0 < int(self.label) < 256:
            raise XAIError(f"segment label {self.label} out of range", "use label values 1 to 255")
        self.label = int(self.label)


@dataclass
class DisagreementAnnotation:
    """Label map (uint8 ``Volume`` on the case image grid), segments and provenance, plus a comment."""

    labels: Volume
    segments: list[Segment]
    provenance: Provenance
    comment: str = ""

    @classmethod
    def empty(cls, reference: Volume, provenance: Provenance, comment: str = "") -> DisagreementAnnotation:
        """A blank annotation on the grid of ``reference`` (the case image)."""
        return cls(reference.with_array(np.zeros(reference.array.shape, np.uint8)), [], provenance, comment)

    def add(self, mask: np.ndarray, category_key: str, comment: str = "", name: str = "") -> Segment:
        """Paint ``mask`` (bool, array order [k, j, i]) as a new segment; it overwrites earlier segments there."""
        mask = np.asarray(mask, bool)
        if mask.shape != self.labels.array.shape:
            raise XAIError(
                f"mask shape {mask.shape} differs from the case grid {self.labels.array.shape}",
                "draw on the case image grid",
            )
        if not mask.any():
            raise XAIError("the drawn region is empty", "draw at least one voxel")
        label = max((s.label for s in self.segments), default=0) + 1
        segment = Segment(label, category_key, name=name, comment=comment)
        arr = self.labels.array.copy()
        arr[mask] = label
        self.labels = self.labels.with_array(arr)
        self.segments.append(segment)
        return segment

    def mask(self, category_key: str | None = None, label: int | None = None) -> np.ndarray:
        """Voxels of one segment (``label``), of every segment of a category, or of all segments."""
        if label is not None:
            return self.labels.array == label
        keys = [
            s.label for s in self.segments if category_key is None or s.category == category(category_key).key
        ]
        return np.isin(self.labels.array, keys)

    def validate(self) -> None:
        """Every non-zero label has a segment, and segment labels are unique."""
        labels = [s.label for s in self.segments]
        if len(set(labels)) != len(labels):
            raise XAIError("two segments share one label value", "give each segment its own label")
        present = set(np.unique(self.labels.array).tolist()) - {0}
        unknown = present - set(labels)
        if unknown:
            raise XAIError(
                f"label values {sorted(unknown)} have no segment description", "add segments for them"
            )

    def counts(self) -> dict[str, int]:
        """Number of segments per category."""
        out = {"irrelevant": 0, "missed": 0, "agree": 0}
        for s in self.segments:
            out[s.category] += 1
        return out

    def metadata(self) -> dict:
        """Everything but the voxels, as JSON-ready data."""
        return {
            "format": FORMAT,
            "provenance": asdict(self.provenance),
            "comment": self.comment,
            "segments": [asdict(s) for s in self.segments],
        }
