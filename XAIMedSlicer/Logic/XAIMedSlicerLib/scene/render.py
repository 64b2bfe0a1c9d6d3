"""Axial, coronal and sagittal PNGs through MRML slice logic (no OpenGL needed).

``vtkMRMLSliceLogic`` blends the layers exactly as Slicer's slice views do: the scan (background), the
attribution overlay (foreground, at the chosen opacity, below-threshold voxels transparent) and the
structure label map drawn as outlines in the segment colours (label layer).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import XAIError
from ..io.atomic import atomic_path
from .app import SLICE_VIEWS
from .interaction import center_slice_views
from .overlay import show_in_slice_views
from .volumes import volume_from_node


def attribution_peak_ras(node) -> np.ndarray:
    """RAS (mm) of the highest value of a map node."""
    volume = volume_from_node(node)
    k, j, i = np.unravel_index(int(np.nanargmax(volume.array)), volume.array.shape)
    return volume.index_to_ras((i, j, k))


def _corners_ras(node) -> np.ndarray:
    volume = volume_from_node(node)
    ni, nj, nk = volume.size
    corners = [(i, j, k) for i in (-0.5, ni - 0.5) for j in (-0.5, nj - 0.5) for k in (-0.5, nk - 0.5)]
    return np.array([volume.index_to_ras(c) for c in corners])


def _frame_view(slice_node, orientation: str, corners: np.ndarray, center: np.ndarray, size: int) -> None:
    """Orientation, pixel size and field of view showing the whole scan with ``center`` in the middle."""
    slice_node.SetOrientation(orientation)
    matrix = slice_node.GetSliceToRAS()
    rotation = np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])
    in_plane = (corners - center) @ rotation  # coordinates along the view's x, y, normal axes
    half = np.abs(in_plane[:, :2]).max(axis=0)
    half = np.maximum(half, 1e-3)
    scale = size / (2.0 * half.max())
    width, height = (max(8, round(2.0 * h * scale)) for h in half)
    slice_node.SetDimensions(int(width), int(height), 1)
    slice_node.SetFieldOfView(width / scale, height / scale, float(np.abs(in_plane[:, 2]).max() * 2.0))


def slice_image_rgb(logic) -> np.ndarray:
    """The blended slice image of a slice logic as an (height, width, 3) uint8 array, top row first."""
    from vtk.util import numpy_support

    logic.UpdatePipeline()
    producer = logic.GetImageDataConnection().GetProducer()
    producer.Update()
    image = producer.GetOutputDataObject(0)
    width, height, _ = image.GetDimensions()
    rgba = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)
    rgb = rgba[..., :3].astype(np.uint8)
    if rgba.shape[-1] == 4:
        rgb = np.where(rgba[..., 3:4] > 0, rgb, 0).astype(np.uint8)
    return np.ascontiguousarray(rgb[::-1])  # VTK's first row is the bottom one


def write_png(rgb: np.ndarray, path: Path) -> Path:
    """Write an (h, w, 3) uint8 image as PNG, atomically."""
    import vtk
    from vtk.util import numpy_support

    height, width, _ = rgb.shape
    image = vtk.vtkImageData()
    image.SetDimensions(width, height, 1)
    flat = np.ascontiguousarray(rgb[::-1]).reshape(-1, 3)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(flat, deep=True))
    with atomic_path(path) as tmp:
        writer = vtk.vtkPNGWriter()
        writer.SetFileName(str(tmp))
        writer.SetInputData(image)
        writer.Write()
        if writer.GetErrorCode() or not tmp.is_file() or tmp.stat().st_size == 0:
            raise XAIError(f"could not write {path.name}", "check that the output folder is writable")
    return path


def render_views(
    bundle, out_dir: str | os.PathLike, opacity: float = 0.5, center_ras=None, size: int = 512
) -> dict[str, Path]:
    """Write ``overlay_axial.png``, ``overlay_coronal.png``, ``overlay_sagittal.png`` to ``out_dir``.

    Each shows the scan with the attribution overlay at ``opacity`` and the segment outlines, centred on
    ``center_ras`` (default: the attribution peak); the longer side is ``size`` pixels. The slice views
    are left showing the same thing. Returns {"axial" | "coronal" | "sagittal": path}.
    """
    ss = bundle.ss
    missing = [name for name in SLICE_VIEWS if name not in ss.slice_logics]
    if missing:
        raise XAIError(f"the scene has no slice views {missing}", "build the scene with scene.create_scene()")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    show_in_slice_views(ss, bundle.image_node, bundle.attribution_node, opacity, label=bundle.labelmap_node)
    center = np.asarray(
        center_ras if center_ras is not None else attribution_peak_ras(bundle.attribution_node)
    )
    corners = _corners_ras(bundle.image_node)
    images = {}
    for layout_name, (orientation, _) in SLICE_VIEWS.items():
        _frame_view(ss.slice_node(layout_name), orientation, corners, center, int(size))
    center_slice_views(ss, center)
    for layout_name, (_, view) in SLICE_VIEWS.items():
        images[view] = slice_image_rgb(ss.slice_logics[layout_name])
    return {view: write_png(rgb, out_dir / f"overlay_{view}.png") for view, rgb in images.items()}


def pixel_of_ras(slice_node, ras, image_shape) -> tuple[int, int]:
    """(row, column) in a ``slice_image_rgb`` image of a RAS point lying in the slice plane."""
    matrix = slice_node.GetXYToRAS()
    xy_to_ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    x, y, _, _ = np.linalg.solve(xy_to_ras, np.append(np.asarray(ras, dtype=float), 1.0))
    height = image_shape[0]
    return int(round(height - 1 - y)), int(round(x))
