"""Point target by clicking a slice view: Slicer's place mode puts one markups point, whose RAS position
becomes the request's ``point`` region (the predicted component of the target class there)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..errors import XAIError

NODE_NAME = "XAIMed target point"


class PointPicker:
    """One markups point list in place mode; ``on_point(ras)`` is called after each click."""

    def __init__(self, slicer_app, on_point: Callable[[np.ndarray], None]) -> None:
        self.slicer_app = slicer_app
        self.on_point = on_point
        self.node = None
        self.clicked_at: float | None = None  # time.perf_counter() of the last click (for the bench)
        self._observer = None

    def _ensure_node(self):
        import slicer

        if self.node is None or self.node.GetScene() is None:
            scene = self.slicer_app.scene
            self.node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", NODE_NAME)
            self.node.CreateDefaultDisplayNodes()
            self.node.SetAttribute("XAIMed.role", "target-point")
            self._observer = self.node.AddObserver(
                slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self._on_defined
            )
        return self.node

    def enable(self, on: bool) -> None:
        """Place mode on (each click in a view places the target point) or off (views pan/zoom again)."""
        logic = self.slicer_app.markups_logic
        if on:
            logic.place_node(self._ensure_node(), persistent=True)
        else:
            logic.disable_place_mode()

    def set_point(self, ras) -> None:
        """Put the target point at ``ras`` (what a click does), for scripts and the bench."""
        node = self._ensure_node()
        node.RemoveAllControlPoints()
        node.AddControlPointWorld(*[float(v) for v in np.asarray(ras, dtype=float).reshape(3)])
        self._on_defined(node, None)

    def clear(self) -> None:
        """No target point (a new scan was loaded)."""
        if self.node is not None and self.node.GetScene() is not None:
            self.node.RemoveAllControlPoints()

    def ras(self) -> np.ndarray | None:
        """The target point (RAS mm), or None."""
        if self.node is None or self.node.GetNumberOfControlPoints() < 1:
            return None
        ras = [0.0, 0.0, 0.0]
        self.node.GetNthControlPointPositionWorld(0, ras)
        return np.asarray(ras)

    def _on_defined(self, node, _event) -> None:
        self.clicked_at = time.perf_counter()
        while node.GetNumberOfControlPoints() > 1:  # one target point: the newest click
            node.RemoveNthControlPoint(0)
        ras = self.ras()
        if ras is not None:
            self.on_point(ras)


def check_inside(volume, ras) -> None:
    """A one-line error when ``ras`` lies outside the scan (a click beside the image)."""
    index = np.asarray(volume.ras_to_index(ras), dtype=float)
    shape = np.asarray(volume.array.shape[::-1])  # (i, j, k) sizes
    if np.any(index < -0.5) or np.any(index > shape - 0.5):
        where = ", ".join(f"{v:.1f}" for v in np.asarray(ras).reshape(3))
        raise XAIError(f"the point ({where}) mm is outside the scan", "click inside the image")
