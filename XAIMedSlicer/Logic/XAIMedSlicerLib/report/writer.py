"""Render ``report.html`` from an explanation output folder with the package's jinja2 template."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..io.atomic import write_text
from .context import report_context

REPORT = "report.html"
TEMPLATE = "report.html.j2"


def _emphasis(text: str):
    """Escape ``text`` and turn the sentences' ``*term*`` marks into <em>term</em>."""
    from markupsafe import Markup, escape

    return Markup(re.sub(r"\*([^*]+)\*", r"<em>\1</em>", str(escape(text))))


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["emphasis"] = _emphasis
    return env


def render_report(folder: str | os.PathLike) -> str:
    """The report page of ``folder`` as one self-contained HTML string (figures embedded)."""
    return _environment().get_template(TEMPLATE).render(**report_context(folder))


def write_report(folder: str | os.PathLike) -> Path:
    """Write ``report.html`` into ``folder`` (atomically) and return its path."""
    path = Path(folder) / REPORT
    write_text(path, render_report(folder))
    return path
