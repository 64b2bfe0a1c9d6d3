"""``report.html``: one self-contained page a clinician reads, built from an explanation's output folder."""

from .writer import REPORT, render_report, write_report

__all__ = ["REPORT", "render_report", "write_report"]
