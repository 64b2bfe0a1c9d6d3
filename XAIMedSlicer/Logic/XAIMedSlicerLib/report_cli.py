"""``xaimed report DIR [--pdf]``: rebuild ``report.html`` from an explain output folder, optionally a PDF."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import XAIError

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str:
    """The Chromium executable used to print the report to PDF."""
    for name in (os.environ.get("XAIMED_CHROMIUM"), *CHROMIUM):
        if name and shutil.which(name):
            return shutil.which(name)
    raise XAIError(
        "Chromium was not found (it prints the report to PDF)", "install it: apt-get install chromium"
    )


def write_pdf(html: Path, pdf: Path, timeout: float = 120.0) -> Path:
    """``html`` printed to ``pdf`` by headless Chromium, written to a temporary file and renamed."""
    pdf = Path(pdf)
    fd, tmp = tempfile.mkstemp(suffix=".pdf", prefix=f".{pdf.stem}.", dir=pdf.parent)
    os.close(fd)
    args = [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--no-pdf-header-footer",
            f"--print-to-pdf={tmp}", Path(html).resolve().as_uri()]  # fmt: skip
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0 or os.path.getsize(tmp) == 0:
            raise XAIError(
                f"Chromium could not print {html.name} (exit {done.returncode})", "open the HTML and print it"
            )
        os.replace(tmp, pdf)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return pdf


def cmd_report(args) -> int:
    from .report import write_report

    folder = Path(args.folder)
    if not (folder / "explanation.json").is_file():
        raise XAIError(
            f"{folder} holds no explanation.json", "give a folder written by `xaimed explain --out`"
        )
    html = write_report(folder)
    print(f"wrote {html}")
    if args.pdf:
        print(f"wrote {write_pdf(html, folder / 'report.pdf')}")
    return 0


def add_parser(sub) -> None:
    report = sub.add_parser("report", help="rebuild report.html of an explain output folder (and a PDF)")
    report.add_argument("folder", help="a folder written by `xaimed explain --out`")
    report.add_argument("--pdf", action="store_true", help="also print report.pdf with headless Chromium")
    report.set_defaults(func=cmd_report)
