"""An offscreen 3D screenshot of a scene: attribution volume rendering with segment surfaces.

Uses MRML's own 3D displayable managers on an offscreen VTK render window (EGL or OSMesa where no
display exists). Multisampling is off: with translucent surfaces, depth peeling and multisampling
together some drivers render a blank view.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import XAIError
from .app import captured_vtk_output
from .render import write_png
from .volume_rendering import add_volume_rendering

MANAGERS = (
    "vtkMRMLCameraDisplayableManager",
    "vtkMRMLViewDisplayableManager",
    "vtkMRMLModelDisplayableManager",
    "vtkMRMLVolumeRenderingDisplayableManager",
    "vtkMRMLSegmentationsDisplayableManager3D",
)


def _view(ss, size: tuple[int, int]):
    import slicer
    import vtk

    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    renderer = vtk.vtkRenderer()
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetMultiSamples(0)
    window.SetSize(int(size[0]), int(size[1]))
    window.AddRenderer(renderer)
    interactor = vtk.vtkGenericRenderWindowInteractor()  # displayable managers expect one; no events
    interactor.SetRenderWindow(window)
    renderer.SetUseDepthPeeling(True)
    renderer.SetUseDepthPeelingForVolumes(True)
    factory = slicer.vtkMRMLThreeDViewDisplayableManagerFactory.GetInstance()
    factory.SetMRMLApplicationLogic(ss.app_logic)
    for manager in MANAGERS:
        if not factory.IsDisplayableManagerRegistered(manager):
            factory.RegisterDisplayableManager(manager)
    group = slicer.vtkMRMLDisplayableManagerGroup()
    group.SetRenderer(renderer)
    group.Initialize(factory, renderer)
    logic = slicer.vtkMRMLViewLogic()
    logic.SetMRMLApplicationLogic(ss.app_logic)
    logic.SetMRMLScene(ss.scene)
    view_node = logic.AddViewNode("XAIMed3D")
    view_node.SetBoxVisible(False)
    view_node.SetAxisLabelsVisible(False)
    view_node.SetBackgroundColor(0.0, 0.0, 0.0)
    view_node.SetBackgroundColor2(0.0, 0.0, 0.0)
    group.SetMRMLDisplayableNode(view_node)
    return window, renderer, group, (logic, interactor), view_node


def _anterior_camera(renderer, group, azimuth: float) -> None:
    """Look at the visible props from the patient's front (+A), superior up, turned by ``azimuth``."""
    renderer.ResetCamera()
    bounds = np.array(renderer.ComputeVisiblePropBounds(), dtype=float)
    center = (bounds[::2] + bounds[1::2]) / 2.0
    distance = max(float(np.max(bounds[1::2] - bounds[::2])), 1.0) * 3.0
    turn = np.deg2rad(azimuth)
    position = center + distance * np.array([np.sin(turn), np.cos(turn), 0.0])
    manager = group.GetDisplayableManagerByClassName("vtkMRMLCameraDisplayableManager")
    camera_node = manager.GetCameraNode() if manager is not None else None
    if camera_node is not None:
        camera_node.SetFocalPoint(*center)
        camera_node.SetPosition(*position)
        camera_node.SetViewUp(0.0, 0.0, 1.0)
    camera = renderer.GetActiveCamera()
    camera.SetFocalPoint(*center)
    camera.SetPosition(*position)
    camera.SetViewUp(0.0, 0.0, 1.0)
    renderer.ResetCamera()
    camera.Zoom(1.3)
    renderer.ResetCameraClippingRange()


def render_3d(
    bundle, path: str | os.PathLike, size: tuple[int, int] = (800, 600), azimuth: float = 30.0
) -> Path:
    """Write a PNG of the attribution volume rendering and the segment surfaces (anterior view, turned
    by ``azimuth`` degrees). Raises XAIError when no offscreen OpenGL is available."""
    import vtk
    from vtk.util import numpy_support

    path = Path(path)
    add_volume_rendering(bundle)
    with captured_vtk_output() as output:
        window, renderer, group, _keep, view_node = _view(bundle.ss, size)
        _anterior_camera(renderer, group, azimuth)
        window.Render()
        grabber = vtk.vtkWindowToImageFilter()
        grabber.SetInput(window)
        grabber.ReadFrontBufferOff()
        grabber.Update()
        image = grabber.GetOutput()
    width, height, _ = image.GetDimensions()
    if width == 0 or image.GetPointData().GetScalars() is None:
        raise XAIError(
            f"offscreen 3D rendering failed {output[-1:]}", "install Mesa/EGL or run with a display"
        )
    rgb = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)[..., :3]
    write_png(np.ascontiguousarray(rgb[::-1]).astype(np.uint8), path)
    group.SetMRMLDisplayableNode(None)
    bundle.ss.scene.RemoveNode(view_node)
    window.Finalize()
    return path
