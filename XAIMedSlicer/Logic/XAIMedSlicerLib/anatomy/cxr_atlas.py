"""A chest radiograph atlas (lungs, heart, mediastinum) and its SimpleITK registration to a new image.

The atlas is one frontal radiograph with its CheXmask masks (``pa_normal_cc0.jpg`` with ``RL_mask.png``,
``LL_mask.png``, ``H_mask.png``; image CC0, masks GPL-3.0, so they are read from the data folder and not
bundled). torchxrayvision's wheel ships ``semantic_masks_v7labs_lungs.zip`` (lung masks without their
images, licence not stated), so it is not used. The mediastinum (label 4) is drawn on the atlas from its
masks (``atlas_mediastinum``) and registered with the other labels. ``mirrored_atlas`` flips an atlas
left-right (lung labels swapped) to give a second, different atlas image for held-out checks.

Registration works in each image's pixel frame (column, row) on a working grid of at most
``work_size`` pixels: the atlas extent is first scaled onto the image extent, then an affine
transform is fitted (correlation of the normalised intensities, three resolution levels), then
a coarse B-spline (``bspline=True``, the default). Labels come back on the image's full pixel grid
(nearest neighbour); soft priors (the atlas masks smoothed, then linearly resampled) in [0, 1].
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import XAIError

ATLAS_LABELS = {1: "right lung", 2: "left lung", 3: "heart", 4: "mediastinum"}
ATLAS_FILES = {1: "RL_mask.png", 2: "LL_mask.png", 3: "H_mask.png"}
ATLAS_IMAGE = "pa_normal_cc0.jpg"
SAMPLING_SEED = 7


@dataclass
class CxrAtlas:
    """An atlas radiograph (rows, cols) with a label map of ATLAS_LABELS on its pixel grid."""

    image: np.ndarray
    labels: np.ndarray
    source: str


@dataclass
class Registered:
    """Atlas labels and soft priors on the target image's (rows, cols) pixel grid."""

    labels: np.ndarray  # int32, ATLAS_LABELS values, 0 elsewhere
    priors: dict[int, np.ndarray]  # float32 in [0, 1] per label
    transform: sitk.Transform
    metric: float


def default_atlas_folder() -> Path:
    """``$XAIMED_SHARED_DATA/cxr`` or ``../shared/data/cxr`` beside the repository."""
    env = os.environ.get("XAIMED_SHARED_DATA")
    if env:
        return Path(env) / "cxr"
    return Path(__file__).resolve().parents[5] / "shared" / "data" / "cxr"


def chexmask_masks(folder: str | Path | None = None) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The CheXmask example radiograph (rows, cols) and its masks {1: right lung, 2: left lung, 3: heart}."""
    from ..io.radiograph import read_radiograph

    folder = Path(folder) if folder is not None else default_atlas_folder()
    paths = [folder / ATLAS_IMAGE] + [folder / name for name in ATLAS_FILES.values()]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise XAIError(
            f"chest atlas files missing in {folder}: {', '.join(missing)}",
            "set XAIMED_SHARED_DATA to the folder holding cxr/ with the CheXmask example",
        )
    image = read_radiograph(paths[0])[0].array[0].astype(np.float32)
    masks = {}
    for value, name in ATLAS_FILES.items():
        mask = read_radiograph(folder / name)[0].array[0] > 0
        if mask.shape != image.shape:
            raise XAIError(f"{name} does not match the atlas image size", "use the CheXmask example set")
        masks[value] = mask
    return image, masks


def atlas_labels(masks: dict[int, np.ndarray]) -> np.ndarray:
    """One label map from the three masks (lungs win where the heart overlaps them) plus the mediastinum."""
    labels = np.zeros(masks[1].shape, np.int32)
    for value in (3, 1, 2):
        labels[masks[value]] = value
    labels[atlas_mediastinum(labels)] = 4
    return labels


def atlas_mediastinum(labels: np.ndarray) -> np.ndarray:
    """Pixels between the right lung's medial edge (its largest column) and the left lung's (smallest),
    on the rows from the higher lung apex down to the lowest heart row, outside lungs and heart, and not
    under a lung base or the heart (lung or heart above it in its column, neither below)."""
    rows = np.nonzero(np.isin(labels, (1, 2)).any(axis=1))[0]
    heart_rows = np.nonzero((labels == 3).any(axis=1))[0]
    out = np.zeros(labels.shape, bool)
    if rows.size == 0 or heart_rows.size == 0:
        return out
    cols = np.arange(labels.shape[1])
    for row in range(rows.min(), heart_rows.max() + 1):
        right, left = cols[labels[row] == 1], cols[labels[row] == 2]
        if right.size and left.size and right.max() + 1 < left.min():
            out[row, right.max() + 1 : left.min()] = True
    organ = np.isin(labels, (1, 2, 3))
    organ_above = np.maximum.accumulate(organ, axis=0)
    organ_below = np.maximum.accumulate(organ[::-1], axis=0)[::-1]
    return out & (labels == 0) & ~(organ_above & ~organ_below)


def chexmask_atlas(folder: str | Path | None = None) -> CxrAtlas:
    """The CheXmask example image and its masks as an atlas (labels ATLAS_LABELS)."""
    image, masks = chexmask_masks(folder)
    folder = Path(folder) if folder is not None else default_atlas_folder()
    return CxrAtlas(image=image, labels=atlas_labels(masks), source=str(folder / ATLAS_IMAGE))


def mirrored_atlas(atlas: CxrAtlas) -> CxrAtlas:
    """The atlas flipped left-right, right and left lung swapped (the heart stays where it lands)."""
    labels = atlas.labels[:, ::-1].copy()
    swapped = labels.copy()
    swapped[labels == 1], swapped[labels == 2] = 2, 1
    return CxrAtlas(image=atlas.image[:, ::-1].copy(), labels=swapped, source=atlas.source + " (mirrored)")


def normalise(image: np.ndarray) -> np.ndarray:
    """Grey values clipped to the 1st-99th percentiles and scaled to [0, 1]."""
    a = np.asarray(image, np.float32)
    lo, hi = np.percentile(a, [1, 99])
    if hi <= lo:
        raise XAIError("the radiograph has no contrast", "check that the image is a chest radiograph")
    return np.clip((a - lo) / (hi - lo), 0, 1).astype(np.float32)


def _sitk(array: np.ndarray, spacing=(1.0, 1.0)) -> sitk.Image:
    img = sitk.GetImageFromArray(np.ascontiguousarray(array))
    img.SetSpacing(tuple(float(s) for s in spacing))
    return img


def _working(image: np.ndarray, work_size: int) -> sitk.Image:
    """A smoothed, downsampled copy whose physical frame is the full image's pixel frame."""
    factor = max(1.0, max(image.shape) / work_size)
    small = ndimage.zoom(ndimage.gaussian_filter(image, factor / 2), 1 / factor, order=1)
    spacing = (image.shape[1] / small.shape[1], image.shape[0] / small.shape[0])
    out = _sitk(small.astype(np.float32), spacing)
    out.SetOrigin(((spacing[0] - 1) / 2, (spacing[1] - 1) / 2))
    return out


def initial_transform(atlas_shape: tuple[int, int], image_shape: tuple[int, int]) -> sitk.AffineTransform:
    """Image pixel frame (column, row) -> atlas pixel frame, mapping the image extent onto the atlas's."""
    scale = np.array(atlas_shape[::-1], float) / np.array(image_shape[::-1], float)
    centre = (np.array(image_shape[::-1], float) - 1) / 2
    affine = sitk.AffineTransform(2)
    affine.SetCenter(tuple(centre))
    affine.SetMatrix((scale[0], 0.0, 0.0, scale[1]))
    affine.SetTranslation(tuple((np.array(atlas_shape[::-1], float) - 1) / 2 - centre))
    return affine


def _method(shrink: list[int], sigmas: list[float], sampling: float) -> sitk.ImageRegistrationMethod:
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsCorrelation()
    if sampling < 1.0:  # a fixed seed keeps the result reproducible
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(sampling, SAMPLING_SEED)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetShrinkFactorsPerLevel(shrink)
    reg.SetSmoothingSigmasPerLevel(sigmas)
    return reg


def register_atlas(
    atlas: CxrAtlas,
    image: np.ndarray,
    *,
    bspline: bool = True,
    work_size: int = 128,
    mesh: int = 4,
    sampling: float = 0.25,
    prior_sigma: float = 0.02,
) -> Registered:
    """Register ``atlas`` to ``image`` (rows, cols) and bring its labels and soft priors onto it.

    Affine (correlation, three levels), then, with ``bspline``, a ``mesh`` x ``mesh`` B-spline (L-BFGS-B);
    the metric uses a seeded random ``sampling`` fraction of the working grid's pixels.
    """
    if image.ndim != 2 or min(image.shape) < 32:
        raise XAIError(f"expected a 2D radiograph, got shape {image.shape}", "give a one-slice radiograph")
    fixed = _working(normalise(image), work_size)
    moving = _working(normalise(atlas.image), work_size)
    affine = initial_transform(atlas.image.shape, image.shape)
    reg = _method([4, 2, 1], [2.0, 1.0, 0.0], sampling)
    reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-4, 200, relaxationFactor=0.6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(affine, inPlace=True)
    reg.Execute(fixed, moving)
    transform: sitk.Transform = affine
    metric = reg.GetMetricValue()
    if bspline:
        deform = sitk.BSplineTransformInitializer(fixed, [mesh, mesh])
        breg = _method([2, 1], [1.0, 0.0], sampling)
        breg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=60)
        breg.SetMovingInitialTransform(affine)
        breg.SetInitialTransform(deform, inPlace=True)
        breg.Execute(fixed, moving)
        transform = sitk.CompositeTransform([affine, deform])  # deform first, then the affine
        metric = breg.GetMetricValue()
    labels, priors = warp_atlas(atlas, image.shape, transform, prior_sigma=prior_sigma)
    return Registered(labels=labels, priors=priors, transform=transform, metric=float(metric))


def warp_atlas(
    atlas: CxrAtlas, shape: tuple[int, int], transform: sitk.Transform, *, prior_sigma: float = 0.02
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Atlas labels (nearest neighbour) and soft priors (masks smoothed by ``prior_sigma`` x the atlas
    size, then linear) on a (rows, cols) grid whose pixel frame ``transform`` maps into the atlas's."""
    reference = _sitk(np.zeros(shape, np.float32))
    moved = sitk.Resample(
        _sitk(atlas.labels.astype(np.int32)), reference, transform, sitk.sitkNearestNeighbor
    )
    labels = sitk.GetArrayFromImage(moved).astype(np.int32)
    sigma = prior_sigma * max(atlas.image.shape)
    priors = {}
    for value in ATLAS_LABELS:
        soft = ndimage.gaussian_filter((atlas.labels == value).astype(np.float32), sigma)
        warped = sitk.Resample(_sitk(soft), reference, transform, sitk.sitkLinear, 0.0)
        priors[value] = np.clip(sitk.GetArrayFromImage(warped), 0, 1).astype(np.float32)
    return labels, priors


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(a, b).sum() / total)
