"""Geometry of a figure's slice view: the body's bounding box, framing on it, and orientation letters.

Letters come from the slice node's own SliceToRAS (screen x to the right, screen y up), so they are right
for any input orientation (LPS, LIA, oblique): the screen's left edge shows the patient direction of
``-x``. Nothing here hard-codes a convention.
"""

from __future__ import annotations

import numpy as np

from ..geometry.volume import Volume

# +R, +A, +S and their opposites, as (letter of the positive direction, letter of the negative one)
_AXIS_LETTERS = (("R", "L"), ("A", "P"), ("S", "I"))


def direction_letters(ras_direction, minor: float = 0.3) -> str:
    """Patient direction letters of a RAS vector: the dominant axis first, others above ``minor``.

    (-1, 0, 0) -> "L"; (0.8, 0.6, 0) -> "RA" (oblique).
    """
    d = np.asarray(ras_direction, dtype=float)
    d = d / max(float(np.linalg.norm(d)), 1e-12)
    order = np.argsort(-np.abs(d))
    letters = []
    for axis in order:
        if axis == order[0] or abs(d[axis]) >= minor:
            letters.append(_AXIS_LETTERS[axis][0 if d[axis] > 0 else 1])
    return "".join(letters)


def slice_rotation(slice_node) -> np.ndarray:
    """3x3 rotation of a slice node: columns are screen x, screen y and the normal, in RAS."""
    matrix = slice_node.GetSliceToRAS()
    return np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])


def view_letters(slice_node) -> dict[str, str]:
    """{"left", "right", "top", "bottom"}: patient direction letters at the edges of a slice view."""
    rotation = slice_rotation(slice_node)
    x, y = rotation[:, 0], rotation[:, 1]
    return {
        "left": direction_letters(-x),
        "right": direction_letters(x),
        "top": direction_letters(y),
        "bottom": direction_letters(-y),
    }


def body_mask(image: Volume, labels: Volume | None = None, min_part: float = 0.05) -> np.ndarray:
    """Voxels of the body/brain [k, j, i]: above Otsu's threshold of the scan, or inside the labels.

    Connected parts holding less than ``min_part`` of the mask (noise specks, small bright artefacts in
    the air) are dropped so they do not stretch the figure's frame.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    values = np.asarray(image.array, dtype=np.float32)
    finite = values[np.isfinite(values)]
    mask = np.zeros(values.shape, bool)
    if finite.size and float(finite.max()) > float(finite.min()):
        sample = finite[:: max(1, finite.size // 200_000)]
        mask = values > threshold_otsu(sample)
        parts, count = ndimage.label(mask)
        if count > 1:
            sizes = np.bincount(parts.ravel())[1:]
            keep = np.flatnonzero(sizes >= min_part * sizes.sum()) + 1
            mask = np.isin(parts, keep)
    if labels is not None:
        mask |= np.asarray(labels.array) > 0
    if not mask.any():
        mask[...] = True
    return mask


def body_corners_ras(image: Volume, mask: np.ndarray, margin: float = 0.04) -> np.ndarray:
    """(8, 3) RAS corners of the bounding box of ``mask`` (voxel space), grown by ``margin`` of its size."""
    lo, hi = [], []
    for axis in range(3):  # array axes k, j, i
        other = tuple(a for a in range(3) if a != axis)
        present = np.nonzero(mask.any(axis=other))[0]
        pad = margin * (present[-1] - present[0] + 1)
        lo.append(present[0] - 0.5 - pad)
        hi.append(present[-1] + 0.5 + pad)
    (k0, j0, i0), (k1, j1, i1) = lo, hi
    corners = [(i, j, k) for i in (i0, i1) for j in (j0, j1) for k in (k0, k1)]
    return np.array([image.index_to_ras(c) for c in corners])


def is_oblique(image: Volume, tol: float = 1e-3) -> bool:
    """True when the grid's axes are not all along patient axes (a tilted acquisition)."""
    direction = np.abs(np.asarray(image.direction, dtype=float))
    return bool(np.any((direction > tol) & (direction < 1.0 - tol)))


def orient_view(slice_node, orientation: str, volume_node=None) -> None:
    """Set a view's standard orientation; with ``volume_node``, rotate it onto that volume's own planes.

    Slicer keeps the view's sense (axial: patient right on the screen's left, anterior up) and picks the
    volume axes nearest to it, so a flipped grid shows the same way and an oblique one is shown in its
    acquisition planes (letters such as "RA" then say so).
    """
    slice_node.SetOrientation(orientation)
    if volume_node is not None:
        slice_node.RotateToVolumePlane(volume_node)


def frame_on_box(slice_node, corners: np.ndarray, through: np.ndarray, size: int) -> None:
    """Pass the (already oriented) view's plane through ``through`` and fit the box ``corners`` in it.

    The view's centre is the box centre moved along the normal into the plane; the longer side of the
    image is ``size`` pixels, pixels are square.
    """
    rotation = slice_rotation(slice_node)
    normal = rotation[:, 2]
    box_center = corners.mean(axis=0)
    center = box_center + float(np.dot(np.asarray(through) - box_center, normal)) * normal
    in_plane = (corners - center) @ rotation
    half = np.maximum(np.abs(in_plane[:, :2]).max(axis=0), 1e-3)
    scale = size / (2.0 * half.max())
    width, height = (max(8, round(2.0 * h * scale)) for h in half)
    slice_node.SetDimensions(int(width), int(height), 1)
    slice_node.SetFieldOfView(width / scale, height / scale, float(np.abs(in_plane[:, 2]).max() * 2.0))
    slice_node.JumpSliceByCentering(*(float(v) for v in center))


def single_slice_view(image: Volume, views: dict) -> str | None:
    """For a one-slice volume (a radiograph), the layout name whose normal is nearest the thin axis."""
    size = image.size
    if min(size) != 1:
        return None
    thin = int(np.argmin(size))
    axis = image.ijk_to_ras()[:3, thin]
    axis = axis / np.linalg.norm(axis)
    normals = {"Axial": (0, 0, 1), "Coronal": (0, 1, 0), "Sagittal": (1, 0, 0)}
    best = max(views, key=lambda name: abs(float(np.dot(normals[views[name][0]], axis))))
    return best


def xy_to_ras_matrix(slice_node) -> np.ndarray:
    """4x4 XYToRAS of a slice node (pixel x right, y up from the bottom row)."""
    matrix = slice_node.GetXYToRAS()
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def ras_to_pixel(xy_to_ras: np.ndarray, ras, height: int) -> tuple[float, float]:
    """(row, column) of a RAS point in a slice image of ``height`` rows (top row first)."""
    x, y, _, _ = np.linalg.solve(xy_to_ras, np.append(np.asarray(ras, dtype=float), 1.0))
    return height - 1 - y, x
