"""The chest X-ray demo (``xaimed demo --cxr``): a synthetic nodule or opacity in the bundled radiograph,
explained by the bundled 2D classifier through the same ``explain()`` pipeline and export folder.

``run_cxr_demo(out_dir)`` writes the case (``image.nrrd``, a one-slice radiograph volume,
``lesion_mask.nrrd``, ``case.json``), every output of ``xaimed explain`` for it, and ``demo.json``
(prediction, attribution peak and whether it lies inside the inserted lesion). Nothing is
downloaded: the radiograph (the CC0 example radiograph, one of the four training radiographs; the
lesion of a demo seed is new) is read from the shared data folder, the model ships with this package,
and the chest anatomy (lungs, heart, mediastinum, outside the body) is the registered CheXmask atlas.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ..errors import XAIError
from ..io.atomic import write_json
from ..io.volumes import write_volume
from .cxr_cases import BASE_FILES, CLASSES, DEMO_BASE, DEMO_SIZE, CxrCase, load_base, make_cxr_case
from .cxr_model import CARD_PATH
from .run import explain_demo_case, fresh_seed

# occlusion's default box (16 voxels on every axis) does not fit a one-slice volume's single slice
METHOD_PARAMS = {"occlusion": {"window": [16, 16, 1], "stride": [8, 8, 1]}}


def demo_base() -> np.ndarray:
    """The CC0 example radiograph of the shared data folder, as the classifier was trained on it, in [0, 1].

    The radiograph is not shipped with the package (the data folder is the one source of real images):
    it is read from ``$XAIMED_SHARED_DATA/cxr`` or ``../shared/data/cxr``.
    """
    from ..anatomy.cxr_atlas import default_atlas_folder

    path = default_atlas_folder().parent / BASE_FILES[DEMO_BASE]  # BASE_FILES are relative to the data root
    if not path.exists() or not CARD_PATH.exists():
        raise XAIError(
            f"the chest X-ray demo needs {path} and the bundled classifier {CARD_PATH.name}",
            "set XAIMED_SHARED_DATA to the shared data folder (the one holding cxr/)",
        )
    return np.rint(load_base(path, DEMO_SIZE) * 255) / 255.0


def make_demo_case(seed: int) -> CxrCase:
    """The bundled radiograph with a lesion drawn by ``seed`` (not augmented)."""
    return make_cxr_case(demo_base(), seed, lesion=True, augmented=False, base_name=DEMO_BASE)


def lesion_centre_ras(case: CxrCase) -> tuple[float, float, float]:
    row, col = case.lesion.centre_rc
    return tuple(float(v) for v in case.volume().index_to_ras((col, row, 0)))


def run_cxr_demo(
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
    """Make a case (``seed``: a fresh one when None), explain the lesion class, report and write."""
    from ..explain import explain

    say = (lambda *_a: None) if quiet else (lambda *a: print(*a, flush=True))
    seed = fresh_seed() if seed is None else int(seed)
    say(f"chest X-ray demo case seed: {seed} (rerun it with --seed {seed})")
    case = make_demo_case(seed)
    image, mask = case.volume(), case.mask_volume()

    def write_inputs(folder) -> None:
        write_volume(image, folder / "image.nrrd")
        write_volume(mask, folder / "lesion_mask.nrrd")
        write_json(folder / "case.json", {"seed": seed, **case.describe()})

    def explain_case(report):
        return explain(
            image,
            model,
            method,
            CLASSES[1],
            seed=seed,
            method_params=METHOD_PARAMS.get(method),
            anatomy="chest",
            progress=report,
        )

    expl, report, written = explain_demo_case(
        out_dir,
        force=force,
        title=f"cxr demo {method}",
        write_inputs=write_inputs,
        explain_case=explain_case,
        summary={"seed": seed, "method": method, "case": case.describe()},
        lesion=(mask, lesion_centre_ras(case)),
        scene=scene,
        progress=progress,
    )
    lesion = case.lesion
    say(
        f"inserted {lesion.kind} in the {lesion.side}: radius {lesion.radius_px:.1f} px, density "
        f"+{lesion.amplitude:.2f}, centre (row, column) {lesion.centre_rc[0]:.0f}, {lesion.centre_rc[1]:.0f}"
    )
    pred = expl.prediction
    probs = ", ".join(f"{c}: {p:.3f}" for c, p in zip(pred["classes"], pred["probabilities"], strict=True))
    say(f"prediction: {pred['predicted_class']} ({probs})")
    where = "INSIDE" if report["peak_in_lesion"] else "OUTSIDE"
    say(
        f"{method} peak lies {where} the inserted lesion: {report['distance_to_lesion_mm']:.1f} px from "
        f"it, {report['distance_to_lesion_centre_mm']:.1f} px from its centre (1 mm pixels)"
    )
    say(f"wrote {written}")
    return report
