"""``xaimed study …``: create a study, add cases, annotate disagreement, agreement, DICOM SEG, reader mode."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from .errors import XAIError


def _study(path: str):
    from .slicerlogic.annotation import open_study

    return open_study(path)


def cmd_init(args) -> int:
    from .study.store import Study

    if Path(args.db).exists():
        raise XAIError(f"{args.db} already exists", "choose a new database file name")
    Study.create(args.db, name=args.name or Path(args.db).stem, methods=args.methods, seed=args.seed).close()
    print(f"study {args.db}: methods {', '.join(args.methods)}, seed {args.seed}")
    return 0


def cmd_add_case(args) -> int:
    from .study.store import CaseSpec

    maps = {}
    for item in args.map or []:
        method, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            raise XAIError(f"bad --map {item}", "use METHOD=FILE with an existing map file")
        maps[method] = str(Path(path).resolve())
    study = _study(args.db)
    try:
        study.add_cases([CaseSpec(args.case, str(Path(args.image).resolve()), args.model_hash, {}, maps)])
    finally:
        study.close()
    print(f"case {args.case} added")
    return 0


def cmd_annotate(args) -> int:
    from .io.volumes import read_volume
    from .slicerlogic.annotation import region_mask, save_disagreement

    reference, region = read_volume(args.image), read_volume(args.seg)
    study = _study(args.db)
    try:
        saved = save_disagreement(
            study,
            case_id=args.case,
            reference=reference,
            mask=region_mask(region, reference),
            code=args.code,
            reader=args.reader,
            note=args.note,
            method=args.method,
        )
    finally:
        study.close()
    print(json.dumps({"annotation_id": saved.annotation_id, **saved.agreement}))
    return 0


def cmd_agreement(args) -> int:
    from .slicerlogic.annotation import reader_agreement

    study = _study(args.db)
    try:
        rows = study.annotations()
        pairs = [
            p
            for case, method in sorted({(r["case_id"], r["method"]) for r in rows})
            for p in reader_agreement(study, case, method)
        ]
    finally:
        study.close()
    cols = [
        "id",
        "case_id",
        "reader",
        "method",
        "version",
        "irrelevant_mass_share",
        "missed_share",
        "dice_missed",
    ]
    print(json.dumps({"maps": [{c: r[c] for c in cols} for r in rows], "readers": pairs}, indent=1))
    return 0


def cmd_export_seg(args) -> int:
    from .slicerlogic.annotation import export_seg

    study = _study(args.db)
    try:
        out = export_seg(study, args.id, args.series, args.out)
    finally:
        study.close()
    print(f"DICOM SEG written: {out}")
    return 0


def cmd_reader(args) -> int:
    from .slicerlogic.reader_study import run_reader

    ratings = None
    if args.ratings:
        if not Path(args.ratings).is_file():
            raise XAIError(f"no ratings file {args.ratings}", "give a JSON file: list of {label: trust}")
        ratings = json.loads(Path(args.ratings).read_text())
    study = _study(args.db)
    try:
        done = run_reader(study, args.reader, ratings=ratings, ask=input, say=print)
    finally:
        study.close()
    print(f"{done} case(s) completed by {args.reader}")
    return 0


def cmd_summary(args) -> int:
    from .io.atomic import write_text
    from .slicerlogic.reader_study import summary_rows

    study = _study(args.db)
    try:
        rows = summary_rows(study)
    finally:
        study.close()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["reader"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    if args.csv:
        if Path(args.csv).exists():
            raise XAIError(f"{args.csv} already exists", "choose a new CSV file name")
        write_text(args.csv, buf.getvalue())
        print(f"{len(rows)} rows written to {args.csv}")
    else:
        sys.stdout.write(buf.getvalue())
    return 0


def add_parser(sub) -> None:
    """``xaimed study`` and its subcommands."""
    st = sub.add_parser("study", help="disagreement annotation and blinded reader studies")
    ss = st.add_subparsers(dest="study_command", required=True)

    p = ss.add_parser("init", help="create a study database")
    p.add_argument("--db", required=True)
    p.add_argument("--methods", nargs="+", required=True)
    p.add_argument("--name")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_init)

    p = ss.add_parser("add-case", help="add a case with its maps")
    p.add_argument("--db", required=True)
    p.add_argument("--case", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--model-hash", default="")
    p.add_argument("--map", action="append", metavar="METHOD=FILE")
    p.set_defaults(func=cmd_add_case)

    p = ss.add_parser("annotate", help="save a painted region (label map file) as a coded disagreement")
    p.add_argument("--db", required=True)
    p.add_argument("--case", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--image", required=True, help="the case image (reference grid)")
    p.add_argument("--seg", required=True, help="label map of the drawn region (non-zero voxels)")
    p.add_argument("--code", required=True, help="irrelevant, missed or agree")
    p.add_argument("--reader", required=True)
    p.add_argument("--note", default="")
    p.set_defaults(func=cmd_annotate)

    p = ss.add_parser("agreement", help="agreement with the maps and between readers (JSON)")
    p.add_argument("--db", required=True)
    p.set_defaults(func=cmd_agreement)

    p = ss.add_parser("export-seg", help="export an annotation as DICOM SEG")
    p.add_argument("--db", required=True)
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--series", required=True, help="the case's DICOM series folder")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export_seg)

    p = ss.add_parser("reader", help="blinded reader mode (prompts on stdin, or --ratings FILE)")
    p.add_argument("--db", required=True)
    p.add_argument("--reader", required=True)
    p.add_argument("--ratings", help="JSON list, one {label: trust 1-5} per case in reading order")
    p.set_defaults(func=cmd_reader)

    p = ss.add_parser("summary", help="tidy CSV: one row per reader, case and map")
    p.add_argument("--db", required=True)
    p.add_argument("--csv")
    p.set_defaults(func=cmd_summary)


__all__ = ["add_parser"]
