"""Writing the per-structure table as CSV and JSON."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..io.atomic import write_json, write_text
from .stats import STRUCTURE_COLUMNS


def structures_csv(rows: list[dict]) -> str:
    """The rows as CSV text with a header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(STRUCTURE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in STRUCTURE_COLUMNS})
    return buffer.getvalue()


def write_structures(rows: list[dict], folder: Path) -> list[Path]:
    """``structures.csv`` and ``structures.json`` in ``folder``."""
    write_text(folder / "structures.csv", structures_csv(rows))
    write_json(folder / "structures.json", rows)
    return [folder / "structures.csv", folder / "structures.json"]


def format_table(rows: list[dict], limit: int = 15) -> str:
    """A short plain-text table for the terminal."""
    lines = [f"{'structure':32s} {'share':>7s} {'mean':>10s} {'peak':>10s} {'mL':>9s}"]
    for row in rows[:limit]:
        lines.append(
            f"{row['name'][:32]:32s} {row['positive_share']:7.1%} {row['positive_mean']:10.4g} "
            f"{row['peak']:10.4g} {row['volume_ml']:9.2f}"
        )
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more structures in structures.csv")
    outside = 1.0 - sum(row["positive_share"] for row in rows)
    if rows and outside > 5e-4:
        lines.append(f"{'(outside the labelled structures)':32s} {outside:7.1%}")
    return "\n".join(lines)
