"""Saving a scene as a Medical Reality Bundle (.mrb) atomically, and loading one back."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import XAIError
from .app import SlicerScene, captured_vtk_output, create_scene


def save_mrb(scene, path: str | os.PathLike) -> Path:
    """Write ``scene`` (SlicerScene or vtkMRMLScene) to ``path`` (.mrb); no partial file on failure.

    The bundle is written into a temporary folder beside ``path`` under its final name, then renamed
    over ``path`` in one step.
    """
    path = Path(path)
    if path.suffix.lower() != ".mrb":
        raise XAIError(f"scene file {path.name} does not end in .mrb", "name the scene file *.mrb")
    mrml_scene = getattr(scene, "scene", scene)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        target = folder / path.name
        with captured_vtk_output() as output:
            ok = mrml_scene.WriteToMRB(str(target))
        if not ok or not target.is_file() or target.stat().st_size == 0:
            errors = [line for line in output if "ERR" in line or "rror" in line][-1:]
            raise XAIError(f"Slicer could not write the scene {path.name} {errors}", "check disk space")
        os.replace(target, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return path


def load_mrb(path: str | os.PathLike, *, set_global: bool = True) -> SlicerScene:
    """A new headless scene (with remote-IO and data-IO logics) holding the bundle's nodes."""
    path = Path(path)
    if not path.is_file():
        raise XAIError(f"scene file {path} does not exist", "give the path of a saved .mrb")
    ss = create_scene(set_global=set_global)
    with captured_vtk_output():
        ok = ss.scene.ReadFromMRB(str(path))
    if not ok:
        raise XAIError(f"Slicer could not read the scene {path.name}", "give a .mrb written by Slicer")
    return ss
