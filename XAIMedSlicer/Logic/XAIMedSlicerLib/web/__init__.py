"""Web viewer on trame-slicer: slice and 3D views of a real MRML scene, Explain in the worker process.

``XAIViewer(encoder="png")``: the app; ``viewer.load(image=..., model=..., labels=..., label_names=...,
result=...)`` fills the scene (errors become the page's message); ``viewer.start(port)`` serves.
Modules: ``app.py`` (the controller), ``panel.py`` (the page), ``loading.py`` (files into the scene),
``job.py`` (Explain polled from the event loop), ``scene_link.py`` (our SlicerScene over trame-slicer's
app, slice-view pixel <-> RAS), ``point.py`` (point target by a click, Slicer place mode),
``view_click.py`` (a click selects the structure under it), ``compare.py`` (maps A | B side by side),
``util.py`` (errors into the page, small look-ups).
"""

from .app import XAIViewer

__all__ = ["XAIViewer"]
