"""The demo: a fresh lesion case in the MNI152 template, explained by the committed demo classifier.

``run_demo(out_dir)`` writes the case (``image.nii.gz``, ``labels.nii.gz``, ``lesion_mask.nii.gz``,
``label_names.json``, ``case.json``), every output of ``xaimed explain`` for it, and ``demo.json``
(prediction, attribution peak, whether it lies inside the lesion and how far from it), and prints a
short report. Nothing needs downloading: the template comes from nilearn's wheel, the model from
this package.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..geometry.volume import Volume
from ..io.atomic import write_json
from ..io.volumes import write_volume
from .cases import DemoCase, make_case
from .model import CARD_PATH

DEMO_SEED_RANGE = (10**9, 2**31 - 1)  # training and evaluation seeds stay below 10**7


def fresh_seed() -> int:
    """A new random case seed, outside the seeds used for training and evaluation."""
    return int(np.random.default_rng().integers(*DEMO_SEED_RANGE))


def peak_report(attribution: Volume, mask: Volume, centre_ras) -> dict:
    """Where the attribution peaks relative to the lesion mask (both on the same grid)."""
    arr = np.asarray(attribution.array)
    k, j, i = np.unravel_index(int(np.argmax(arr)), arr.shape)
    peak = attribution.index_to_ras((i, j, k))
    inside = bool(np.asarray(mask.array)[k, j, i] > 0)
    kk, jj, ii = np.nonzero(np.asarray(mask.array))
    affine = mask.ijk_to_ras()
    ras = np.stack([ii, jj, kk], axis=1) @ affine[:3, :3].T + affine[:3, 3]
    to_mask = 0.0 if inside else float(np.linalg.norm(ras - peak, axis=1).min())
    return {
        "peak_ras": [float(v) for v in peak],
        "peak_value": float(arr[k, j, i]),
        "peak_in_lesion": inside,
        "distance_to_lesion_mm": to_mask,
        "distance_to_lesion_centre_mm": float(np.linalg.norm(np.asarray(centre_ras) - peak)),
    }


def write_case(case: DemoCase, folder: Path) -> None:
    """The case's image, labels, lesion mask, label names and ground truth, as files."""
    write_volume(case.image, folder / "image.nii.gz")
    write_volume(case.labels, folder / "labels.nii.gz")
    write_volume(case.lesion_mask, folder / "lesion_mask.nii.gz")
    write_json(folder / "label_names.json", {str(k): v for k, v in case.label_names.items()})
    write_json(folder / "case.json", case.describe())


def explain_demo_case(
    out_dir,
    *,
    force: bool,
    title: str,
    write_inputs,
    explain_case,
    summary: dict,
    lesion,
    scene: bool,
    progress,
) -> tuple:
    """Write a demo case's inputs, explain it and write every output plus ``demo.json``, all or nothing.

    ``explain_case(progress)`` returns the Explanation; ``lesion = (mask Volume, centre RAS)`` gives the
    peak report. Returns ``(explanation, report, the written folder)``. Shared by the 3D and the chest X-ray demos.
    """
    from ..export import write_explanation
    from ..io.outputs import OutputDir

    out = OutputDir(out_dir, force=force)
    bar = None
    try:
        if progress is None:
            bar, progress = _progress_bar(title)
        progress(0.0, "making the case")
        write_inputs(out.staging)
        expl = explain_case(lambda f, m: progress(0.05 + 0.8 * f, m))
        progress(0.85, "writing outputs")
        write_explanation(expl, out.staging, scene=scene)
        report = {**summary, "prediction": expl.prediction, **peak_report(expl.attribution, *lesion)}
        write_json(out.staging / "demo.json", report)
        progress(1.0, "done")
        if bar is not None:
            bar.close()
        out.commit()
    except BaseException:
        if bar is not None:
            bar.close()
        out.abort()
        raise
    return expl, report, out.target


def run_demo(
    out_dir: str | os.PathLike,
    seed: int | None = None,
    method: str = "gradcam",
    *,
    force: bool = False,
    model: str | os.PathLike = CARD_PATH,
    scene: bool = True,
    progress: Callable[[float, str], None] | None = None,
    quiet: bool = False,
) -> dict:
    """Make a lesion case (``seed``: a fresh one when None), explain the 'lesion' class, report and write."""
    from ..anatomy.table import format_table
    from ..explain import explain

    say = (lambda *_a: None) if quiet else (lambda *a: print(*a, flush=True))
    seed = fresh_seed() if seed is None else int(seed)
    say(f"demo case seed: {seed} (rerun it with --seed {seed})")
    case = make_case(seed, lesion=True)

    def explain_case(report):
        return explain(
            case.image,
            model,
            method,
            "lesion",
            labels=case.labels,
            label_names=case.label_names,
            seed=seed,
            progress=report,
        )

    expl, report, written = explain_demo_case(
        out_dir,
        force=force,
        title=f"demo {method}",
        write_inputs=lambda folder: write_case(case, folder),
        explain_case=explain_case,
        summary={"seed": seed, "method": method, "case": case.describe()},
        lesion=(case.lesion_mask, case.centre_ras),
        scene=scene,
        progress=progress,
    )
    lesion = case.lesion
    say(
        f"inserted lesion: {lesion.to_dict()['kind']}, contrast {lesion.contrast:+.2f}, semi-axes "
        + " x ".join(f"{a:.1f}" for a in lesion.semi_axes_mm)
        + " mm, centre (RAS mm) "
        + ", ".join(f"{v:.1f}" for v in case.centre_ras)
    )
    pred = expl.prediction
    probs = ", ".join(f"{c}: {p:.3f}" for c, p in zip(pred["classes"], pred["probabilities"], strict=True))
    say(f"prediction: {pred['predicted_class']} ({probs})")
    say(format_table(expl.structures))
    where = "INSIDE" if report["peak_in_lesion"] else "OUTSIDE"
    say(
        f"{method} peak (RAS mm) "
        + ", ".join(f"{v:.1f}" for v in report["peak_ras"])
        + f" lies {where} the inserted lesion: {report['distance_to_lesion_mm']:.1f} mm from the lesion, "
        f"{report['distance_to_lesion_centre_mm']:.1f} mm from its centre"
    )
    say(f"wrote {written}")
    return report


def _progress_bar(desc: str):
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, unit="%", leave=False, disable=not sys.stderr.isatty())

    def update(fraction: float, message: str) -> None:
        bar.set_postfix_str(message[:40])
        bar.n = int(round(100 * max(0.0, min(1.0, fraction))))
        bar.refresh()

    return bar, update
