"""Synthetic lesions: rotated ellipsoids with smooth edges, inserted into a volume in physical space.

A lesion is defined in RAS millimetres (centre, three semi-axes, a rotation), so it is independent of
the voxel grid. Its weight is 1 inside the ellipsoid's core, falls smoothly (smoothstep) to 0 across
``edge`` (a fraction of the normalised radius) on both sides of the surface, and is 0 outside the brain.
The intensity is blended towards the lesion's own intensity: ``image + weight * (intensity - image)``
(or, for a lesion without its own intensity, scaled: ``image * (1 + contrast * weight)``).
``intensity = reference * (1 + contrast)``, with ``reference`` the white-matter intensity: hyper-intense
lesions (contrast > 0) are brighter than any normal tissue, hypo-intense ones (contrast < 0) are as dark
as CSF or darker. The lesion mask is ``weight >= 0.5`` (the ellipsoid surface, clipped to the brain);
the lesion centre reported is that mask's centroid in RAS mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import XAIError
from ..geometry.volume import Volume

SIZE_RANGE_MM = (6.0, 15.0)  # mean semi-axis
AXIS_FACTOR_RANGE = (0.7, 1.3)  # each semi-axis = mean x factor
HYPER_RANGE = (0.25, 0.6)  # contrast > 0: intensity 1.25 to 1.6 x white matter
HYPO_RANGE = (0.6, 0.9)  # contrast < 0 (magnitude): intensity 0.1 to 0.4 x white matter
EDGE = 0.3  # soft edge half-width, in normalised radius


@dataclass(frozen=True)
class Lesion:
    """An ellipsoidal lesion in RAS millimetres."""

    centre_ras: tuple[float, float, float]  # nominal centre of the ellipsoid
    semi_axes_mm: tuple[float, float, float]
    rotation: tuple[tuple[float, ...], ...]  # 3x3, columns = ellipsoid axes in RAS
    contrast: float  # intensity / reference - 1 (reference: white matter)
    edge: float = EDGE
    intensity: float | None = None  # the lesion's own intensity; None: multiplicative, image * (1 + contrast)

    @property
    def extent_mm(self) -> float:
        """Distance from the centre beyond which the lesion changes nothing."""
        return (1.0 + self.edge) * max(self.semi_axes_mm)

    def to_dict(self) -> dict:
        return {
            "centre_ras": list(self.centre_ras),
            "semi_axes_mm": list(self.semi_axes_mm),
            "rotation": [list(r) for r in self.rotation],
            "intensity": self.intensity,
            "contrast": self.contrast,
            "edge": self.edge,
            "kind": "hyper-intense" if self.contrast > 0 else "hypo-intense",
        }


@dataclass(frozen=True)
class InsertedLesion:
    """The image with the lesion, the lesion mask on the same grid, and the mask centroid (RAS mm)."""

    image: Volume
    mask: Volume  # uint8, 1 inside the lesion
    centre_ras: np.ndarray
    lesion: Lesion


def brain_depth_mm(brain: Volume) -> np.ndarray:
    """Distance (mm) of each brain voxel to the outside of the brain; 0 outside."""
    from scipy.ndimage import distance_transform_edt

    inside = np.asarray(brain.array) > 0
    sampling = tuple(reversed(brain.spacing))  # array axes are k, j, i
    return distance_transform_edt(inside, sampling=sampling)


def sample_lesion(
    rng: np.random.Generator, brain: Volume, reference: float, depth_mm: np.ndarray | None = None
) -> Lesion:
    """Draw a lesion with random size, shape, rotation, contrast sign and magnitude, inside ``brain``.

    ``reference`` is the white-matter intensity of the image the lesion is meant for.
    """
    mean_axis = rng.uniform(*SIZE_RANGE_MM)
    axes = mean_axis * rng.uniform(*AXIS_FACTOR_RANGE, size=3)
    rotation = Rotation.random(random_state=rng).as_matrix()
    if rng.random() < 0.5:
        contrast = float(rng.uniform(*HYPER_RANGE))
    else:
        contrast = -float(rng.uniform(*HYPO_RANGE))
    depth = brain_depth_mm(brain) if depth_mm is None else depth_mm
    # the core lies in the brain: the centre is at least half the largest semi-axis deep
    candidates = np.flatnonzero(depth.ravel() >= max(0.5 * axes.max(), min(brain.spacing)))
    if candidates.size == 0:
        raise XAIError("the brain mask is too small to hold a lesion", "use a larger brain mask")
    k, j, i = np.unravel_index(candidates[rng.integers(candidates.size)], depth.shape)
    index = np.array([i, j, k], dtype=float) + rng.uniform(-0.5, 0.5, size=3)
    centre = brain.index_to_ras(index)
    return Lesion(
        centre_ras=tuple(float(c) for c in centre),
        semi_axes_mm=tuple(float(a) for a in axes),
        rotation=tuple(tuple(float(v) for v in row) for row in rotation),
        intensity=float(reference * (1.0 + contrast)),
        contrast=contrast,
    )


def lesion_weight(grid: Volume, lesion: Lesion) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """The lesion weight in [0, 1] on the bounding box of its extent, and that box as array slices."""
    centre = np.asarray(lesion.centre_ras)
    reach = lesion.extent_mm
    corners = np.array([[x, y, z] for x in (-reach, reach) for y in (-reach, reach) for z in (-reach, reach)])
    index = np.array([grid.ras_to_index(centre + c) for c in corners])
    lo = np.maximum(np.floor(index.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(index.max(axis=0)).astype(int) + 1, np.asarray(grid.size))
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))  # k, j, i
    if np.any(hi <= lo):
        return np.zeros((0, 0, 0), dtype=np.float32), box
    kk, jj, ii = np.meshgrid(
        np.arange(lo[2], hi[2]), np.arange(lo[1], hi[1]), np.arange(lo[0], hi[0]), indexing="ij"
    )
    ijk = np.stack([ii, jj, kk], axis=-1).reshape(-1, 3).astype(float)
    affine = grid.ijk_to_ras()
    ras = ijk @ affine[:3, :3].T + affine[:3, 3]
    local = (ras - centre) @ np.asarray(lesion.rotation)  # coordinates along the ellipsoid axes
    radius = np.sqrt(((local / np.asarray(lesion.semi_axes_mm)) ** 2).sum(axis=1))
    t = np.clip((1.0 + lesion.edge - radius) / (2.0 * lesion.edge), 0.0, 1.0)
    weight = (t * t * (3.0 - 2.0 * t)).reshape(kk.shape)
    return weight.astype(np.float32), box


def insert_lesion(image: Volume, lesion: Lesion, brain: Volume | None = None) -> InsertedLesion:
    """Insert ``lesion`` into ``image`` (changing it only where the weight is > 0, inside ``brain``)."""
    if brain is not None and not brain.same_grid(image):
        raise XAIError("the brain mask is not on the image grid", "resample the mask onto the image first")
    weight, box = lesion_weight(image, lesion)
    if brain is not None and weight.size:
        weight = weight * (np.asarray(brain.array[box]) > 0)
    full = np.zeros(image.array.shape, dtype=np.float32)
    full[box] = weight
    mask = (full >= 0.5).astype(np.uint8)
    if not mask.any():
        raise XAIError(
            "the lesion covers no voxel of the image", "place the lesion inside the volume and the brain"
        )
    array = np.asarray(image.array, dtype=np.float32).copy()
    if lesion.intensity is None:
        array[box] *= 1.0 + np.float32(lesion.contrast) * weight
    else:
        array[box] += weight * (np.float32(lesion.intensity) - array[box])
    return InsertedLesion(
        image=image.with_array(array),
        mask=image.with_array(mask),
        centre_ras=mask_centroid_ras(image.with_array(mask)),
        lesion=lesion,
    )


def mask_centroid_ras(mask: Volume) -> np.ndarray:
    """Centroid (RAS mm) of the non-zero voxels of ``mask``."""
    k, j, i = np.nonzero(np.asarray(mask.array))
    if k.size == 0:
        raise XAIError("the mask is empty", "give a mask with at least one voxel")
    return mask.index_to_ras((i.mean(), j.mean(), k.mean()))
