"""A real MRML scene with the logics that Slicer's modules would attach, headless or inside 3D Slicer."""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import XAIError

log = logging.getLogger(__name__)

# layout name -> (orientation, short view name used in file names)
SLICE_VIEWS = {"Red": ("Axial", "axial"), "Yellow": ("Sagittal", "sagittal"), "Green": ("Coronal", "coronal")}

_HOME: Path | None = None
_CURRENT: SlicerScene | None = None  # the last scene create_scene made global (headless)


def _slicer():
    try:
        import slicer
    except ImportError as exc:  # pragma: no cover - slicer-core is a hard dependency
        raise XAIError("slicer-core is not installed", "pip install slicer-core==5.11.0.6") from exc
    return slicer


def _home_directory() -> Path:
    """An empty Slicer 'home' for the headless logics (they look for colour files under it)."""
    global _HOME
    if _HOME is None or not _HOME.exists():
        _HOME = Path(tempfile.mkdtemp(prefix="xaimed-slicer-home-"))
        (_HOME / "share" / "ColorFiles").mkdir(parents=True)
        atexit.register(shutil.rmtree, _HOME, True)
    return _HOME


@dataclass
class SlicerScene:
    """A ``vtkMRMLScene`` and the logics attached to it (kept referenced so they stay alive)."""

    scene: object
    app_logic: object
    volumes_logic: object
    segmentations_logic: object
    color_logic: object
    volume_rendering_logic: object
    slice_logics: dict = field(default_factory=dict)
    extra_logics: list = field(default_factory=list)

    def slice_node(self, layout_name: str):
        """The slice node of view ``Red``, ``Yellow`` or ``Green``."""
        return self.slice_logics[layout_name].GetSliceNode()

    def composite_node(self, layout_name: str):
        """The slice composite node (background/foreground/label layers) of a view."""
        return self.slice_logics[layout_name].GetSliceCompositeNode()


def _attach(logic, app, scene, name: str | None):
    logic.SetMRMLApplicationLogic(app)
    logic.SetMRMLScene(scene)
    if name:
        app.SetModuleLogic(name, logic)
    return logic


def _add_slice_logics(slicer, scene, app) -> dict:
    logics = {}
    for layout_name, (orientation, _) in SLICE_VIEWS.items():
        logic = slicer.vtkMRMLSliceLogic()
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(app)
        node = logic.AddSliceNode(layout_name)
        node.SetOrientation(orientation)
        app.GetSliceLogics().AddItem(logic)
        logics[layout_name] = logic
    return logics


def create_scene(*, set_global: bool = True) -> SlicerScene:
    """A new scene with application, colour, volumes, segmentations, volume-rendering, subject-hierarchy,
    tables, remote-IO (for reading .mrb) logics and the three slice views.

    With ``set_global`` (default) ``slicer.mrmlScene`` is set to it, so ``slicer.util`` helpers work.
    """
    import vtk

    slicer = _slicer()
    home = _home_directory()
    scene = slicer.vtkMRMLScene()
    crosshair = slicer.vtkMRMLCrosshairNode()
    crosshair.SetCrosshairName("default")
    scene.AddNode(crosshair)

    app = slicer.vtkSlicerApplicationLogic()
    app.SetHomeDirectory(str(home))
    app.SetShareDirectory("share")
    app.SetTemporaryPath(str(home))
    app.SetMRMLScene(scene)
    app.GetColorLogic().SetMRMLScene(scene)
    app.GetColorLogic().AddDefaultColorNodes()
    app.SetSliceLogics(vtk.vtkCollection())
    app.SetViewLogics(vtk.vtkCollection())
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)

    color_logic = _attach(slicer.vtkSlicerColorLogic(), app, scene, "Colors")
    volumes = _attach(slicer.vtkSlicerVolumesLogic(), app, scene, "Volumes")
    segmentations = _attach(slicer.vtkSlicerSegmentationsModuleLogic(), app, scene, "Segmentations")
    rendering = _attach(slicer.vtkSlicerVolumeRenderingLogic(), app, scene, "VolumeRendering")
    hierarchy = _attach(slicer.vtkSlicerSubjectHierarchyModuleLogic(), app, scene, "SubjectHierarchy")
    tables = _attach(slicer.vtkSlicerTablesLogic(), app, scene, "Tables")

    remote_io = slicer.vtkMRMLRemoteIOLogic()
    remote_io.SetMRMLScene(scene)
    remote_io.AddDataIOToScene()
    data_io = slicer.vtkDataIOManagerLogic()
    data_io.SetMRMLApplicationLogic(app)
    data_io.SetMRMLScene(scene)
    data_io.SetAndObserveDataIOManager(scene.GetDataIOManager())

    ss = SlicerScene(
        scene=scene,
        app_logic=app,
        volumes_logic=volumes,
        segmentations_logic=segmentations,
        color_logic=color_logic,
        volume_rendering_logic=rendering,
        slice_logics=_add_slice_logics(slicer, scene, app),
        extra_logics=[hierarchy, tables, remote_io, data_io, crosshair],
    )
    if set_global:
        global _CURRENT
        slicer.mrmlScene = scene
        if not _inside_slicer_app(slicer):
            slicer.modules = HeadlessModules(ss)
            _CURRENT = ss
    return ss


class _Module:
    def __init__(self, logic) -> None:
        self._logic = logic

    def logic(self):
        return self._logic


class HeadlessModules:
    """``slicer.modules`` for headless use: ``slicer.modules.segmentations.logic()`` and friends return
    this scene's logics, so that ``slicer.util`` helpers (``arrayFromSegmentBinaryLabelmap``, ...) work."""

    headless = True

    def __init__(self, ss: SlicerScene) -> None:
        self.segmentations = _Module(ss.segmentations_logic)
        self.volumes = _Module(ss.volumes_logic)
        self.colors = _Module(ss.color_logic)
        self.volumerendering = _Module(ss.volume_rendering_logic)


def _inside_slicer_app(slicer) -> bool:
    return getattr(slicer, "app", None) is not None


def current_scene() -> SlicerScene:
    """Inside 3D Slicer: the application's scene and logics. Headless: the scene ``create_scene`` last made
    global while it is still ``slicer.mrmlScene``, else a new one."""
    slicer = _slicer()
    if not _inside_slicer_app(slicer):
        if _CURRENT is not None and getattr(slicer, "mrmlScene", None) is _CURRENT.scene:
            return _CURRENT
        return create_scene()
    app = slicer.app.applicationLogic()
    layout = slicer.app.layoutManager()
    slice_logics = {}
    for layout_name in SLICE_VIEWS:
        widget = layout.sliceWidget(layout_name) if layout else None
        if widget is not None:
            slice_logics[layout_name] = widget.sliceLogic()
    return SlicerScene(
        scene=slicer.mrmlScene,
        app_logic=app,
        volumes_logic=slicer.modules.volumes.logic(),
        segmentations_logic=slicer.modules.segmentations.logic(),
        color_logic=slicer.modules.colors.logic(),
        volume_rendering_logic=slicer.modules.volumerendering.logic(),
        slice_logics=slice_logics,
    )


@contextlib.contextmanager
def captured_vtk_output() -> Iterator[list[str]]:
    """Route VTK's output window into a list (MRB writing prints one line per zipped file)."""
    import vtk

    previous = vtk.vtkOutputWindow.GetInstance()  # the Python reference keeps it alive
    capture = vtk.vtkStringOutputWindow()
    vtk.vtkOutputWindow.SetInstance(capture)
    lines: list[str] = []
    try:
        yield lines
    finally:
        lines.extend(capture.GetOutput().splitlines())
        vtk.vtkOutputWindow.SetInstance(previous)
        for line in lines:
            if "ERR" in line or "rror" in line:
                log.warning("VTK: %s", line)
