"""Label maps and structure names: reading name tables and aligning label maps to a scan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import XAIError
from ..geometry.resample import physical_overlap, resample_to
from ..geometry.volume import Volume


def read_label_names(path: str | Path | None) -> dict[int, str]:
    """Label value -> name from JSON (``{"1": "liver"}``, a list, brainchop ``{"labels": [...]}``,
    TotalSegmentator ``{"total": {...}, "total_mr": {...}}``) or a colour table text file (``value name r g b a``)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.exists():
        raise XAIError(f"label names file not found: {path}", "check the --label-names path")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise XAIError(f"{path.name} is not valid JSON", "fix the label names file") from None
        return parse_label_names(data)
    names: dict[int, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1]
    if not names:
        raise XAIError(
            f"no label names found in {path.name}", 'use JSON {"1": "name"} or \'value name r g b a\' lines'
        )
    return names


def parse_label_names(data) -> dict[int, str]:
    """Normalise the accepted JSON shapes into ``{int: str}``."""
    if isinstance(data, dict) and "labels" in data and isinstance(data["labels"], list):
        data = data["labels"]
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        # several named label sets (TotalSegmentator's class map): the first, "total" by convention
        data = data.get("total", next(iter(data.values())))
    if isinstance(data, list):
        return {i: str(n) for i, n in enumerate(data) if i != 0}
    if isinstance(data, dict):
        try:
            return {int(k): str(v) for k, v in data.items() if int(k) != 0}
        except ValueError:
            raise XAIError(
                "label names must map integer label values to names", 'use {"1": "liver", ...}'
            ) from None
    raise XAIError("unrecognised label names format", 'use {"1": "liver", ...} or a list of names')


def align_labels(labels: Volume, reference: Volume) -> Volume:
    """The label map on ``reference``'s grid (nearest neighbour in physical space).

    Raises a one-line error when the two do not overlap in space.
    """
    if np.issubdtype(labels.array.dtype, np.floating):
        if not np.all(np.isfinite(labels.array)) or np.any(labels.array != np.round(labels.array)):
            raise XAIError("the label map holds non-integer values", "give an integer label map")
        labels = labels.with_array(labels.array.astype(np.int32))
    if labels.same_grid(reference):
        return labels
    if physical_overlap(reference, labels) == 0.0:
        raise XAIError(
            "the label map does not overlap the image in physical space",
            "check that both files belong to the same scan (origin and direction)",
        )
    return resample_to(labels, reference, "nearest", default=0)
