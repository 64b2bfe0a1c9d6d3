"""The module's "Reader study" section, Qt-free: a blinded reader works through a study in the scene.

Cases come in the study's seeded order; each case's maps are shown as ``Map A``, ``Map B``, ... (the
label-to-method permutation is the study's secret, drawn per case, so every method appears under every
label across cases); ratings are committed as they are given and the time per case is recorded by
``study.reader.ReaderSession``. Nodes made for a case are removed when the reader moves on; the
reader's own nodes are never touched::

    c = ReaderStudyController(ss)
    view = c.start("study.sqlite", "R1")      # the first case not yet completed (None: all done)
    c.show_map("B"); c.rate("A", 4); c.rate("B", 2)
    seconds, view = c.next_case()             # completes the case (every map rated), opens the next
    c.export_summary("summary.csv")           # tidy CSV: reader, case, position, label, method, ...
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..errors import XAIError
from ..io.atomic import write_text
from ..study.reader import TRUST_SCALE, ReaderSession, ReaderView
from .annotation import open_study
from .reader_study import summary_rows

ROLE = "reader study"


def summary_csv(rows: list[dict]) -> str:
    """The tidy summary table as CSV text (header only when there are no ratings yet)."""
    buf = io.StringIO()
    fields = (
        list(rows[0]) if rows else ["reader", "case_id", "position", "label", "method", "trust", "seconds"]
    )
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


class ReaderStudyController:
    """One reader, one study, one scene."""

    def __init__(self, ss=None) -> None:
        self._ss = ss
        self.study = None
        self.session: ReaderSession | None = None
        self.view: ReaderView | None = None
        self.image_node = None
        self.map_nodes: dict[str, object] = {}
        self._made: list[object] = []  # nodes this controller added (removed on the next case)

    @property
    def ss(self):
        if self._ss is None:
            from ..scene import current_scene

            self._ss = current_scene()
        return self._ss

    # ---- life cycle ---------------------------------------------------------------------------
    def start(self, study_path: str | os.PathLike, reader: str) -> ReaderView | None:
        """Open the study for ``reader`` and show the first case they have not completed."""
        self.close()
        self.study = open_study(study_path)
        self.session = ReaderSession(self.study, reader)
        return self._open(self.session.next_case())

    def close(self) -> None:
        """Pause the open case (its visit time is kept), remove this controller's nodes, close the study."""
        if self.session is not None:
            self.session.pause()
        self._remove_nodes()
        if self.study is not None:
            self.study.close()
        self.study = self.session = self.view = None

    # ---- one case -----------------------------------------------------------------------------
    def progress_text(self) -> str:
        """What the reader is told about where they are (no method names)."""
        if self.session is None:
            return "No reader study open."
        if self.view is None:
            return f"Reader {self.session.reader}: every case is done."
        v = self.view
        return f"Reader {self.session.reader}: case {v.position} of {v.total}; maps {', '.join(v.labels)}"

    def show_map(self, label: str, opacity: float = 0.5):
        """Show the map behind ``label`` over the case image in the slice views; returns its node."""
        from ..scene.overlay import show_in_slice_views

        node = self._map_node(label)
        show_in_slice_views(self.ss, self.image_node, node, opacity)
        return node

    def rate(self, label: str, trust: int, comment: str = "") -> None:
        """Commit a 1-5 trust rating for the map shown as ``label``."""
        self._session().rate(label, trust, comment)

    def rated(self) -> dict[str, int]:
        """The open case's ratings so far (label -> trust)."""
        s, v = self._session(), self.view
        if v is None:
            return {}
        rows = s.study.db.rows(
            "SELECT label, trust FROM ratings WHERE reader = ? AND case_id = ?", (s.reader, v.case_id)
        )
        return {r["label"]: int(r["trust"]) for r in rows}

    def rated_text(self) -> str:
        """The open case's ratings as one line (``Rated: A=4, B=2``)."""
        rated = self.rated()
        return "Rated: " + (", ".join(f"{k}={v}" for k, v in sorted(rated.items())) or "none yet")

    def next_case(self) -> tuple[float, ReaderView | None]:
        """Complete the open case (every map must be rated); returns (seconds on it, the next case)."""
        session = self._session()
        if self.view is None:
            raise XAIError("no case is open", "start the reader study")
        seconds = session.finish_case()
        return seconds, self._open(session.next_case())

    def export_summary(self, path: str | os.PathLike) -> tuple[Path, int]:
        """Write the study's tidy summary CSV (never overwrites); returns (path, rows)."""
        if self.study is None:
            raise XAIError("no reader study is open", "start the reader study first")
        if Path(path).exists():
            raise XAIError(f"{path} already exists", "choose a new CSV file name")
        rows = summary_rows(self.study)
        write_text(path, summary_csv(rows))
        return Path(path), len(rows)

    # ---- helpers ------------------------------------------------------------------------------
    def _session(self) -> ReaderSession:
        if self.session is None:
            raise XAIError("no reader study is open", "choose a study database and a reader, then Start")
        return self.session

    def _map_node(self, label: str):
        if label not in self.map_nodes:
            raise XAIError(
                f"there is no map {label} in this case", f"use one of {', '.join(sorted(self.map_nodes))}"
            )
        return self.map_nodes[label]

    def _open(self, view: ReaderView | None) -> ReaderView | None:
        """Put the case's image and blinded maps into the scene (names carry only the label)."""
        from ..io.volumes import read_volume
        from ..scene.overlay import add_attribution_node
        from ..scene.volumes import add_volume

        self._remove_nodes()
        self.view = view
        if view is None:
            return None
        attributes = {"XAIMed.role": ROLE}
        if view.image_ref and Path(view.image_ref).exists():  # a file or a DICOM series folder
            image = read_volume(view.image_ref)
            self.image_node = add_volume(
                self.ss, image, f"Reader case {view.position}", attributes=attributes
            )
            self._made.append(self.image_node)
        else:  # the case names a node of the scene (an annotation made in the module)
            self.image_node = self.ss.scene.GetFirstNodeByName(view.image_ref) if view.image_ref else None
        for label in view.labels:
            if self.study.attribution_ref(view.case_id, self.study.unblind(view.case_id)[label]):
                volume = self.session.map_volume(label)
                signed = bool(volume.array.min() < 0)
                node = add_attribution_node(self.ss, volume, signed=signed, name=f"Map {label}")
                node.SetAttribute("XAIMed.role", ROLE)  # not offered as a result of the module
                self.map_nodes[label] = node
                self._made.append(node)
        if self.map_nodes:
            self.show_map(view.labels[0])
        return view

    def _remove_nodes(self) -> None:
        scene = self.ss.scene if self._ss is not None or self._made else None
        for node in self._made:
            if scene is not None and node.GetScene() is scene:
                scene.RemoveNode(node)
        self._made, self.map_nodes, self.image_node = [], {}, None


__all__ = ["ROLE", "TRUST_SCALE", "ReaderStudyController", "summary_csv"]
