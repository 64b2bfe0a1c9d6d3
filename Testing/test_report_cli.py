"""``xaimed report DIR --pdf``: the report rebuilt from an explain folder, and printed by Chromium."""

from __future__ import annotations

import re

import numpy as np

from tinynets import BlobClassifier, save_torchscript
from XAIMedSlicerLib.cli import main
from XAIMedSlicerLib.io.volumes import write_volume


def test_report_is_rebuilt_and_printed_to_pdf(tmp_path, oblique_volume, capsys):
    image = write_volume(oblique_volume, tmp_path / "scan.nrrd")
    labels = np.zeros(oblique_volume.array.shape, np.int16)
    labels[6:13, 12:20, 8:16] = 1
    label_path = write_volume(oblique_volume.with_array(labels), tmp_path / "labels.nrrd")
    model = save_torchscript(BlobClassifier(), tmp_path / "blob.ts")
    out = tmp_path / "out"
    code = main(["explain", "--image", str(image), "--model", str(model), "--labels", str(label_path),
                 "--method", "saliency", "--target", "0", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    first = (out / "report.html").read_text()
    (out / "report.html").unlink()
    assert main(["report", str(out), "--pdf"]) == 0, capsys.readouterr().err
    assert (out / "report.html").read_text() == first  # the same folder gives the same report
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 20_000
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 1
    assert not [p for p in out.iterdir() if p.name.startswith(".report")]  # no temporary left


def test_report_of_a_folder_without_an_explanation_is_one_line(tmp_path, capsys):
    code = main(["report", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "holds no explanation.json" in err[0]
