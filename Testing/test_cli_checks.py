"""``xaimed explain --validate --rules FILE``: the map's checks feed the rules, a user's rules file is used."""

from __future__ import annotations

import json

import numpy as np
from safetensors.torch import save_file

from tinynets import small_densenet
from XAIMedSlicerLib.cli import main
from XAIMedSlicerLib.io.volumes import write_volume

RULES = """version: 1
rules:
  - name: always_low_confidence_here
    condition: confidence < 2
    severity: warning
    action: downgrade
    message: "A site rule: every prediction is reviewed."
    source: a site policy, not a measured threshold
"""


def test_validate_feeds_the_rules_and_a_user_rules_file_is_used(tmp_path, oblique_volume, capsys):
    image = write_volume(oblique_volume, tmp_path / "scan.nrrd")
    labels = np.zeros(oblique_volume.array.shape, np.int16)
    labels[6:13, 12:20, 8:16] = 1
    label_path = write_volume(oblique_volume.with_array(labels), tmp_path / "labels.nrrd")
    save_file(small_densenet().state_dict(), str(tmp_path / "dense.safetensors"))
    card = {"name": "d", "task": "classification", "classes": ["a", "b"], "weights": "dense.safetensors",
            "network": {"name": "DenseNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                        "init_features": 8, "growth_rate": 4, "block_config": [2, 2]}}}  # fmt: skip
    model = tmp_path / "card.json"
    model.write_text(json.dumps(card))
    base = ["explain", "--image", str(image), "--model", str(model), "--labels", str(label_path),
            "--method", "saliency", "--target", "0"]  # fmt: skip

    plain = tmp_path / "plain"
    assert main([*base, "--out", str(plain)]) == 0, capsys.readouterr().err
    fired = {r["name"] for r in json.loads((plain / "rules.json").read_text())["rules"] if r.get("fired")}
    assert "randomisation_not_run" in fired

    checked = tmp_path / "checked"
    assert main([*base, "--validate", "--out", str(checked)]) == 0, capsys.readouterr().err
    provenance = json.loads((checked / "provenance.json").read_text())
    validation = provenance["validation"]
    assert validation["randomisation"] and validation["deletion"], validation["text"]
    rules = json.loads((checked / "rules.json").read_text())["rules"]
    fired = {r["name"] for r in rules if r.get("fired")}
    assert "randomisation_not_run" not in fired
    assert ("randomisation_failed" in fired) == ("randomisation" in validation["failed_checks"])
    text = (checked / "explanation.txt").read_text()
    assert "randomisation" in text.lower() and "not run" not in text.lower().split("randomisation")[1][:40]

    own = tmp_path / "site.yaml"
    own.write_text(RULES)
    site = tmp_path / "site"
    assert main([*base, "--rules", str(own), "--out", str(site)]) == 0, capsys.readouterr().err
    doc = json.loads((site / "rules.json").read_text())
    assert [r["name"] for r in doc["rules"]] == ["always_low_confidence_here"]
    assert doc["rules"][0]["fired"] and doc["rules_file"] == str(own)
    assert "A site rule: every prediction is reviewed." in (site / "explanation.txt").read_text()
