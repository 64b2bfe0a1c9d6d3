"""A click (press and release without a drag) in a slice view, as a RAS point: the structure under it is
selected in the table. Pan and zoom drags are left to Slicer's interactor style."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .scene_link import xy_to_ras

DRAG_PIXELS = 3  # a press and release farther apart than this is a drag, not a click


class ViewClicks:
    """Observes the left button on every slice view; ``on_click(layout_name, ras)`` after a click."""

    def __init__(self, slicer_app, on_click: Callable[[str, np.ndarray], None]) -> None:
        import vtk

        self.on_click = on_click
        self._pressed: dict[str, tuple[int, int]] = {}
        self._views = []
        for view in slicer_app.view_manager.get_slice_views():
            interactor = view.interactor()
            tag = view.get_singleton_tag()
            interactor.AddObserver(vtk.vtkCommand.LeftButtonPressEvent, self._press(tag, interactor), 1.0)
            interactor.AddObserver(vtk.vtkCommand.LeftButtonReleaseEvent, self._release(tag, view), 1.0)
            self._views.append(view)

    def _press(self, tag, interactor):
        def handler(*_args):
            self._pressed[tag] = tuple(interactor.GetEventPosition())

        return handler

    def _release(self, tag, view):
        def handler(*_args):
            start = self._pressed.pop(tag, None)
            x, y = view.interactor().GetEventPosition()
            if start is None or max(abs(x - start[0]), abs(y - start[1])) > DRAG_PIXELS:
                return
            node = view._logic.GetSliceNode()  # noqa: SLF001 - trame-slicer keeps the slice logic private
            self.on_click(tag, xy_to_ras(node, x, y))

        return handler


def label_at(labels, ras) -> int | None:
    """The label value of the voxel holding ``ras`` (a labels Volume), or None outside it."""
    index = np.round(np.asarray(labels.ras_to_index(ras), dtype=float)).astype(int)
    shape = labels.array.shape[::-1]  # (i, j, k)
    if np.any(index < 0) or np.any(index >= np.asarray(shape)):
        return None
    i, j, k = index
    return int(labels.array[k, j, i])
