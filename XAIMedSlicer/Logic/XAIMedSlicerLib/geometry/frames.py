"""The one place where LPS (ITK, DICOM, NRRD files) and RAS (Slicer, MONAI affines) meet.

LPS and RAS differ by a flip of the first two world axes: ``ras = diag(-1, -1, 1) @ lps``.
"""

from __future__ import annotations

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def lps_to_ras_points(points: np.ndarray) -> np.ndarray:
    """Convert points (..., 3) from LPS to RAS millimetres (the flip is its own inverse)."""
    return np.asarray(points, dtype=float) * np.array([-1.0, -1.0, 1.0])


ras_to_lps_points = lps_to_ras_points


def lps_to_ras_affine(affine: np.ndarray) -> np.ndarray:
    """Convert a 4x4 index-to-LPS matrix into index-to-RAS (or back: it is an involution)."""
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ np.asarray(affine, dtype=float)


ras_to_lps_affine = lps_to_ras_affine
