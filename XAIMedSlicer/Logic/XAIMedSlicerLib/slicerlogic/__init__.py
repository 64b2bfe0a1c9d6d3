"""What the XAIMedSlicer module does behind its widget, without Qt: usable from scripts and tests.

The module file (``XAIMedSlicer.py``) keeps the widget wiring, the parameter node, dependency
installation and the progress display; its ``XAIMedSlicerLogic`` holds an :class:`ExplainSession`
(``logic.session``) that the widget calls.

Public API (import from ``XAIMedSlicerLib.slicerlogic``)::

    session = ExplainSession(ss)            # ss: scene.SlicerScene; default scene.current_scene()
    request = ExplainRequest(inputVolume=scan_node, modelPath=Path("model.ts"), method="ig")
    outcome, node = session.process(request, timeout=600)   # blocking; or:
    job = session.start_explain(request)    # job.poll() from a timer; job.process.cancel()
    node = session.finish_job(job, job.process.outcome); job.cleanup()
    bundle = session.bundle_for_node(node)  # also after a scene reload
    shown = session.apply_display(bundle, request, segment_ids)   # colour map, threshold, opacity, 3D
    session.go_to_structure(bundle, row); session.segments_for_rows(bundle, rows)
    session.rows_for_segments(bundle, segment_ids)
    segmentation = session.import_label_map(label_path, names_path, scan_node)
    job = session.start_segment(request)    # a segmentation network makes the structures
    session.finish_job(job, outcome, request)   # also sets request.result / request.structures
    session.select_rows(bundle, rows, request)  # table rows picked: go to the peak, mask, segment IDs
    session.default_input_volume()          # the first scan (no label map, no result)

* ``request.py``: :class:`ExplainRequest` (the parameter node's fields), ``is_set``, ``choice``;
* ``inputs.py``: ``segmentation_to_labels``, ``region_arguments`` (segment, box or point target);
* ``structures.py``: ``import_label_map``, ``model_colors`` (a MeshNet folder's colour table);
* ``jobs.py``: :class:`SessionJob`, ``start_explain``, ``start_segment``, ``finish_job``;
* ``session.py``: :class:`ExplainSession`;
* ``devices.py``: :class:`DeviceProbe` (the device check in a background thread);
* ``requirements.py``: ``read_requirements``, ``missing_requirements`` (by installed package metadata).

Errors are ``XAIError`` (one line: the problem and the fix). Nothing here imports PyTorch: the network
runs in the worker process.
"""

from .jobs import SessionJob, finish_job, start_explain, start_segment
from .request import ExplainRequest, choice, is_set
from .session import ExplainSession

__all__ = [
    "ExplainRequest",
    "ExplainSession",
    "SessionJob",
    "choice",
    "finish_job",
    "is_set",
    "start_explain",
    "start_segment",
]
