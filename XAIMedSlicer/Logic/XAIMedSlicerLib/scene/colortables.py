"""Structure names and colours from colour-table files, and a stable palette for the rest."""

from __future__ import annotations

import colorsys
import json
from pathlib import Path

from ..errors import XAIError

Color = tuple[float, float, float]


def palette_color(label: int) -> Color:
    """A stable, well-spread colour for a label value (golden-ratio hues), RGB in 0..1."""
    hue = (int(label) * 0.618033988749895) % 1.0
    value = 0.95 if int(label) % 2 else 0.8
    return tuple(float(c) for c in colorsys.hsv_to_rgb(hue, 0.7, value))


def read_color_table(path: str | Path) -> dict[int, tuple[str, Color | None]]:
    """``{label: (name, rgb or None)}`` from a colour table file; label 0 (background) is left out.

    Formats: MeshNet/brainchop ``colormap.json`` ({"R": [...], "G": [...], "B": [...], "labels": [...]});
    a JSON object of label -> name (``class_map_total.json`` style, no colours); FreeSurfer
    ``*LUT.txt`` and Slicer ``.ctbl`` / ``.txt`` ("value name R G B [A]" per line, 0..255).
    """
    path = Path(path)
    if not path.is_file():
        raise XAIError(f"colour table {path} does not exist", "give an existing colour table file")
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() == ".json":
        return _from_json(json.loads(text), path)
    return _from_lut_text(text, path)


def _from_json(data, path: Path) -> dict[int, tuple[str, Color | None]]:
    if isinstance(data, dict) and {"R", "G", "B", "labels"} <= set(data):
        names, r, g, b = data["labels"], data["R"], data["G"], data["B"]
        if not len(names) == len(r) == len(g) == len(b):
            raise XAIError(f"{path.name}: R, G, B and labels have different lengths", "fix the colour table")
        return {i: (str(names[i]), (r[i] / 255.0, g[i] / 255.0, b[i] / 255.0)) for i in range(1, len(names))}
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        try:
            return {int(k): (v, None) for k, v in data.items() if int(k) != 0}
        except ValueError as exc:
            raise XAIError(f"{path.name}: keys must be label numbers", "use {'1': 'name', ...}") from exc
    raise XAIError(f"{path.name} is not a colour table this package reads", "give colormap.json or a LUT")


def _from_lut_text(text: str, path: Path) -> dict[int, tuple[str, Color | None]]:
    table: dict[int, tuple[str, Color | None]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        try:
            value = int(parts[0])
            rgb = tuple(int(c) / 255.0 for c in parts[2:5]) if len(parts) >= 5 else None
        except ValueError as exc:
            raise XAIError(f"{path.name} line {number} is not 'value name R G B'", "fix the table") from exc
        if value != 0:
            table[value] = (parts[1] if len(parts) > 1 else f"label {value}", rgb)
    if not table:
        raise XAIError(f"{path.name} holds no labels", "give a colour table with 'value name R G B' lines")
    return table
