"""``xaimed explain --out DIR`` writes the rules' results and the text; the writer leaves nothing half-done."""

from __future__ import annotations

import json

import pytest
import torch

from XAIMedSlicerLib.cli import main
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.reasoning.facts import StructureFact, fact_from_dict
from XAIMedSlicerLib.reasoning.rules import load_rules
from XAIMedSlicerLib.reasoning.text import parse_text

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    from XAIMedSlicerLib.demo.cases import make_case
    from XAIMedSlicerLib.demo.run import write_case

    folder = tmp_path_factory.mktemp("case")
    write_case(make_case(6_100_002, lesion=True), folder)
    return folder


def test_explain_writes_rules_text_and_facts(demo_files, tmp_path, capsys):
    from XAIMedSlicerLib.demo.model import CARD_PATH

    out = tmp_path / "out"
    code = main(["explain", "--image", str(demo_files / "image.nii.gz"), "--model", str(CARD_PATH),
                 "--labels", str(demo_files / "labels.nii.gz"), "--label-names", str(demo_files / "label_names.json"),
                 "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    text = (out / "explanation.txt").read_text(encoding="utf-8")
    facts_doc = json.loads((out / "facts.json").read_text(encoding="utf-8"))
    rules_doc = json.loads((out / "rules.json").read_text(encoding="utf-8"))
    facts = tuple(fact_from_dict(f) for f in facts_doc["facts"])
    assert parse_text(text) == facts  # the text states exactly the facts on file
    rows = json.loads((out / "structures.json").read_text(encoding="utf-8"))
    structures = [f for f in facts if isinstance(f, StructureFact)]
    assert [f.name for f in structures] == [r["name"] for r in rows]
    for fact, row in zip(structures, rows, strict=True):
        assert fact.share_percent == pytest.approx(100 * row["positive_share"], abs=0.05)
    shipped = load_rules()
    assert [r["name"] for r in rules_doc["rules"]] == [r.name for r in shipped.rules]
    assert all(r["source"] for r in rules_doc["rules"])
    fired = [r["name"] for r in rules_doc["rules"] if r["fired"]]
    assert rules_doc["fired"] == fired
    assert [f["rule"] for f in facts_doc["facts"] if f["kind"] == "rule"] == fired
    decision = rules_doc["decision"]
    assert facts_doc["facts"][-1]["decision"] == decision["decision"]
    assert "randomisation_not_run" in fired  # the CLI does not run the checks
    masking = next(f for f in facts_doc["facts"] if f["kind"] == "masking")
    assert masking["status"] == "checked"  # the model named in the provenance was reloaded
    prediction = json.loads((out / "explanation.json").read_text(encoding="utf-8"))["prediction"]
    assert decision["network_class"] == prediction["predicted_class"]


def test_bad_rules_file_writes_nothing(tmp_path, oblique_volume):
    from XAIMedSlicerLib.explanation import Explanation
    from XAIMedSlicerLib.reasoning import write_reasoning

    expl = Explanation(
        image=oblique_volume, attribution=oblique_volume, signed=True, method="saliency",
        prediction={"task": "classification", "classes": ["a", "b"], "probabilities": [0.4, 0.6],
                    "predicted_index": 1, "predicted_class": "b"},
        target={"kind": "class_logit", "class_index": 1, "class_name": "b"},
    )  # fmt: skip
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: 1\nrules:\n  - name: x\n    condition: open('f')\n", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(XAIError):
        write_reasoning(expl, out, rules=bad)
    assert not out.exists() or not any(out.iterdir())
    paths = write_reasoning(expl, out)
    assert sorted(p.name for p in out.iterdir()) == ["explanation.txt", "facts.json", "rules.json"]
    assert sorted(p.name for p in paths) == sorted(p.name for p in out.iterdir())
    masking = next(f for f in json.loads((out / "facts.json").read_text())["facts"] if f["kind"] == "masking")
    assert masking["status"] == "not checked" and masking["reason"] == "no anatomical label map"
