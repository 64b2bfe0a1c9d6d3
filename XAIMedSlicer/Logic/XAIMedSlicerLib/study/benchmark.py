"""The synthetic-lesion benchmark (``xaimed benchmark``): every method x dataset, scored by the metrics.

For each dataset (real scans and the nilearn template, see ``benchmark_data``) a tiny lesion detector
is trained on seeded cases inside the benchmark (the project has no CT, MR or T1 lesion classifiers;
see ``tiny_classifier``), its accuracy is measured on held-out cases, and every registered attribution
method explains the "lesion" logit on lesion cases. Scores: pointing game and share of positive
attribution inside the lesion mask (the ground truth by construction), deletion AUC of the lesion
probability against random orders, and the cascading randomisation check. Everything is seeded.
``SETTINGS["full"]`` runs on two CPU cores in well under 20 minutes, ``SETTINGS["ci"]`` in about a minute.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import XAIError
from ..io.atomic import write_json, write_text
from ..methods.targets import ClassTarget
from ..metrics.faithfulness import evaluate_faithfulness
from ..metrics.localisation import energy_pointing_game, pointing_game
from ..metrics.randomisation import cascading_randomisation
from ..metrics.results import JSONResult
from .benchmark_data import DATASETS, load_scan, make_cases, to_input, to_xyz
from .tiny_classifier import GRADCAM_LAYER, accuracy, train_classifier

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class BenchmarkSettings:
    """Sizes of the run; ``seed`` fixes every random draw."""

    seed: int = 0
    grid: int = 32
    n_train: int = 160
    n_test: int = 60
    n_eval: int = 8
    epochs: int = 8
    steps: int = 20
    n_random: int = 2
    datasets: tuple[str, ...] = ("ct", "mr", "brain", "template")
    methods: tuple[str, ...] | None = None  # None: every registered method, plus guided backprop
    sanity_threshold: float = 0.5


NOT_APPLICABLE = "not applicable: "

SETTINGS = {
    "full": BenchmarkSettings(),
    "ci": BenchmarkSettings(grid=24, n_train=48, n_test=24, n_eval=1, epochs=4, steps=8, n_random=1),
}


@dataclass
class MethodScore(JSONResult):
    """One method on one dataset, averaged over the lesion cases."""

    method: str
    dataset: str
    pointing_game: float
    energy_inside: float
    deletion_auc: float
    deletion_auc_random: float
    sanity_passed: bool
    sanity_mean_spearman: float
    n_cases: int
    seconds: float
    constant_maps: int = 0
    error: str = ""


@dataclass
class BenchmarkResult(JSONResult):
    """Settings, per-dataset classifier facts, and one score row per method and dataset."""

    settings: dict
    datasets: dict = field(default_factory=dict)
    scores: list[MethodScore] = field(default_factory=list)


def benchmark_methods(settings: BenchmarkSettings) -> dict[str, Callable]:
    """Method name -> function(model, x, target): the registered ones and the guided-backprop stand-in."""
    from ..methods import available_methods, get_method
    from ..metrics.reference_methods import resolve

    names = list(settings.methods or [*available_methods(), "guided_backprop"])
    table = {}
    for name in dict.fromkeys(names):
        try:
            spec = get_method(name)
            fn, params = spec.fn, ({"layer": GRADCAM_LAYER} if spec.needs_layer else {})
        except XAIError:
            fn, params = resolve(name), {}
        params.update(method_params(name, settings))
        table[name] = _bind(fn, params)
    return table


def method_params(name: str, settings: BenchmarkSettings) -> dict:
    """Parameters fitted to the small model grid and the time budget: occlusion with non-overlapping
    windows of a quarter of the grid, SmoothGrad with 10 samples.

    Occlusion's incremental mode crops the input, which the detectors' full-size reference buffer
    does not allow, so it runs on whole inputs here.
    """
    if name == "occlusion":
        window = max(4, round(settings.grid / 4))
        return {"window": window, "stride": window, "incremental": False}
    if name == "smoothgrad":
        return {"samples": 10}
    return {}


def _bind(fn, params):
    def run(model, x, target):
        return fn(model, x, target, **params).map

    return run


def lesion_probability(output: torch.Tensor) -> torch.Tensor:
    """The deletion curves follow the lesion probability (bounded, unlike the logit): raw AUCs compare."""
    return torch.softmax(output, dim=1)[:, 1]


def score_method(
    name, explain, model, cases, healthy, settings: BenchmarkSettings, dataset: str
) -> MethodScore:
    """Localisation and deletion over ``cases``; the randomisation check on the first non-constant map.

    Deleted voxels take the values of ``healthy`` (the input without lesion, known by construction): that
    removes the lesion without creating new structure, as blurring or a constant would.

    A constant map (e.g. Grad-CAM with every channel weight negative) points nowhere: it counts as a
    miss and has no energy or deletion curve.
    """
    start = time.perf_counter()
    target = ClassTarget(1, "lesion")
    hits, energy, dele, dele_r, informative = [], [], [], [], []
    for n, case in enumerate(cases):
        x = to_input(case.image)
        attribution = explain(model, x, target).detach().cpu().numpy().astype(np.float64)
        mask = to_xyz(case.lesion) > 0
        if np.ptp(attribution) == 0:
            hits.append(0.0)
            continue
        informative.append(x)
        hits.append(float(pointing_game(attribution, mask)))
        energy.append(float(energy_pointing_game(attribution, mask)))
        faith = evaluate_faithfulness(
            model, x, lesion_probability, attribution, steps=settings.steps, n_random=settings.n_random,
            seed=settings.seed + n, deletion_replacement=healthy, insertion=False,
        )  # fmt: skip
        dele.append(faith.deletion.auc)
        dele_r.append(faith.deletion_random.auc)
    passed, rho = False, float("nan")
    if informative:
        sanity = cascading_randomisation(
            model, informative[0], target, explain, method=name, seed=settings.seed + 42,
            threshold=settings.sanity_threshold,
        )  # fmt: skip
        passed, rho = sanity.passed, sanity.mean_spearman
    return MethodScore(
        method=name,
        dataset=dataset,
        pointing_game=float(np.mean(hits)),
        energy_inside=_nanmean(energy),
        deletion_auc=_nanmean(dele),
        deletion_auc_random=_nanmean(dele_r),
        sanity_passed=passed,
        sanity_mean_spearman=rho,
        n_cases=len(cases),
        constant_maps=len(cases) - len(informative),
        seconds=round(time.perf_counter() - start, 2),
    )


def detected_lesions(model, scan, n: int, seed: int) -> tuple[list, int]:
    """``n`` lesion cases, preferring those the classifier detects (explanations of correct decisions).

    Draws up to ``4 n`` cases; returns the chosen ones and how many of them are detected.
    """
    pool = make_cases(scan, 4 * n, seed, lesion_only=True)
    with torch.no_grad():
        prob = torch.cat([lesion_probability(model(to_input(c.image))) for c in pool]).numpy()
    hit = [c for c, p in zip(pool, prob, strict=True) if p > 0.5]
    miss = [c for c, p in zip(pool, prob, strict=True) if p <= 0.5]
    chosen = (hit + miss)[:n]
    return chosen, min(len(hit), n)


def failed_score(method: str, dataset: str, error: str) -> MethodScore:
    """The row of a method that does not apply to the network or failed."""
    nan = float("nan")
    return MethodScore(method, dataset, nan, nan, nan, nan, False, nan, 0, 0.0, 0, error)


def _nanmean(values) -> float:
    v = np.asarray(values, float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def run_benchmark(
    out_dir: str | os.PathLike | None = None,
    settings: BenchmarkSettings | str = "full",
    *,
    data_root: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> BenchmarkResult:
    """Run the benchmark; with ``out_dir`` write ``benchmark.md`` and ``benchmark.json`` there (atomically)."""
    if isinstance(settings, str):
        if settings not in SETTINGS:
            raise XAIError(f"unknown benchmark setting '{settings}'", f"use one of {', '.join(SETTINGS)}")
        settings = SETTINGS[settings]
    unknown = [d for d in settings.datasets if d not in DATASETS]
    if unknown:
        raise XAIError(f"unknown benchmark datasets {unknown}", f"use some of {', '.join(DATASETS)}")
    methods = benchmark_methods(settings)
    from ..methods import available_methods

    stand_ins = [m for m in methods if m not in available_methods()]
    result = BenchmarkResult(settings={**asdict(settings), "methods": list(methods), "stand_ins": stand_ins})
    threads = torch.get_num_threads()
    n_steps, done = len(settings.datasets) * (1 + len(methods)), 0
    for d, name in enumerate(settings.datasets):
        seed = settings.seed * 1000 + 10 * d
        t0 = time.perf_counter()
        scan = load_scan(DATASETS[name], settings.grid, data_root)
        train = make_cases(scan, settings.n_train, seed + 1)
        test = make_cases(scan, settings.n_test, seed + 2)
        model, stats = train_classifier(train, scan.image, epochs=settings.epochs, seed=seed)
        lesions, detected = detected_lesions(model, scan, settings.n_eval, seed + 3)
        done += 1
        result.datasets[name] = {
            "description": DATASETS[name].description,
            "structures": list(scan.structure_names),
            "grid": list(scan.image.size),
            "spacing_mm": [round(s, 3) for s in scan.image.spacing],
            "classifier": "TinyLesionNet trained in the benchmark (seeded); no project classifier for this data",
            **stats,
            "test_accuracy": accuracy(model, test),
            "test_cases": len(test),
            "lesion_voxels": [int(c.lesion.array.sum()) for c in lesions],
            "eval_cases_detected": detected,
            "train_seconds": round(time.perf_counter() - t0, 2),
        }
        if progress:
            progress(
                done / n_steps, f"{name}: classifier accuracy {result.datasets[name]['test_accuracy']:.2f}"
            )
        for method, explain in methods.items():
            try:
                result.scores.append(
                    score_method(method, explain, model, lesions, to_input(scan.image), settings, name)
                )
            except Exception as exc:  # noqa: BLE001 - one failing method must not stop the benchmark
                prefix = NOT_APPLICABLE if isinstance(exc, XAIError) else f"{type(exc).__name__}: "
                result.scores.append(failed_score(method, name, f"{prefix}{exc}"[:300]))
            done += 1
            if progress:
                progress(done / n_steps, f"{name}: {method} scored")
    torch.set_num_threads(threads)
    if out_dir is not None:
        out = Path(out_dir)
        write_json(out / "benchmark.json", result.to_dict())
        write_text(out / "benchmark.md", benchmark_markdown(result))
    return result


def _f(v: float) -> str:
    return "–" if v is None or v != v else f"{v:.2f}"


def _cell(score: MethodScore | None, fmt) -> str:
    if score is None:
        return "–"
    if score.error:
        return "n/a" if score.error.startswith(NOT_APPLICABLE) else "error"
    return fmt(score)


def benchmark_markdown(result: BenchmarkResult) -> str:
    """Tables method x dataset for each score, and the classifiers."""
    datasets = list(result.datasets)
    methods = list(dict.fromkeys(s.method for s in result.scores))
    cell = {(s.method, s.dataset): s for s in result.scores}
    s = result.settings
    lines = [
        "# Synthetic-lesion benchmark",
        "",
        f"Seed {s['seed']}, model grid {s['grid']}^3, {s['n_eval']} lesion cases per dataset, "
        f"deletion with {s['steps']} steps (removed voxels take the lesion-free scan's values) "
        f"against {s['n_random']} random orders.",
        "",
        "| dataset | structures | classifier | test accuracy | lesion voxels |",
        "|---|---|---|---|---|",
    ]
    for name, d in result.datasets.items():
        lines.append(
            f"| {name} | {', '.join(d['structures'])} | {d['classifier']} | {d['test_accuracy']:.2f} "
            f"(n={d['test_cases']}) | {min(d['lesion_voxels'])}–{max(d['lesion_voxels'])} |"
        )
    tables = [
        ("Pointing game (share of cases whose peak is in the lesion)", lambda c: _f(c.pointing_game)),
        ("Energy inside the lesion (share of positive attribution)", lambda c: _f(c.energy_inside)),
        ("Deletion AUC of the lesion probability (method / random order; lower is better)", lambda c: f"{_f(c.deletion_auc)} / {_f(c.deletion_auc_random)}"),
        ("Sanity: cascading randomisation (mean Spearman)", lambda c: f"{'pass' if c.sanity_passed else 'FAIL'} ({_f(c.sanity_mean_spearman)})"),
    ]  # fmt: skip
    for title, fmt in tables:
        lines += [
            "",
            f"## {title}",
            "",
            "| method | " + " | ".join(datasets) + " |",
            "|---" * (len(datasets) + 1) + "|",
        ]
        for m in methods:
            lines.append(f"| {m} | " + " | ".join(_cell(cell.get((m, d)), fmt) for d in datasets) + " |")
    if result.settings.get("stand_ins"):
        lines += [
            "",
            f"{', '.join(result.settings['stand_ins'])}: the metrics package's stand-in (not registered).",
        ]
    errors = [f"- {c.method} on {c.dataset}: {c.error}" for c in result.scores if c.error]
    if errors:
        lines += ["", "## Not applicable or failed", "", *errors]
    return "\n".join(lines) + "\n"


def with_overrides(settings: BenchmarkSettings, **changes) -> BenchmarkSettings:
    """A copy of ``settings`` with some fields changed (for the CLI's options)."""
    return replace(settings, **changes)
