"""Our ``SlicerScene`` on top of trame-slicer's ``SlicerApp``: the scene code in ``scene/`` runs unchanged."""

from __future__ import annotations

import numpy as np

from ..scene.app import SLICE_VIEWS, SlicerScene

LAYOUT = "Quad View"


def slicer_scene(slicer_app) -> SlicerScene:
    """The SlicerScene of a trame-slicer app whose slice views exist (after the layout was set).

    trame-slicer names its slice views by layout colour (``Red`` axial, ``Green`` coronal, ``Yellow``
    sagittal), the names ``scene.SLICE_VIEWS`` uses, so ``show_in_slice_views`` and friends work as is.
    """
    import slicer

    slice_logics = {}
    for view in slicer_app.view_manager.get_slice_views():
        tag = view.get_singleton_tag()
        if tag in SLICE_VIEWS:
            slice_logics[tag] = view._logic  # noqa: SLF001 - trame-slicer keeps the slice logic private
    return SlicerScene(
        scene=slicer_app.scene,
        app_logic=slicer_app.app_logic,
        volumes_logic=slicer_app.volumes_logic,
        segmentations_logic=slicer_app.segmentations_logic,
        # colour legends need the Slicer colours logic (trame-slicer registers the MRML one)
        color_logic=_colors_logic(slicer, slicer_app),
        volume_rendering_logic=slicer_app.volume_rendering._logic,  # noqa: SLF001
        slice_logics=slice_logics,
    )


def _colors_logic(slicer, slicer_app):
    from ..scene.app import _home_directory

    slicer_app.app_logic.SetHomeDirectory(str(_home_directory()))  # an empty home: no colour files
    logic = slicer.vtkSlicerColorLogic()
    logic.SetMRMLApplicationLogic(slicer_app.app_logic)  # before the scene: it looks for colour files
    return slicer_app.register_module_logic(logic, logic_name="XAIMedColors")


def _matrix(vtk_matrix) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)], dtype=float)


def xy_to_ras(slice_node, x: float, y: float) -> np.ndarray:
    """RAS (mm) of a pixel (x, y from the bottom left) of a slice view."""
    return (_matrix(slice_node.GetXYToRAS()) @ np.array([x, y, 0.0, 1.0]))[:3]


def ras_to_xy(slice_node, ras) -> np.ndarray:
    """Pixel (x, y from the bottom left, z = distance to the slice plane in pixels) of a RAS point."""
    point = np.append(np.asarray(ras, dtype=float).reshape(3), 1.0)
    return (np.linalg.inv(_matrix(slice_node.GetXYToRAS())) @ point)[:3]


def view_geometry(ss: SlicerScene, extra: dict | None = None) -> dict:
    """Per slice view: its size in pixels and XYToRAS (row-major 16 numbers), for the page and the tests.

    ``extra``: more slice logics by name (the side-by-side view)."""
    out = {}
    for tag, logic in {**ss.slice_logics, **(extra or {})}.items():
        node = logic.GetSliceNode()
        dims = node.GetDimensions()
        out[tag] = {
            "orientation": node.GetOrientation(),
            "size": [int(dims[0]), int(dims[1])],
            "xy_to_ras": [round(float(v), 6) for v in _matrix(node.GetXYToRAS()).ravel()],
        }
    return out
