"""``ExplainSession``: everything the Slicer module does behind its widget, without Qt.

The module's ``XAIMedSlicerLogic`` holds one session and forwards to it; scripts and tests use it
directly with an :class:`~.request.ExplainRequest` (or the module's parameter node: same attributes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from . import jobs, structures
from .jobs import SessionJob


class ExplainSession:
    """Explanations in one MRML scene: background jobs, results as scene bundles, display, navigation.

    ``ss``: the ``scene.SlicerScene`` to work in; default ``scene.current_scene()`` (inside 3D Slicer:
    ``slicer.mrmlScene`` and the application's logics), looked up on first use.
    """

    def __init__(self, ss=None) -> None:
        self._ss = ss
        self._bundles: dict[str, object] = {}  # attribution node ID -> SceneBundle

    @property
    def ss(self):
        """The SlicerScene (scene and logics) the session works in."""
        if self._ss is None:
            from ..scene import current_scene

            self._ss = current_scene()
        return self._ss

    # ---- jobs ---------------------------------------------------------------------------------
    def start_explain(self, request, *, fault: str | None = None) -> SessionJob:
        """Start the worker on the request's scan, model, method and target (non-blocking)."""
        return jobs.start_explain(self.ss, request, fault=fault)

    def start_segment(self, request) -> SessionJob:
        """Start the request's segmentation network on its scan (non-blocking)."""
        return jobs.start_segment(request)

    def finish_job(self, job: SessionJob, outcome, request=None):
        """Load a finished job: the attribution node (explain) or a new segmentation node (segment).

        With ``request`` the node also becomes its ``result`` (explain) or its ``structures`` (segment).
        """
        loaded = jobs.finish_job(self.ss, job, outcome)
        if job.mode == "segment":
            if request is not None:
                request.structures = loaded
            return loaded
        self._bundles[loaded.attribution_node.GetID()] = loaded
        if request is not None:
            request.result = loaded.attribution_node
        return loaded.attribution_node

    def process(
        self,
        request,
        *,
        timeout: float | None = None,
        on_message: Callable[[dict], None] | None = None,
        fault: str | None = None,
    ):
        """Blocking mode for scripts and tests: (worker outcome, attribution node or None)."""
        job = self.start_explain(request, fault=fault)
        try:
            outcome = job.process.wait(timeout=timeout, on_message=on_message)
            node = self.finish_job(job, outcome) if outcome.ok else None
        finally:
            job.cleanup()
        return outcome, node

    # ---- structures and models ----------------------------------------------------------------
    def default_input_volume(self):
        """The first scan in the scene: a scalar volume that is no label map and no node made here."""
        volumes = self.ss.scene.GetNodesByClass("vtkMRMLScalarVolumeNode")
        for index in range(volumes.GetNumberOfItems()):
            node = volumes.GetItemAsObject(index)
            if not node.IsA("vtkMRMLLabelMapVolumeNode") and node.GetAttribute("XAIMed.role") is None:
                return node
        return None

    def import_label_map(self, label_path, names_path, reference_node):
        """A new segmentation from a label map file on the reference volume (see structures.py)."""
        return structures.import_label_map(self.ss, label_path, names_path, reference_node)

    @staticmethod
    def model_summary(path) -> dict:
        """Kind, task and class names of a model path, read without PyTorch."""
        from ..worker.summary import model_summary

        return model_summary(path)

    # ---- results in the scene -----------------------------------------------------------------
    def bundle_for_node(self, node):
        """The SceneBundle of an attribution map or of a map derived from it (None for other nodes).

        Bundles made here are kept; others (a reloaded scene) are rebuilt from node attributes.
        """
        if node is None:
            return None
        from ..scene import bundle_from_node, source_map

        for key in (node.GetID(), source_map(node).GetID()):
            bundle = self._bundles.get(key)
            if bundle is not None and bundle.scene is node.GetScene() and node in bundle.map_nodes():
                return bundle
        bundle = bundle_from_node(node, self.ss)
        if bundle is not None:
            self._bundles[bundle.attribution_node.GetID()] = bundle
        return bundle

    def apply_display(self, bundle, p, selected_segment_ids: Iterable[str] = ()):
        """Show the result as the parameters say (``scene.apply_display``); returns the node shown."""
        from ..scene import DisplaySettings, apply_display

        return apply_display(bundle, DisplaySettings.from_parameters(p), selected_segment_ids)

    def go_to_structure(self, bundle, row: int):
        """Centre every slice view on the structure's attribution peak, highlight it; returns the peak RAS."""
        from ..scene.interaction import center_on_structure, row_at

        return center_on_structure(bundle, row_at(bundle, row))

    def select_rows(self, bundle, rows: Iterable[int], p) -> list[str]:
        """Rows picked in the structure table: the views go to the first one's peak and its segment is
        highlighted; with ``p.onlyInsideSelected`` the overlay is limited to the rows' segments.
        Returns the rows' segment IDs (to select in the segments table)."""
        rows = list(rows)
        self.go_to_structure(bundle, rows[0])
        segment_ids = self.segments_for_rows(bundle, rows)
        if p.onlyInsideSelected:
            self.apply_display(bundle, p, segment_ids)
        return segment_ids

    @staticmethod
    def segments_for_rows(bundle, rows: Iterable[int]) -> list[str]:
        """Segment IDs of structure-table rows (rows without a segment left out)."""
        from ..scene.interaction import segment_for_row

        return [s for s in (segment_for_row(bundle, row) for row in rows) if s]

    @staticmethod
    def rows_for_segments(bundle, segment_ids: Iterable[str]) -> list[int]:
        """Structure-table rows of segments, sorted (segments without a row left out)."""
        from ..scene.interaction import row_for_segment

        return sorted({r for r in (row_for_segment(bundle, s) for s in segment_ids) if r is not None})
