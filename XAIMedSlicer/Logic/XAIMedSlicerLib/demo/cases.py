"""Seeded demo cases: the MNI152 template, with or without a lesion, under a simulated acquisition.

A case is fully determined by its seed. Two independent random streams are spawned from it: one for
the lesion (presence and geometry), one for the acquisition (a smooth multiplicative bias field and
Gaussian noise). The same seed with the lesion forced on or off therefore gives the same acquisition,
so the two images differ only where the lesion is.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..geometry.volume import Volume
from .lesion import InsertedLesion, Lesion, brain_depth_mm, insert_lesion, sample_lesion
from .template import LABEL_NAMES, Template, load_template

CLASSES = ("no lesion", "lesion")
NOISE_RANGE = (0.0, 0.03)  # Gaussian noise sigma, template intensities are in [0, 1]
BIAS_SIGMA = 0.05  # std of the bias-field polynomial coefficients (per 100 mm)


@dataclass(frozen=True)
class DemoCase:
    """One case: image, labels and lesion mask on the template grid, and the ground truth."""

    seed: int
    image: Volume  # float32
    labels: Volume  # uint8 tissue labels (template.LABEL_NAMES)
    lesion_mask: Volume  # uint8, all zero without a lesion
    lesion: Lesion | None
    centre_ras: np.ndarray | None  # lesion-mask centroid in RAS mm

    @property
    def label(self) -> int:
        """Class index: 0 = no lesion, 1 = lesion."""
        return int(self.lesion is not None)

    @property
    def label_names(self) -> dict[int, str]:
        return dict(LABEL_NAMES)

    def describe(self) -> dict:
        """JSON-friendly ground truth."""
        return {
            "seed": self.seed,
            "class": CLASSES[self.label],
            "lesion": None if self.lesion is None else self.lesion.to_dict(),
            "lesion_centre_ras": None if self.centre_ras is None else [float(c) for c in self.centre_ras],
            "lesion_voxels": int(np.count_nonzero(self.lesion_mask.array)),
        }


@functools.lru_cache(maxsize=2)
def _depth(resolution: int) -> np.ndarray:
    return brain_depth_mm(load_template(resolution).brain)


@functools.lru_cache(maxsize=2)
def _white_matter(resolution: int) -> float:
    """Median template intensity in white matter: the lesions' reference intensity."""
    template = load_template(resolution)
    return float(np.median(template.image.array[template.labels.array == 2]))


@functools.lru_cache(maxsize=2)
def _normalised_ras(resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAS coordinates / 100 mm of every voxel, each as an array broadcastable to [k, j, i]."""
    image = load_template(resolution).image
    affine = image.ijk_to_ras()
    if not np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3]))):
        raise AssertionError("the template grid is expected to be axis-aligned")
    ni, nj, nk = image.size
    x = (affine[0, 0] * np.arange(ni) + affine[0, 3]) / 100.0
    y = (affine[1, 1] * np.arange(nj) + affine[1, 3]) / 100.0
    z = (affine[2, 2] * np.arange(nk) + affine[2, 3]) / 100.0
    return x[None, None, :], y[None, :, None], z[:, None, None]


def acquire(image: np.ndarray, rng: np.random.Generator, resolution: int) -> np.ndarray:
    """Simulated acquisition: smooth bias field (exp of a quadratic polynomial) and Gaussian noise."""
    x, y, z = _normalised_ras(resolution)
    c = rng.normal(0.0, BIAS_SIGMA, size=9)
    log_bias = c[0] * x + c[1] * y + c[2] * z + c[3] * x * x + c[4] * y * y + c[5] * z * z
    log_bias = log_bias + c[6] * x * y + c[7] * y * z + c[8] * x * z
    sigma = rng.uniform(*NOISE_RANGE)
    noise = rng.standard_normal(size=image.shape, dtype=np.float32) * np.float32(sigma)
    return (image * np.exp(log_bias).astype(np.float32) + noise).astype(np.float32)


def make_case(seed: int, lesion: bool | None = None, resolution: int = 2) -> DemoCase:
    """The case of ``seed``; ``lesion`` forces the class (None: a lesion with probability 1/2)."""
    template: Template = load_template(resolution)
    lesion_seq, acquisition_seq = np.random.SeedSequence(int(seed)).spawn(2)
    rng = np.random.default_rng(lesion_seq)
    present = bool(rng.random() < 0.5) if lesion is None else bool(lesion)
    drawn = sample_lesion(rng, template.brain, _white_matter(resolution), _depth(resolution))
    image = template.image
    mask = template.image.with_array(np.zeros(image.array.shape, dtype=np.uint8))
    centre = None
    if present:
        inserted: InsertedLesion = insert_lesion(image, drawn, template.brain)
        image, mask, centre = inserted.image, inserted.mask, inserted.centre_ras
    array = acquire(
        np.asarray(image.array, dtype=np.float32), np.random.default_rng(acquisition_seq), resolution
    )
    return DemoCase(
        seed=int(seed),
        image=image.with_array(array),
        labels=template.labels,
        lesion_mask=mask,
        lesion=drawn if present else None,
        centre_ras=centre,
    )
