"""The Volume type: a 3D array that never travels without its spacing, origin and direction."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import XAIError
from .frames import lps_to_ras_affine


@dataclass(frozen=True)
class Volume:
    """A scalar volume in ITK's physical convention.

    ``array`` is indexed ``[k, j, i]`` (slice, row, column), as SimpleITK and Slicer's
    ``arrayFromVolume`` index it. ``spacing`` is (i, j, k) in mm; ``origin`` is the LPS position of
    voxel (0, 0, 0); ``direction`` is the 3x3 matrix whose columns are the LPS unit vectors of the
    i, j and k axes.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise XAIError(
                f"expected a 3D volume, got {arr.ndim}D data of shape {arr.shape}",
                "give a single 3D scalar volume (split 4D series and stack 2D slices first)",
            )
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or min(spacing) <= 0:
            raise XAIError(f"invalid voxel spacing {spacing}", "spacing must be three positive numbers in mm")
        direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        object.__setattr__(self, "direction", direction)

    # ---- grid -------------------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int, int]:
        """Number of voxels along (i, j, k)."""
        k, j, i = self.array.shape
        return (i, j, k)

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 matrix mapping (i, j, k, 1) to LPS millimetres."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def ijk_to_ras(self) -> np.ndarray:
        """4x4 matrix mapping (i, j, k, 1) to RAS millimetres (Slicer's IJKToRAS, MONAI's affine)."""
        return lps_to_ras_affine(self.ijk_to_lps())

    def index_to_ras(self, ijk) -> np.ndarray:
        """RAS position (mm) of a continuous index (i, j, k)."""
        p = np.append(np.asarray(ijk, dtype=float), 1.0)
        return (self.ijk_to_ras() @ p)[:3]

    def ras_to_index(self, ras) -> np.ndarray:
        """Continuous index (i, j, k) of a RAS point (mm)."""
        p = np.append(np.asarray(ras, dtype=float), 1.0)
        return (np.linalg.inv(self.ijk_to_ras()) @ p)[:3]

    def same_grid(self, other: Volume, tol: float = 1e-4) -> bool:
        """True when both volumes share size, spacing, origin and direction (to ``tol``)."""
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    def with_array(self, array: np.ndarray) -> Volume:
        """A volume on this grid holding ``array`` (same shape required)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise XAIError(f"array shape {array.shape} does not match the grid {self.array.shape}")
        return replace(self, array=array)

    def geometry(self) -> dict:
        """JSON-friendly description of the grid."""
        return {
            "size": list(self.size),
            "spacing": list(self.spacing),
            "origin_lps": list(self.origin),
            "direction_lps": self.direction.round(12).tolist(),
            "ijk_to_ras": self.ijk_to_ras().round(12).tolist(),
        }

    @classmethod
    def from_ras_affine(cls, array: np.ndarray, ijk_to_ras: np.ndarray) -> Volume:
        """Build a Volume from an array indexed [k, j, i] and a 4x4 IJK-to-RAS matrix."""
        lps = lps_to_ras_affine(np.asarray(ijk_to_ras, dtype=float))
        lin = lps[:3, :3]
        spacing = np.linalg.norm(lin, axis=0)
        return cls(array, tuple(spacing), tuple(lps[:3, 3]), lin / spacing)
