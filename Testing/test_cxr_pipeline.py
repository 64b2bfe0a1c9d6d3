"""A radiograph explained with its chest anatomy: structures, evidence outside the body, rules and text."""

from __future__ import annotations

import csv
import json

import numpy as np

from XAIMedSlicerLib.cli import main
from XAIMedSlicerLib.demo.cxr_model import CARD_PATH
from XAIMedSlicerLib.io.volumes import read_volume

CHEST = {"right lung", "left lung", "heart", "mediastinum"}


def test_explain_a_radiograph_with_chest_anatomy(tmp_path, shared_data, capsys):
    image = shared_data("cxr/00000001_000.png")
    out = tmp_path / "out"
    code = main(["explain", "--image", str(image), "--model", str(CARD_PATH), "--method", "gradcam",
                 "--anatomy", "chest", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with open(out / "structures.csv", newline="") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert CHEST | {"outside body"} <= set(rows)
    # the shares equal a direct computation on the written map and labels
    attribution = np.maximum(read_volume(out / "attribution.nrrd").array.astype(np.float64), 0.0)
    labels = read_volume(out / "labels.nrrd").array
    assert labels.shape == attribution.shape == (1, 512, 512)
    names = json.loads((out / "explanation.json").read_text())["label_names"]
    value = {v: int(k) for k, v in names.items()}
    total = attribution.sum()
    for name in CHEST | {"outside body"}:
        share = attribution[labels == value[name]].sum() / total
        assert abs(float(rows[name]["positive_share"]) - share) < 1e-4, name
    # the right lung lies on the image's left (patient's right, radiological view): its mean column is smaller
    cols = np.arange(512)[None, None, :]
    right = float((cols * (labels == value["right lung"])).sum() / (labels == value["right lung"]).sum())
    left = float((cols * (labels == value["left lung"])).sum() / (labels == value["left lung"]).sum())
    assert right < left
    # "outside body" is labelled but is not anatomy: the outside-anatomy fact counts it as outside
    facts = {f["ref"]: f for f in json.loads((out / "facts.json").read_text())["facts"]}
    inside = attribution[np.isin(labels, [value[n] for n in CHEST])].sum() / total
    assert abs(facts["O1"]["share_percent"] - 100 * (1 - inside)) < 0.051
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["anatomy"] == "chest"
    page = (out / "report.html").read_text()
    assert "Area in the image (cm²)" in page and "Volume (mL)" not in page  # a projection has no volume


def test_radiograph_text_gives_areas_and_parses_back(tmp_path, shared_data, capsys):
    """On a radiograph the words give areas in the image plane (a projection has no volume), and the
    text still reads back into exactly the written facts."""
    from XAIMedSlicerLib.reasoning.facts import fact_to_dict
    from XAIMedSlicerLib.reasoning.text import parse_text

    out = tmp_path / "out"
    code = main(["explain", "--image", str(shared_data("cxr/00027426_000.png")), "--model", str(CARD_PATH),
                 "--method", "saliency", "--anatomy", "chest", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    text = (out / "explanation.txt").read_text()
    assert " mL" not in text and "cm² in the image plane" in text
    written = json.loads((out / "facts.json").read_text())["facts"]
    assert json.loads(json.dumps([fact_to_dict(f) for f in parse_text(text)])) == written
    rows = json.loads((out / "structures.json").read_text())
    spacing = read_volume(out / "attribution.nrrd").spacing
    by_name = {f["name"]: f for f in written if f["kind"] == "structure"}
    for row in rows if isinstance(rows, list) else rows["structures"]:
        if row["name"] in by_name:
            area = row["voxels"] * spacing[0] * spacing[1] / 100.0
            assert abs(by_name[row["name"]]["area_cm2"] - area) <= 5e-4 * max(1.0, area)
