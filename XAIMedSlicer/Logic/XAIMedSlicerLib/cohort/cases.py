"""``cases.csv``: one row per case; file paths are relative to the CSV's folder."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import XAIError

REQUIRED = ("image", "model")
OPTIONAL = ("case_id", "target", "labels", "label_names", "mask")


@dataclass(frozen=True)
class Case:
    """One case: the scan, the model and, where known, labels and a lesion mask (absolute paths)."""

    case_id: str
    image: str
    model: str
    target: str | None = None
    labels: str | None = None
    label_names: str | None = None
    mask: str | None = None


def _resolve(base: Path, value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def read_cases(path: str | os.PathLike) -> list[Case]:
    """The cases of ``path``; columns ``image``, ``model`` (required) and ``case_id``, ``target``,
    ``labels``, ``label_names``, ``mask`` (optional). Files are not opened here: a missing one is
    reported for its case by the run, so the other cases go on."""
    path = Path(path)
    if not path.is_file():
        raise XAIError(f"cases file not found: {path}", "give a cases.csv with image and model columns")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise XAIError(
                f"{path.name} lacks the column(s) {', '.join(missing)}", "add image and model columns"
            )
        rows = [{(k or "").strip(): (v or "") for k, v in row.items()} for row in reader]
    if not rows:
        raise XAIError(f"{path.name} has no cases", "add one row per case")
    base = path.parent.resolve()
    cases = []
    for n, row in enumerate(rows, start=1):
        case_id = row.get("case_id", "").strip() or f"case{n:04d}"
        cases.append(
            Case(
                case_id=case_id,
                image=_resolve(base, row["image"]) or "",
                model=_resolve(base, row["model"]) or "",
                target=row.get("target", "").strip() or None,
                labels=_resolve(base, row.get("labels")),
                label_names=_resolve(base, row.get("label_names")),
                mask=_resolve(base, row.get("mask")),
            )
        )
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise XAIError(f"{path.name} repeats case_id {', '.join(dup)}", "give every case its own case_id")
    return cases


def write_demo_cohort(
    folder: str | os.PathLike, cases: list[tuple[str, int, bool]], extra_rows: Sequence[str] = ()
) -> Path:
    """A ``cases.csv`` of the demo's seeded MNI152 cases ``(case_id, seed, lesion)`` in ``folder``: each
    scan (and, with a lesion, its mask) and the bundled demo classifier; ``extra_rows`` are appended as
    given. Returns the CSV's path."""
    from ..demo.cases import make_case
    from ..demo.model import CARD_PATH
    from ..io.atomic import write_text
    from ..io.volumes import write_volume

    folder = Path(folder)
    rows = ["case_id,image,model,mask"]
    for case_id, seed, lesion in cases:
        case = make_case(seed, lesion=lesion)
        write_volume(case.image, folder / f"{case_id}.nii.gz")
        mask = f"{case_id}_mask.nii.gz" if lesion else ""
        if lesion:
            write_volume(case.lesion_mask, folder / mask)
        rows.append(f"{case_id},{case_id}.nii.gz,{CARD_PATH},{mask}")
    write_text(folder / "cases.csv", "\n".join([*rows, *extra_rows]) + "\n")
    return folder / "cases.csv"
