"""The demo end to end: a seeded case explained by the committed model through ``explain``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from XAIMedSlicerLib.demo.cases import make_case
from XAIMedSlicerLib.demo.run import run_demo
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.io.volumes import read_volume

SEED = 3_100_000  # outside the training and held-aside seeds


def test_run_demo_writes_the_case_and_reports_the_peak(tmp_path, capsys):
    out = tmp_path / "demo"
    report = run_demo(out, seed=SEED, method="gradcam", scene=False)
    printed = capsys.readouterr().out
    assert f"demo case seed: {SEED}" in printed and "prediction:" in printed and "grey matter" in printed
    for name in ("image.nii.gz", "labels.nii.gz", "lesion_mask.nii.gz", "attribution.nrrd", "demo.json"):
        assert (out / name).exists(), name
    case = make_case(SEED, lesion=True)
    image = read_volume(out / "image.nii.gz")
    mask = read_volume(out / "lesion_mask.nii.gz")
    attribution = read_volume(out / "attribution.nrrd")
    # the written case is the seeded case, on the template grid, and the attribution is on that grid too
    assert image.same_grid(case.image, tol=1e-4) and attribution.same_grid(case.image, tol=1e-4)
    np.testing.assert_allclose(image.array, case.image.array, atol=1e-6)
    np.testing.assert_array_equal(mask.array, case.lesion_mask.array)
    # the report matches a direct computation on the files
    k, j, i = np.unravel_index(int(np.argmax(attribution.array)), attribution.array.shape)
    np.testing.assert_allclose(report["peak_ras"], attribution.index_to_ras((i, j, k)), atol=1e-4)
    assert report["peak_in_lesion"] == bool(mask.array[k, j, i])
    lesion_ras = np.array([mask.index_to_ras(v[::-1]) for v in np.argwhere(mask.array > 0)])
    distance = np.linalg.norm(lesion_ras - np.asarray(report["peak_ras"]), axis=1).min()
    assert report["distance_to_lesion_mm"] == pytest.approx(distance, abs=1e-4)
    np.testing.assert_allclose(report["case"]["lesion_centre_ras"], case.centre_ras, atol=1e-4)
    saved = json.loads((out / "demo.json").read_text())
    assert saved["seed"] == SEED and saved["peak_in_lesion"] == report["peak_in_lesion"]
    assert report["prediction"]["classes"] == ["no lesion", "lesion"]


def test_run_demo_refuses_a_non_empty_folder(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(XAIError, match="not empty"):
        run_demo(out, seed=SEED, scene=False, quiet=True)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".demo")]
