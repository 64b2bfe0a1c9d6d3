"""Held-out Dice of the chest atlas against the CheXmask masks of the image they belong to.

Only one shipped radiograph has masks, so the checks are leave-one-out variants in which the target's
own masks never enter the registration and are used only for scoring:

* ``mirrored``: the atlas is the example flipped left-right (lungs swapped, the heart on the wrong side,
  so a different anatomy), registered to the original image; scored against the original masks;
* ``deformed:<seed>``: the target is the example warped by a seeded random affine (scale, rotation,
  shear, shift) and a smooth random B-spline; the unwarped atlas is registered to it; scored against
  the masks warped by the same (known) transform.

``dice_initial`` is the Dice of the starting alignment (atlas extent scaled onto the image), so a
registration that does nothing shows no gain.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import XAIError
from .cxr_atlas import (
    CxrAtlas,
    atlas_labels,
    chexmask_masks,
    dice,
    initial_transform,
    mirrored_atlas,
    register_atlas,
    warp_atlas,
)

SCORED = {1: "right lung", 2: "left lung", 3: "heart"}  # the CheXmask masks; 4 is drawn from them


def random_warp(shape: tuple[int, int], seed: int, *, strength: float = 1.0) -> sitk.Transform:
    """A seeded smooth transform of a (rows, cols) pixel frame: affine (scale +-8%, rotation +-5 deg,
    shear +-4%, shift +-3%) after a 4x4 B-spline with control points moved up to 3% of the size."""
    rng = np.random.default_rng(seed)
    size = np.array(shape[::-1], float)
    centre = (size - 1) / 2
    angle = np.deg2rad(rng.uniform(-5, 5) * strength)
    scale = 1 + rng.uniform(-0.08, 0.08, 2) * strength
    shear = rng.uniform(-0.04, 0.04) * strength
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag(scale)
    affine = sitk.AffineTransform(2)
    affine.SetCenter(tuple(centre))
    affine.SetMatrix(tuple(matrix.ravel()))
    affine.SetTranslation(tuple(rng.uniform(-0.03, 0.03, 2) * size * strength))
    grid = sitk.GetImageFromArray(np.zeros(shape, np.float32))
    bspline = sitk.BSplineTransformInitializer(grid, [4, 4])
    params = np.asarray(bspline.GetParameters())
    bspline.SetParameters(tuple(rng.uniform(-0.03, 0.03, params.size) * max(size) * strength))
    return sitk.CompositeTransform([affine, bspline])


def warp_image(image: np.ndarray, transform: sitk.Transform, *, nearest: bool = False) -> np.ndarray:
    """``image`` resampled through ``transform`` (output pixel -> input pixel) on its own grid."""
    src = sitk.GetImageFromArray(np.ascontiguousarray(image))
    mode = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    out = sitk.Resample(src, src, transform, mode, float(np.median(image)) if not nearest else 0)
    return sitk.GetArrayFromImage(out)


def holdout_variants(seeds: tuple[int, ...] = (0, 1)) -> list[str]:
    """Names of the default checks: the mirrored atlas and one deformed target per seed."""
    return ["mirrored"] + [f"deformed:{s}" for s in seeds]


def holdout_dice(variant: str, *, folder=None, bspline: bool = True) -> list[dict]:
    """One row per scored structure: variant, held_out, structure, dice, dice_initial, metric."""
    image, masks = chexmask_masks(folder)
    atlas = CxrAtlas(image=image, labels=atlas_labels(masks), source="CheXmask example")
    if variant == "mirrored":
        atlas, target, truth = mirrored_atlas(atlas), image, masks
        held_out = "original image's masks (atlas = the image mirrored left-right, lungs swapped)"
    elif variant.startswith("deformed:"):
        transform = random_warp(image.shape, int(variant.split(":", 1)[1]))
        target = warp_image(image, transform)
        truth = {v: warp_image(m.astype(np.uint8), transform, nearest=True) > 0 for v, m in masks.items()}
        held_out = "warped image's masks (target = the image under a seeded random affine + B-spline)"
    else:
        raise XAIError(f"unknown held-out variant '{variant}'", "use 'mirrored' or 'deformed:<seed>'")
    registered = register_atlas(atlas, target, bspline=bspline)
    start, _ = warp_atlas(atlas, target.shape, initial_transform(atlas.image.shape, target.shape))
    return [
        {
            "variant": variant,
            "held_out": held_out,
            "structure": name,
            "dice": dice(registered.labels == value, truth[value]),
            "dice_initial": dice(start == value, truth[value]),
            "metric": registered.metric,
        }
        for value, name in SCORED.items()
    ]
