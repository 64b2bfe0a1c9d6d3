"""Read one explanation output folder into the values ``report.html`` shows.

Required: ``explanation.json`` (read with ``explanation_io.read_index``). Optional, each shown when
present and skipped when absent: ``structures.csv`` (else the structures in ``explanation.json``),
``figure_{axial,coronal,sagittal}.png`` (embedded as base64), ``rules.json``, ``explanation.txt``,
``facts.json`` and ``provenance.json`` (else the provenance in ``explanation.json``). A file that is
present but unreadable is a one-line ``XAIError``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import struct
from pathlib import Path

from ..errors import XAIError
from ..explanation_io import read_index
from ..scene.figure import METHOD_NAMES

FIGURES = ("axial", "coronal", "sagittal")
COLUMN_TITLES = {
    "label": "Label",
    "name": "Structure",
    "voxels": "Voxels",
    "volume_ml": "Volume (mL)",
    "area_cm2": "Area in the image (cm²)",
    "positive_sum": "Positive sum (a.u.)",
    "positive_mean": "Mean positive attribution (a.u.)",
    "positive_share": "Share of positive evidence",
    "peak": "Peak attribution (a.u.)",
    "peak_r": "Peak R (mm)",
    "peak_a": "Peak A (mm)",
    "peak_s": "Peak S (mm)",
}
_REF = re.compile(r"\s*\[([A-Za-z]+\d+)\]\s*$")
SEVERITY_ORDER = ("critical", "high", "warning", "medium", "info", "low")


def read_json(path: Path) -> dict | None:
    """A JSON file's content, None when the file is absent."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise XAIError(f"{path} is not valid JSON ({exc})", "rerun the explanation to rewrite it") from None


def cell_text(column: str, raw: str) -> str:
    """How a structure-table value reads: shares in %, other numbers to 4 significant digits."""
    if column in ("label", "name", "voxels") or raw == "":
        return raw
    try:
        value = float(raw)
    except ValueError:
        return raw
    if column == "positive_share":
        return f"{100.0 * value:.1f}%"
    if column in ("peak_r", "peak_a", "peak_s", "volume_ml", "area_cm2"):
        return f"{value:.1f}"
    return f"{value:.4g}"


def read_structures(folder: Path, index: dict) -> dict:
    """Columns (key, title) and rows (cells with the file's exact value and its display text)."""
    path = folder / "structures.csv"
    if path.is_file():
        try:
            reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
            columns, records = list(reader.fieldnames or []), list(reader)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise XAIError(f"{path} is not a readable CSV ({exc})", "rerun the explanation") from None
        if "name" not in columns or any(None in r or None in r.values() for r in records):
            raise XAIError(f"{path} is not a structure table (ragged rows or no 'name' column)",
                           "rerun the explanation to rewrite it")  # fmt: skip
        source = "structures.csv"
    else:
        records = [
            {k: "" if v is None else str(v) for k, v in r.items()} for r in index.get("structures", [])
        ]
        columns = list(records[0]) if records else []
        source = "explanation.json" if records else None
    geometry = (index.get("image") or {}).get("geometry") or {}
    if (geometry.get("shape_kji") or [0])[0] == 1 and "volume_ml" in columns:  # a radiograph: areas
        sx, sy = (float(v) for v in geometry["spacing"][:2])
        columns = ["area_cm2" if c == "volume_ml" else c for c in columns]
        for r in records:
            r["area_cm2"] = repr(float(r["voxels"]) * sx * sy / 100.0) if r.get("voxels") else ""
    rows = [[{"column": c, "raw": r[c], "text": cell_text(c, r[c])} for c in columns] for r in records]
    shares = [float(r["positive_share"]) for r in records if r.get("positive_share") not in (None, "")]
    outside = 1.0 - sum(shares) if shares else None
    return {
        "columns": [(c, COLUMN_TITLES.get(c, c)) for c in columns],
        "rows": rows,
        "source": source,
        "outside_share": outside if outside is None or outside > 5e-4 else 0.0,
    }


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise XAIError("a figure file is not a PNG", "rerun the explanation to rewrite the figures")
    return struct.unpack(">II", data[16:24])


def read_figures(folder: Path) -> list[dict]:
    """The figures present, in axial, coronal, sagittal order, as data URIs."""
    figures = []
    for view in FIGURES:
        path = folder / f"figure_{view}.png"
        if path.is_file():
            data = path.read_bytes()
            width, height = png_size(data)
            src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            figures.append({"view": view, "file": path.name, "src": src, "width": width, "height": height})
    return figures


def read_rules(folder: Path) -> dict | None:
    """rules.json: fired rules first (by severity), then the others, and the hybrid decision."""
    doc = read_json(folder / "rules.json")
    if doc is None:
        return None
    rules = list(doc.get("rules", []))

    def rank(rule: dict) -> tuple:
        severity = str(rule.get("severity", "")).lower()
        order = SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)
        return (not rule.get("fired"), order)

    rules.sort(key=rank)
    return {
        "fired": [r for r in rules if r.get("fired")],
        "passed": [r for r in rules if not r.get("fired")],
        "decision": doc.get("decision"),
        "rules_file": doc.get("rules_file"),
    }


def read_sentences(folder: Path) -> list[dict] | None:
    """explanation.txt, one sentence per line; a trailing ``[REF]`` names its fact in facts.json."""
    path = folder / "explanation.txt"
    if not path.is_file():
        return None
    facts = {str(f.get("ref")): f for f in (read_json(folder / "facts.json") or {}).get("facts", [])}
    sentences = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        match = _REF.search(line)
        ref = match.group(1) if match else None
        fact = facts.get(ref) if ref else None
        sentences.append({
            "text": line[: match.start()] if match else line,
            "ref": ref,
            "kind": fact.get("kind") if fact else None,
            "fact": json.dumps(fact, sort_keys=True, default=str) if fact else None,
        })  # fmt: skip
    return sentences


def summary(index: dict, provenance: dict) -> dict:
    """Prediction, target, method, model and scan in a few lines."""
    prediction = index.get("prediction") or {}
    classes, probabilities = prediction.get("classes") or [], prediction.get("probabilities") or []
    scores = list(zip(classes, probabilities, strict=False)) if len(classes) == len(probabilities) else []
    model = provenance.get("model") or {}
    method = provenance.get("method") or {}
    target = index.get("target") or {}
    return {
        "predicted": prediction.get("predicted_class"),
        "task": prediction.get("task"),
        "scores": [(str(c), 100.0 * float(p)) for c, p in scores],
        "target": target.get("class_name") or target.get("class_index", target.get("index")),
        "target_kind": target.get("kind"),
        "method": index.get("method"),
        "method_title": METHOD_NAMES.get(index.get("method"), index.get("method")),
        "method_params": method.get("params") or {},
        "signed": index.get("signed"),
        "model": model,
        "image": index.get("image") or {},
        "peak_ras": provenance.get("attribution_peak_ras"),
        "created": provenance.get("created"),
        "versions": provenance.get("versions") or {},
        "device": provenance.get("device"),
        "seed": provenance.get("seed"),
    }


def report_context(folder: str | os.PathLike) -> dict:
    """Everything the template shows, read from ``folder``."""
    folder = Path(folder)
    index = read_index(folder)
    provenance = read_json(folder / "provenance.json") or dict(index.get("provenance") or {})
    return {
        "summary": summary(index, provenance),
        "structures": read_structures(folder, index),
        "figures": read_figures(folder),
        "rules": read_rules(folder),
        "sentences": read_sentences(folder),
        "provenance_json": json.dumps(provenance, indent=2, sort_keys=True, default=str),
        "files": sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != "report.html"),
    }
