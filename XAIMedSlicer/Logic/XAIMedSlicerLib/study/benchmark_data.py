"""Benchmark data: real scans cropped around named structures, and seeded cases with inserted lesions.

Each dataset is one real scan with a label map (abdominal CT and MR with TotalSegmentator structures,
the T1 brain with MeshNet's subcortical structures, nilearn's MNI152 template with tissue classes).
The box around the named structures (plus a margin) is resampled onto a small model grid, intensities
are scaled to [0, 1], and cases are drawn from it: a random lesion (ellipsoid of random size, shape,
orientation and contrast, inserted with the demo's lesion code) inside one of the structures, or
none; plus random noise and gain. The lesion mask is the ground truth, known by construction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..anatomy.labels import read_label_names
from ..errors import XAIError
from ..geometry.axes import kji_to_xyz, volume_tensor
from ..geometry.resample import resample_to
from ..geometry.volume import Volume
from ..io.volumes import read_volume


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's scan and labels are, which structures hold lesions, how to scale intensities."""

    name: str
    description: str
    image: str = ""  # relative to the shared data folder; "" for the nilearn template
    labels: str = ""
    label_names: str = ""
    structures: tuple[str, ...] = ()
    intensity: tuple = ("percentile", 0.5, 99.5)  # or ("window", low, high)
    margin_mm: float = 10.0


DATASETS: dict[str, DatasetSpec] = {
    "ct": DatasetSpec(
        "ct", "abdominal CT (TotalSegmentator example), lesions in liver, spleen, kidneys",
        "ct/example_ct.nii.gz", "ct/example_seg_fast_force_split.nii.gz",
        "ct/example_seg_fast_force_split_labels_present.json",
        ("liver", "spleen", "kidney_left", "kidney_right"), ("window", -150.0, 250.0),
    ),
    "mr": DatasetSpec(
        "mr", "abdominal MR (TotalSegmentator example), lesions in liver and spleen",
        "ct/example_mr_sm.nii.gz", "ct/example_seg_mr.nii.gz", "ct/example_seg_mr_labels_present.json",
        ("liver", "spleen"),
    ),
    "brain": DatasetSpec(
        "brain", "T1 brain MRI (brainchop), lesions in cerebral white matter and thalamus",
        "brain/t1_crop.nii.gz", "brain/t1_crop_subcortical18_pred_model18cls.nii.gz",
        "models/meshnet/model18cls/colormap.json", ("Cerebral-White-Matter", "Thalamus"),
    ),
    "template": DatasetSpec(
        "template", "nilearn MNI152 template (2 mm), lesions in white matter", structures=("white matter",)
    ),
}  # fmt: skip


@dataclass
class Scan:
    """A dataset's scan on the model grid: intensities in [0, 1] and the mask of the lesion structures."""

    name: str
    image: Volume
    structures: Volume  # uint8, 1 inside the named structures
    structure_names: tuple[str, ...]


@dataclass
class Case:
    """One case: the model input array ([k, j, i]), its class, and the lesion mask (empty without)."""

    image: Volume
    label: int
    lesion: Volume
    info: dict


def shared_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """The real data folder: ``data_root``, else ``$XAIMED_SHARED_DATA``."""
    root = data_root or os.environ.get("XAIMED_SHARED_DATA")
    if not root or not Path(root).is_dir():
        raise XAIError(
            f"the benchmark's real data folder was not found ({root or 'not set'})",
            "pass data_root (or set XAIMED_SHARED_DATA) to the shared data folder",
        )
    return Path(root)


def _source(spec: DatasetSpec, data_root: Path | None) -> tuple[Volume, Volume, dict[int, str]]:
    if spec.name == "template":
        from ..demo.template import LABEL_NAMES, load_template

        t = load_template(2)
        return t.image, t.labels, dict(LABEL_NAMES)
    root = shared_data_root(data_root)
    for rel in (spec.image, spec.labels, spec.label_names):
        if not (root / rel).exists():
            raise XAIError(f"benchmark data file missing: {root / rel}", "restore the shared data folder")
    image = read_volume(root / spec.image)
    labels = read_volume(root / spec.labels)
    if not labels.same_grid(image):
        labels = resample_to(labels, image, "nearest")
    return image, labels, read_label_names(root / spec.label_names)


def load_scan(spec: DatasetSpec, grid: int, data_root: str | os.PathLike | None = None) -> Scan:
    """The box around the structures, resampled to ``grid``^3 voxels, intensities scaled to [0, 1]."""
    image, labels, names = _source(spec, Path(data_root) if data_root else None)
    by_name = {v: k for k, v in names.items()}
    missing = [s for s in spec.structures if s not in by_name]
    if missing:
        raise XAIError(f"structures {missing} are not in the {spec.name} label map", "check the dataset spec")
    inside = np.isin(labels.array, [by_name[s] for s in spec.structures])
    k, j, i = np.nonzero(inside)
    margin = np.ceil(spec.margin_mm / np.asarray(image.spacing)).astype(int)  # (i, j, k)
    lo = np.maximum(np.array([i.min(), j.min(), k.min()]) - margin, 0)
    hi = np.minimum(np.array([i.max(), j.max(), k.max()]) + margin, np.asarray(image.size) - 1)
    extent = (hi - lo) * np.asarray(image.spacing)
    spacing = extent / (grid - 1)
    origin_lps = image.ijk_to_lps() @ np.append(lo, 1.0)
    target = Volume(
        np.zeros((grid, grid, grid), np.float32), tuple(spacing), tuple(origin_lps[:3]), image.direction
    )
    img = resample_to(image.with_array(image.array.astype(np.float32)), target, "linear").array
    mask = resample_to(labels.with_array(inside.astype(np.uint8)), target, "nearest").array
    if spec.intensity[0] == "window":
        low, high = spec.intensity[1:]
    else:
        low, high = np.percentile(img, spec.intensity[1:])
    scaled = np.clip((img - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)
    return Scan(
        spec.name, target.with_array(scaled), target.with_array(mask.astype(np.uint8)), spec.structures
    )


def random_lesion(rng: np.random.Generator, scan: Scan, depth_mm: np.ndarray):
    """An ellipsoid of 1 to 2.2 coarsest voxels mean semi-axis, random shape and orientation.

    The contrast changes the structures' mean intensity by 0.12 to 0.3 (of the [0, 1] range), up or
    down (at most -90 %), so that lesions are equally visible in bright and dark organs.
    """
    from ..demo.lesion import Lesion

    voxel = float(np.max(scan.image.spacing))
    axes = voxel * rng.uniform(1.0, 2.2) * rng.uniform(0.7, 1.3, size=3)
    candidates = np.flatnonzero(depth_mm.ravel() >= 0.5 * axes.min())
    if candidates.size == 0:
        raise XAIError(
            f"the {scan.name} structures are too thin to hold a lesion", "choose larger structures"
        )
    k, j, i = np.unravel_index(candidates[rng.integers(candidates.size)], depth_mm.shape)
    centre = scan.image.index_to_ras(np.array([i, j, k], float) + rng.uniform(-0.5, 0.5, 3))
    level = float(scan.image.array[scan.structures.array > 0].mean())
    change = rng.uniform(0.12, 0.3) / max(level, 1e-3)
    contrast = change if rng.random() < 0.5 else -min(change, 0.9)
    return Lesion(
        centre_ras=tuple(float(c) for c in centre),
        semi_axes_mm=tuple(float(a) for a in axes),
        rotation=tuple(tuple(float(v) for v in row) for row in Rotation.random(random_state=rng).as_matrix()),
        contrast=float(contrast),
    )


def make_cases(
    scan: Scan, n: int, seed: int, lesion_fraction: float = 0.5, *, lesion_only: bool = False
) -> list[Case]:
    """``n`` seeded cases; with ``lesion_only`` every case has a lesion."""
    from ..demo.lesion import brain_depth_mm, insert_lesion

    rng = np.random.default_rng(seed)
    depth = brain_depth_mm(scan.structures)
    cases = []
    while len(cases) < n:
        has_lesion = lesion_only or rng.random() < lesion_fraction
        image, mask, info = scan.image, scan.image.with_array(np.zeros(scan.image.array.shape, np.uint8)), {}
        if has_lesion:
            lesion = random_lesion(rng, scan, depth)
            try:
                inserted = insert_lesion(scan.image, lesion, scan.structures)
            except XAIError:
                continue  # the lesion fell outside the structures: draw again
            image, mask, info = inserted.image, inserted.mask, lesion.to_dict()
        gain = rng.uniform(0.97, 1.03)
        noise = rng.normal(0.0, rng.uniform(0.0, 0.03), size=image.array.shape)
        arr = np.clip(image.array * gain + noise, 0.0, 1.2).astype(np.float32)
        cases.append(Case(image.with_array(arr), int(has_lesion), mask, info))
    return cases


def to_input(volume: Volume):
    """The network input (1, 1, X, Y, Z) of a Volume ([k, j, i] -> i, j, k)."""
    return volume_tensor(np.asarray(volume.array, np.float32))


def to_xyz(volume: Volume) -> np.ndarray:
    """A Volume's array in the network's (X, Y, Z) = (i, j, k) order."""
    return kji_to_xyz(volume.array)
