"""Write an Explanation to a folder: map, tables, pictures, Slicer scene, provenance."""

from __future__ import annotations

from pathlib import Path

from .anatomy.table import write_structures
from .explanation import Explanation
from .explanation_io import INDEX, save_explanation
from .io.atomic import write_json


def write_explanation(
    explanation: Explanation,
    folder: Path,
    *,
    opacity: float = 0.5,
    scene: bool = True,
    rules: str | Path | None = None,
    model=None,
) -> list[Path]:
    """Write every output of one explanation into ``folder`` and return the paths.

    The core in the one layout (``explanation_io``: ``explanation.json``, ``attribution.nrrd`` float32
    on the input grid, ``labels.nrrd``), ``structures.csv``/``.json`` when labels
    were given, the three ``overlay_*.png`` views, the annotated ``figure_*.png``, ``scene.mrb`` and
    ``provenance.json``; then the rules' results and the text (``rules`` file, default the shipped one;
    ``model`` a LoadedModel for the anatomy-masking check, else reloaded) and ``report.html``.
    """
    folder = Path(folder)
    save_explanation(explanation, folder)
    paths = [folder / INDEX, folder / "attribution.nrrd"]
    if explanation.labels is not None:
        paths.append(folder / "labels.nrrd")
        paths += write_structures(explanation.structures, folder)
    if scene:
        from .scene import build_scene, render_views, save_mrb

        bundle = build_scene(explanation)
        paths += list(render_views(bundle, folder, opacity=opacity).values())
        from .scene.figure import render_figures

        paths += [f.path for f in render_figures(bundle, explanation, folder, opacity=opacity).values()]
        paths.append(save_mrb(bundle.ss, folder / "scene.mrb"))
    record = {
        **explanation.provenance,
        "prediction": explanation.prediction,
        "signed": explanation.signed,
        "attribution_peak_ras": explanation.peak_ras(),
    }
    write_json(folder / "provenance.json", record)
    paths.append(folder / "provenance.json")
    from .reasoning import write_reasoning  # rules.json, explanation.txt, facts.json

    paths += write_reasoning(explanation, folder, rules=rules, model=model)
    from .report import write_report  # last: it reads everything above from the folder

    paths.append(write_report(folder))
    return paths
