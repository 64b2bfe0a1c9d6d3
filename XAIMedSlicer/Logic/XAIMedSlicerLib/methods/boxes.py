"""Boxes: axis-aligned index ranges ``((lo, hi), ...)`` per spatial axis, half-open, in voxels.

The one box type of occlusion and of its fast runners (layouts, per-layer, prefix split, tail crop).
"""

from __future__ import annotations

import torch

Box = tuple[tuple[int, int], ...]


def union(boxes: list[Box]) -> Box:
    """The smallest box holding every box of ``boxes`` (not empty)."""
    return tuple((min(b[d][0] for b in boxes), max(b[d][1] for b in boxes)) for d in range(len(boxes[0])))


def clip(box: Box, sizes) -> Box:
    """``box`` cut to ``[0, size)`` along each axis."""
    return tuple((max(a, 0), min(b, n)) for (a, b), n in zip(box, sizes, strict=True))


def mask_box(mask, shape: tuple[int, ...]) -> Box | None:
    """Bounding box of a boolean mask of ``shape``; ``None`` when it is not such a mask or empty."""
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != shape or not bool(mask.any()):
        return None
    idx = torch.nonzero(mask)
    return tuple((int(idx[:, d].min()), int(idx[:, d].max()) + 1) for d in range(len(shape)))


def slices(box: Box) -> tuple[slice, ...]:
    """The box as index slices."""
    return tuple(slice(a, b) for a, b in box)
