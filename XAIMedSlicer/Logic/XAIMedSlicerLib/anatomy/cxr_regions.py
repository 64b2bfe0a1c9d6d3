"""Chest radiograph structures on the image grid: lungs, heart and mediastinum (registered atlas) and
outside the body (thresholding), with names, SNOMED CT codes and a soft anatomy prior.

Outside the body (5) is air: pixels darker than half the median grey of the registered lungs (after
percentile normalisation and a light blur), connected to the image border, outside the dilated lungs,
after a morphological opening. Everything else that is no chest structure (neck, shoulders, abdomen,
arms) stays 0 ("body, other").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import XAIError
from ..geometry.volume import Volume
from .cxr_atlas import ATLAS_LABELS, CxrAtlas, Registered, chexmask_atlas, normalise, register_atlas

OUTSIDE_BODY = 5
CXR_LABELS = {**ATLAS_LABELS, OUTSIDE_BODY: "outside body"}
CHEST_STRUCTURES = tuple(ATLAS_LABELS)  # 1-4: the anatomy of interest; 0 and 5 are not
# SNOMED CT body structures (code, meaning); "outside body" has no anatomy code
CXR_SNOMED = {
    1: ("3341006", "Right lung structure"),
    2: ("44029006", "Left lung structure"),
    3: ("80891009", "Heart structure"),
    4: ("72410000", "Mediastinal structure"),
}


@dataclass
class CxrAnatomy:
    """Label map and soft prior of one radiograph, both on its grid."""

    labels: Volume  # int32, CXR_LABELS values
    names: dict[int, str]
    codes: dict[int, tuple[str, str]]  # SNOMED CT codes where known (CXR_SNOMED)
    prior: Volume  # float32 in [0, 1]: probability of lying in a chest structure (1-4)
    registration: Registered


def outside_body_mask(image: np.ndarray, lungs: np.ndarray, *, opening: int = 3) -> np.ndarray:
    """Air around the body: dark pixels connected to the image border, outside the dilated lungs."""
    norm = normalise(image)
    level = 0.5 * float(np.median(norm[lungs])) if lungs.any() else 0.1
    dark = ndimage.gaussian_filter(norm, 2.0) < level
    dark &= ~ndimage.binary_dilation(lungs, iterations=5)
    dark = ndimage.binary_opening(dark, iterations=opening)
    components, _ = ndimage.label(dark)
    border = np.unique(np.concatenate([components[0], components[-1], components[:, 0], components[:, -1]]))
    return np.isin(components, border[border != 0])


def compose_labels(image: np.ndarray, atlas_labels: np.ndarray) -> np.ndarray:
    """The five-structure label map from the registered atlas labels (1-4) and the image."""
    labels = atlas_labels.astype(np.int32).copy()
    outside = outside_body_mask(image, np.isin(atlas_labels, (1, 2))) & (labels == 0)
    labels[outside] = OUTSIDE_BODY
    return labels


def cxr_anatomy(
    image: Volume, atlas: CxrAtlas | None = None, *, bspline: bool = True, progress=None
) -> CxrAnatomy:
    """Structures of a one-slice radiograph Volume (array (1, rows, cols)) on its own grid."""
    if image.array.ndim != 3 or image.array.shape[0] != 1:
        raise XAIError(
            f"chest anatomy needs a one-slice radiograph, got shape {image.array.shape}",
            "give a PNG/JPEG/DICOM radiograph read with read_volume",
        )
    report = progress or (lambda _f, _m: None)
    report(0.0, "registering the chest atlas")
    atlas = atlas if atlas is not None else chexmask_atlas()
    pixels = image.array[0].astype(np.float32)
    registered = register_atlas(atlas, pixels, bspline=bspline)
    report(0.9, "outside the body")
    labels = compose_labels(pixels, registered.labels)
    chest = np.clip(sum(registered.priors[v] for v in CHEST_STRUCTURES), 0, 1).astype(np.float32)
    report(1.0, "chest anatomy done")
    return CxrAnatomy(
        labels=image.with_array(labels[None].astype(np.int32)),
        names=dict(CXR_LABELS),
        codes=dict(CXR_SNOMED),
        prior=image.with_array(chest[None]),
        registration=registered,
    )
