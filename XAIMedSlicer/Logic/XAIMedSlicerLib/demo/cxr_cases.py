"""Chest radiograph demo cases: a real radiograph with a synthetic nodule or opacity inserted in a lung.

A base radiograph is scaled to [0, 1] (0.5th-99.5th percentile) and resized to ``BASE_SIZE`` pixels a
side (anti-aliased). Training bases are the real radiographs of ``../shared/data/cxr`` (read by
:func:`load_base`); the demo explains the CC0 example radiograph among them, read from that folder
(no radiograph is shipped with the package). Sizes below are in pixels of a ``BASE_SIZE`` image and scale with the image.
A case may be augmented (affine, gamma, noise) and then gets a lesion: a *nodule* (a round,
Gaussian-profiled density of radius 4-7 px) or an *opacity* (a fainter, larger, irregular density of
three overlapping blobs), added where the lungs lie in a frontal radiograph (boxes per lung as
fractions of the image). Its mask is where the added density exceeds a fifth of its peak.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..geometry.volume import Volume
from ..io.radiograph import grid_for, read_radiograph

BASE_SIZE = 128  # training cases; the demo's own radiograph is DEMO_SIZE
DEMO_SIZE = 128
CLASSES = ["no finding", "nodule or opacity"]
KINDS = ("nodule", "opacity")
# (row range, column range) of each lung as fractions of a frontal radiograph, image left = patient right
LUNG_BOXES = {"right lung": ((0.30, 0.66), (0.20, 0.40)), "left lung": ((0.30, 0.62), (0.60, 0.78))}
BASE_FILES = {
    "nih_00000001": "cxr/00000001_000.png",
    "nih_00027426": "cxr/00027426_000.png",
    "siim_cr": "cxr/siim_cr_monochrome2.dcm",
    "cc0_pa": "cxr/pa_normal_cc0.jpg",
}
DEMO_BASE = "cc0_pa"  # the demo's own radiograph (CC0), read from the shared data folder


@dataclass(frozen=True)
class Lesion:
    kind: str
    side: str
    centre_rc: tuple[float, float]  # (row, column) in pixels
    radius_px: float
    amplitude: float


@dataclass
class CxrCase:
    image: np.ndarray  # (rows, columns) float32 in about [0, 1]
    mask: np.ndarray  # (rows, columns) bool, the lesion (all False without one)
    label: int  # 0 no finding, 1 nodule or opacity
    base: str
    lesion: Lesion | None

    def volume(self) -> Volume:
        """The case as a one-slice radiograph Volume (1 mm pixels, PA orientation)."""
        spacing, direction = grid_for(*self.image.shape, (1.0, 1.0))
        return Volume(self.image[None].astype(np.float32), spacing, (0.0, 0.0, 0.0), direction)

    def mask_volume(self) -> Volume:
        return self.volume().with_array(self.mask[None].astype(np.uint8))

    def describe(self) -> dict:
        return {
            "base": self.base,
            "label": CLASSES[self.label],
            "lesion": asdict(self.lesion) if self.lesion else None,
            "lesion_pixels": int(self.mask.sum()),
        }


def normalise(pixels: np.ndarray, size: int = BASE_SIZE) -> np.ndarray:
    """Percentile-scaled to [0, 1] and resized (anti-aliased) to ``size`` x ``size``."""
    from skimage.transform import resize

    lo, hi = np.percentile(pixels, [0.5, 99.5])
    scaled = np.clip((pixels.astype(np.float64) - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return resize(scaled, (size, size), order=1, anti_aliasing=True).astype(np.float32)


def load_base(path: str | Path, size: int = BASE_SIZE) -> np.ndarray:
    """A real radiograph (PNG, JPEG or DICOM) as a base image."""
    return normalise(read_radiograph(path)[0].array[0], size)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random left-right flip, scale (0.92-1.08), rotation (+-5 deg), shift (+-3% of the side), gamma
    (0.8-1.25) and noise."""
    from scipy.ndimage import affine_transform

    n = image.shape[0]
    image = image[:, ::-1] if rng.integers(2) else image
    angle = np.deg2rad(rng.uniform(-5, 5))
    scale = rng.uniform(0.92, 1.08)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
    centre = np.array([n / 2, n / 2])
    offset = centre - rot @ centre + rng.uniform(-0.03 * n, 0.03 * n, size=2)
    out = affine_transform(image, rot, offset=offset, order=1, mode="nearest")
    out = np.clip(out, 0, 1) ** rng.uniform(0.8, 1.25)
    out = out + rng.normal(0, rng.uniform(0.005, 0.02), out.shape)
    return out.astype(np.float32)


def lesion_density(shape, lesion: Lesion, rng: np.random.Generator) -> np.ndarray:
    """The added density of ``lesion`` (peak ``amplitude``)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    blobs = [(lesion.centre_rc, lesion.radius_px)]
    if lesion.kind == "opacity":
        for _ in range(2):
            shift = rng.normal(0, 0.5 * lesion.radius_px, 2)
            blobs.append(
                ((lesion.centre_rc[0] + shift[0], lesion.centre_rc[1] + shift[1]), lesion.radius_px * 0.7)
            )
    density = np.zeros(shape, np.float32)
    for (r0, c0), radius in blobs:
        sigma = radius / 1.5
        density = np.maximum(density, np.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (2 * sigma**2)))
    return (lesion.amplitude * density).astype(np.float32)


def random_lesion(shape, rng: np.random.Generator, kind: str | None = None) -> Lesion:
    kind = kind or str(rng.choice(KINDS))
    side = str(rng.choice(list(LUNG_BOXES)))
    (r0, r1), (c0, c1) = LUNG_BOXES[side]
    centre = (rng.uniform(r0, r1) * shape[0], rng.uniform(c0, c1) * shape[1])
    if kind == "nodule":
        radius, amplitude = rng.uniform(4, 7), rng.uniform(0.18, 0.35)
    else:
        radius, amplitude = rng.uniform(8, 14), rng.uniform(0.12, 0.22)
    scale = shape[0] / BASE_SIZE
    return Lesion(kind, side, (float(centre[0]), float(centre[1])), float(radius * scale), float(amplitude))


def make_cxr_case(
    base: np.ndarray,
    seed: int,
    *,
    lesion: bool | None = None,
    augmented: bool = True,
    base_name: str = "",
    kind: str | None = None,
) -> CxrCase:
    """A case from ``base`` drawn by ``seed``: lesion with probability 1/2 unless ``lesion`` says."""
    rng = np.random.default_rng(seed)
    has = bool(rng.integers(2)) if lesion is None else bool(lesion)
    image = augment(base, rng) if augmented else base.astype(np.float32).copy()
    mask = np.zeros(image.shape, bool)
    found = None
    if has:
        found = random_lesion(image.shape, rng, kind)
        density = lesion_density(image.shape, found, rng)
        image = image + density
        mask = density > 0.2 * found.amplitude
    return CxrCase(image.astype(np.float32), mask, int(has), base_name, found)
