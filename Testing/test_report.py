"""report.html: written last by ``write_explanation`` for the real demo case and model, rendered in Debian's
Chromium through Playwright; the page's structure table equals structures.csv, its figures load, its
rule flags and sentences are those of rules.json / explanation.txt; optional files may be absent."""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explanation import Explanation
from XAIMedSlicerLib.explanation_io import save_explanation
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.atomic import atomic_path
from XAIMedSlicerLib.report import REPORT, write_report

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SEED = 3_100_007  # outside the demo model's training and held-aside seeds


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    """The demo case explained by the bundled model, every output written by write_explanation."""
    from XAIMedSlicerLib.demo.run import run_demo

    out = tmp_path_factory.mktemp("report") / "demo"
    run_demo(out, seed=SEED, method="gradcam", quiet=True)
    return out


def open_page(browser, path: Path, width: int = 1400):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page


def test_report_in_chromium_shows_the_folder(browser, demo_folder):
    report = demo_folder / REPORT
    assert report.is_file()
    html = report.read_text(encoding="utf-8")
    page = open_page(browser, report)
    # the structure table: every row and cell is structures.csv's, in its order
    with open(demo_folder / "structures.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns, expected = reader.fieldnames, list(reader)
    assert len(expected) >= 2
    shown_columns = page.eval_on_selector_all(
        "#structure-table thead th", "e => e.map(x => x.dataset.column)"
    )
    assert shown_columns == columns
    cells = page.eval_on_selector_all(
        "#structure-table tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => [c.dataset.value, c.innerText.trim()]))",
    )
    assert [[value for value, _ in row] for row in cells] == [[r[c] for c in columns] for r in expected]
    for row, record in zip(cells, expected, strict=True):
        for (_, text), column in zip(row, columns, strict=True):
            if column == "name":
                assert text == record[column]
            elif column == "positive_share":
                assert float(text.rstrip("%")) == pytest.approx(100 * float(record[column]), abs=0.05)
            else:
                assert float(text) == pytest.approx(float(record[column]), rel=5e-4, abs=0.05)
    outside = 1.0 - sum(float(r["positive_share"]) for r in expected)
    footer = page.inner_text("#structure-table tfoot")
    assert f"{100 * outside:.1f}%" in footer

    # the three figures are embedded (the PNG files' own bytes) and loaded at their own size
    images = page.eval_on_selector_all(
        "#figures img", "e => e.map(i => [i.id, i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert [i[0] for i in images] == ["figure-axial", "figure-coronal", "figure-sagittal"]
    from PIL import Image

    for (element_id, complete, width, height), view in zip(
        images, ("axial", "coronal", "sagittal"), strict=True
    ):
        png = demo_folder / f"figure_{view}.png"
        assert complete and width > 0 and (width, height) == Image.open(png).size, element_id
        src = page.get_attribute(f"#{element_id}", "src")
        assert base64.b64decode(src.split(",", 1)[1]) == png.read_bytes()

    # summary: prediction and peak as recorded
    index = json.loads((demo_folder / "explanation.json").read_text())
    prediction = page.inner_text("#prediction")
    assert index["prediction"]["predicted_class"] in prediction
    for c, p in zip(index["prediction"]["classes"], index["prediction"]["probabilities"], strict=True):
        assert f"{c}: {100 * p:.1f}%" in prediction
    peak = json.loads((demo_folder / "provenance.json").read_text())["attribution_peak_ras"]
    assert f"R {peak[0]:.1f}, A {peak[1]:.1f}, S {peak[2]:.1f}" in page.inner_text("#summary")
    assert index["provenance"]["model"]["sha256"] in page.inner_text("#provenance")

    # rule flags and sentences when the reasoning files are there, a note when they are not
    rules_path = demo_folder / "rules.json"
    fired = page.eval_on_selector_all(".flag.fired", "e => e.map(x => x.dataset.rule)")
    if rules_path.is_file():
        assert sorted(fired) == sorted(json.loads(rules_path.read_text())["fired"])
    else:
        assert fired == [] and "rules.json absent" in page.inner_text("#flags")
    text_path = demo_folder / "explanation.txt"
    items = page.eval_on_selector_all("#text li", "e => e.length")
    if text_path.is_file():
        assert items == len([line for line in text_path.read_text().splitlines() if line.strip()])
    assert "<script" not in html  # a static page: nothing runs

    # the example screenshot for the docs, looked at by a person
    shot = REPO / "docs" / "report-example.png"
    with atomic_path(shot) as tmp:
        page.screenshot(path=str(tmp), full_page=True)
    assert Image.open(shot).size[0] == 1400
    page.close()


def _small_explanation() -> Explanation:
    volume = Volume(np.zeros((6, 7, 8), np.float32), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    attribution = np.zeros((6, 7, 8), np.float32)
    attribution[3, 4, 5] = 2.5
    return Explanation(
        image=volume.with_array(np.ones((6, 7, 8), np.float32)),
        attribution=volume.with_array(attribution),
        signed=False,
        method="ig",
        prediction={
            "task": "classification",
            "classes": ["a", "b"],
            "probabilities": [0.25, 0.75],
            "predicted_class": "b",
        },  # fmt: skip
        target={"kind": "class_logit", "class_index": 1, "class_name": "b"},
        provenance={"model": {"name": "tiny <net>", "sha256": "ef" * 32}, "created": "2026-01-01T00:00:00Z"},
    )


def test_report_of_a_bare_folder_and_of_handwritten_reasoning_files(tmp_path, browser):
    folder = tmp_path / "bare"
    save_explanation(_small_explanation(), folder)
    path = write_report(folder)
    page = open_page(browser, path)
    assert page.eval_on_selector_all("#figures img", "e => e.length") == 0
    assert "rules.json absent" in page.inner_text("#flags")
    assert "explanation.txt absent" in page.inner_text("#text")
    assert "without a label map" in page.inner_text("#structures")
    assert "Integrated Gradients explanation of b" in page.inner_text("header")
    assert "tiny <net>" in page.inner_text("#summary")  # escaped, shown as text
    page.close()

    rules = {
        "format_version": 1,
        "rules_file": "rules.yaml",
        "rules": [
            {"name": "quiet_rule", "severity": "info", "action": "none", "fired": False, "message": None,
             "source": "null distribution of 200 cases"},
            {"name": "shortcut", "severity": "critical", "action": "abstain", "fired": True,
             "message": "Evidence for *b* lies outside the anatomy (71%).", "source": "95th percentile"},
        ],
        "fired": ["shortcut"],
        "decision": {"decision": "abstain", "final_class": None, "changed_by": ["shortcut"]},
    }  # fmt: skip
    (folder / "rules.json").write_text(json.dumps(rules))
    (folder / "facts.json").write_text(json.dumps({"facts": [{"kind": "prediction", "ref": "P1"}]}))
    (folder / "explanation.txt").write_text("The network predicts *b*. [P1]\nA line <b>without</b> a fact.\n")
    page = open_page(browser, write_report(folder))
    assert page.eval_on_selector_all(".flag.fired", "e => e.map(x => x.dataset.rule)") == ["shortcut"]
    flag = page.inner_text(".flag.fired")
    assert "critical" in flag.lower() and "71%" in flag and "95th percentile" in flag
    assert page.inner_text("em >> nth=1") == "b"  # *b* became emphasis
    assert "abstain" in page.inner_text("#decision") and "shortcut" in page.inner_text("#decision")
    assert page.eval_on_selector_all(".rule-passed", "e => e.map(x => x.dataset.rule)") == ["quiet_rule"]
    items = page.eval_on_selector_all("#text li", "e => e.map(x => [x.dataset.ref, x.innerText])")
    assert items[0][0] == "P1" and "prediction fact" in items[0][1]
    assert items[1] == ["", "A line <b>without</b> a fact."]  # escaped, not markup
    page.close()


def test_bad_folders_give_one_line_errors_and_no_report(tmp_path):
    with pytest.raises(XAIError, match="explanation.json missing"):
        write_report(tmp_path)
    folder = tmp_path / "case"
    save_explanation(_small_explanation(), folder)
    (folder / "rules.json").write_text("{not json")
    with pytest.raises(XAIError, match="rules.json is not valid JSON"):
        write_report(folder)
    (folder / "rules.json").unlink()
    (folder / "structures.csv").write_text("label,name\n1,a,extra\n")
    with pytest.raises(XAIError, match="not a structure table"):
        write_report(folder)
    assert not (folder / REPORT).exists()
    assert not [p for p in folder.iterdir() if re.search(r"\.tmp|~", p.name)]
    shutil.rmtree(folder)
