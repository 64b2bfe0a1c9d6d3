"""Thin (one screen pixel) structure outlines for figures, sampled from the label map per pixel.

MRML's label outline is one label voxel wide, which at figure zoom is several pixels and drowns the scan.
Here each figure pixel looks up its label (nearest voxel, through the view's XYToRAS), and only pixels
whose label differs from a 4-neighbour's, for the chosen labels, are painted in the structure's colour.
"""

from __future__ import annotations

import numpy as np

from ..geometry.volume import Volume


def label_image(labels: Volume, xy_to_ras: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols) label value under each pixel of a slice image (top row first); 0 outside the volume."""
    rows, cols = shape
    col, row = np.meshgrid(np.arange(cols, dtype=float), np.arange(rows, dtype=float))
    xy = np.stack([col.ravel(), rows - 1 - row.ravel(), np.zeros(col.size), np.ones(col.size)])
    ijk = np.rint((np.linalg.inv(labels.ijk_to_ras()) @ (xy_to_ras @ xy))[:3]).astype(np.int64)
    ni, nj, nk = labels.size
    inside = (ijk[0] >= 0) & (ijk[0] < ni) & (ijk[1] >= 0) & (ijk[1] < nj) & (ijk[2] >= 0) & (ijk[2] < nk)
    out = np.zeros(col.size, dtype=np.int64)
    i, j, k = (a[inside] for a in ijk)
    out[inside] = np.asarray(labels.array)[k, j, i]
    return out.reshape(rows, cols)


def boundary(values: np.ndarray, label: int) -> np.ndarray:
    """Pixels of ``label`` with a 4-neighbour of another value (the region's own edge, one pixel)."""
    region = values == label
    padded = np.pad(region, 1, mode="edge")
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return region & ~interior


def draw_outlines(
    rgb: np.ndarray, values: np.ndarray, colours: dict[int, tuple[int, int, int]]
) -> np.ndarray:
    """A copy of ``rgb`` with the one-pixel edge of each label in ``colours`` painted in its colour."""
    out = rgb.copy()
    for label, colour in colours.items():
        out[boundary(values, int(label))] = colour
    return out
