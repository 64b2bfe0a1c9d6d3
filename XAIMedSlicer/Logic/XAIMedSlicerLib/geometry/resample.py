"""Resampling between grids in physical space (SimpleITK), the only way grids are matched."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .sitk_bridge import from_sitk, to_sitk
from .volume import Volume

_INTERPOLATORS = {
    "nearest": sitk.sitkNearestNeighbor,
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
}


def resample_to(
    source: Volume, reference: Volume, interpolation: str = "linear", default: float = 0.0
) -> Volume:
    """Resample ``source`` onto the grid of ``reference`` in physical (LPS) space.

    ``interpolation`` is ``nearest`` (label maps) or ``linear`` (intensities, attributions).
    Points of the reference grid outside the source get ``default``.
    """
    if source.same_grid(reference, tol=1e-6):
        return reference.with_array(source.array.copy())
    src = to_sitk(
        source.with_array(source.array.astype(np.float32)) if interpolation != "nearest" else source
    )
    ref = to_sitk(reference.with_array(np.zeros(reference.array.shape, dtype=np.uint8)))
    out = sitk.Resample(
        src, ref, sitk.Transform(), _INTERPOLATORS[interpolation], float(default), src.GetPixelID()
    )
    return from_sitk(out)


def physical_overlap(a: Volume, b: Volume) -> float:
    """Fraction of ``a``'s voxel centres that fall inside ``b``'s grid."""
    k, j, i = np.meshgrid(*[np.linspace(0, n - 1, min(n, 16)) for n in a.array.shape], indexing="ij")
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)])
    lps = a.ijk_to_lps() @ ijk
    idx = np.linalg.inv(b.ijk_to_lps()) @ lps
    size = np.array(b.size)[:, None]
    inside = np.all((idx[:3] >= -0.5) & (idx[:3] <= size - 0.5), axis=0)
    return float(inside.mean())
