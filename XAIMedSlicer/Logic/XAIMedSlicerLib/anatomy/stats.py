"""Per-structure statistics of an attribution map inside a label map."""

from __future__ import annotations

import numpy as np

from ..errors import XAIError
from ..geometry.volume import Volume

STRUCTURE_COLUMNS = (
    "label",  # label value in the map
    "name",  # structure name
    "voxels",  # number of voxels
    "volume_ml",  # voxels x voxel volume, in mL
    "positive_sum",  # sum of max(attribution, 0) inside
    "positive_mean",  # positive_sum / voxels
    "positive_share",  # positive_sum / total positive attribution of the whole map
    "peak",  # highest attribution value inside
    "peak_r",  # RAS position (mm) of that peak
    "peak_a",
    "peak_s",
)


def structure_statistics(attribution: Volume, labels: Volume, names: dict[int, str]) -> list[dict]:
    """One row per non-zero label present in ``labels`` (which must share ``attribution``'s grid).

    Rows are sorted by decreasing ``positive_share``.
    """
    if not attribution.same_grid(labels):
        raise XAIError("label map and attribution are on different grids", "resample the labels first")
    values = attribution.array.astype(np.float64).ravel()
    lab = labels.array.ravel().astype(np.int64)
    positive = np.maximum(values, 0.0)
    total_positive = float(positive.sum())
    voxel_ml = float(np.prod(attribution.spacing)) / 1000.0

    present = np.unique(lab)
    present = present[present != 0]
    if present.size == 0:
        return []
    # one pass for counts and sums via bincount, then per-label peaks with a sort
    counts = np.bincount(lab - lab.min(), minlength=0)
    offset = lab.min()
    sums = np.bincount(lab - offset, weights=positive)
    order = np.lexsort((values, lab))  # by label, then value ascending
    sorted_lab = lab[order]
    last = np.searchsorted(sorted_lab, present, side="right") - 1
    peak_flat = order[last]

    rows = []
    shape = attribution.array.shape
    for value, flat in zip(present.tolist(), peak_flat.tolist(), strict=True):
        n = int(counts[value - offset])
        psum = float(sums[value - offset])
        k, j, i = np.unravel_index(flat, shape)
        r, a, s = attribution.index_to_ras((i, j, k))
        rows.append(
            {
                "label": int(value),
                "name": names.get(int(value), f"label {value}"),
                "voxels": n,
                "volume_ml": n * voxel_ml,
                "positive_sum": psum,
                "positive_mean": psum / n,
                "positive_share": psum / total_positive if total_positive > 0 else 0.0,
                "peak": float(values[flat]),
                "peak_r": float(r),
                "peak_a": float(a),
                "peak_s": float(s),
            }
        )
    rows.sort(key=lambda row: (-row["positive_share"], row["label"]))
    return rows
