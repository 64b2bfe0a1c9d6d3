"""The MNI152 T1 template shipped inside nilearn's wheel, with tissue labels, as Volumes (no download).

nilearn ships the ICBM 2009a symmetric template (T1) and its grey- and white-matter probability maps
in ``nilearn/datasets/data``; ``load_mni152_*(resolution=r)`` resamples them to ``r`` mm without any
network access. The anatomical label map is derived from those maps inside nilearn's brain mask:

* 1 = grey matter, 2 = white matter, 3 = CSF;
* a brain-mask voxel takes the label of the largest of P(GM), P(WM) and P(CSF) = 1 - P(GM) - P(WM)
  (nilearn ships no CSF map, so CSF is the remaining probability: ventricles and sulcal CSF);
* voxels outside the brain mask are 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import XAIError
from ..geometry.axes import xyz_to_kji
from ..geometry.volume import Volume

LABEL_NAMES: dict[int, str] = {1: "grey matter", 2: "white matter", 3: "csf"}
RESOLUTIONS = (1, 2)


@dataclass(frozen=True)
class Template:
    """The template T1 image, its label map and brain mask, all on one grid."""

    image: Volume  # float32 T1 intensities in [0, 1]
    labels: Volume  # uint8, see LABEL_NAMES
    brain: Volume  # uint8 brain mask (nilearn's MNI152 brain mask)
    resolution: int


def _nifti_to_volume(img, dtype) -> Volume:
    """nibabel arrays are indexed [i, j, k]; Volume wants [k, j, i]."""
    data = np.asarray(img.get_fdata(dtype=np.float64))
    return Volume.from_ras_affine(xyz_to_kji(data).astype(dtype), img.affine)


@functools.lru_cache(maxsize=2)
def load_template(resolution: int = 2) -> Template:
    """The MNI152 template at ``resolution`` mm (1 or 2), read from nilearn's wheel (cached)."""
    if resolution not in RESOLUTIONS:
        raise XAIError(f"no MNI152 template at {resolution} mm", f"use a resolution in {RESOLUTIONS}")
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=resolution)
    gm = datasets.load_mni152_gm_template(resolution=resolution)
    wm = datasets.load_mni152_wm_template(resolution=resolution)
    mask = datasets.load_mni152_brain_mask(resolution=resolution)
    for other in (gm, wm, mask):
        if other.shape != t1.shape or not np.allclose(other.affine, t1.affine):
            raise XAIError("nilearn's MNI152 maps are not on the template grid", "reinstall nilearn (0.14.x)")
    image = _nifti_to_volume(t1, np.float32)
    p_gm = _nifti_to_volume(gm, np.float64).array
    p_wm = _nifti_to_volume(wm, np.float64).array
    brain = _nifti_to_volume(mask, np.float32).array > 0.5
    labels = tissue_labels(p_gm, p_wm, brain)
    return Template(
        image=image,
        labels=image.with_array(labels),
        brain=image.with_array(brain.astype(np.uint8)),
        resolution=resolution,
    )


def tissue_labels(p_gm: np.ndarray, p_wm: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Label map (uint8) from the probability maps: argmax of GM, WM and CSF = 1 - GM - WM, in the brain."""
    p_csf = np.clip(1.0 - p_gm - p_wm, 0.0, 1.0)
    stacked = np.stack([p_gm, p_wm, p_csf])
    labels = (np.argmax(stacked, axis=0) + 1).astype(np.uint8)
    labels[~np.asarray(brain, dtype=bool)] = 0
    return labels
