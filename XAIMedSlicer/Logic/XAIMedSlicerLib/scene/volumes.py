"""Volume <-> vtkMRMLScalarVolumeNode with exact geometry (IJKToRAS from ``Volume.ijk_to_ras``)."""

from __future__ import annotations

import numpy as np

from ..errors import XAIError
from ..geometry.volume import Volume

# dtypes that Slicer's volume nodes and NRRD storage handle; others are converted
_LABEL_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32)


def unique_node_name(scene, base: str) -> str:
    """``base`` if no node has that name yet, else ``base_1``, ``base_2``, ..."""
    if scene.GetFirstNodeByName(base) is None:
        return base
    return scene.GenerateUniqueName(base)


def matrix_to_numpy(matrix) -> np.ndarray:
    """A vtkMatrix4x4 as a 4x4 float array."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)], dtype=float)


def numpy_to_matrix(array: np.ndarray):
    """A 4x4 array as a vtkMatrix4x4."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def _storable(array: np.ndarray, label_map: bool) -> np.ndarray:
    if array.dtype == bool:
        return array.astype(np.uint8)
    if label_map and array.dtype not in _LABEL_DTYPES:
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise XAIError("a label map holds non-integer values", "give integer label values")
        lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if lo < np.iinfo(np.int32).min or hi > np.iinfo(np.int32).max:
            raise XAIError(f"label values {lo}..{hi} do not fit in 32 bits", "renumber the labels")
        return array.astype(np.int16 if -32768 <= lo and hi <= 32767 else np.int32)
    if array.dtype == np.int64:
        return array.astype(np.int32) if np.abs(array).max(initial=0) < 2**31 else array.astype(np.float64)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return array


def set_node_array(node, volume: Volume, *, label_map: bool = False) -> None:
    """Put ``volume``'s voxels and exact grid into an existing volume node."""
    import vtk
    from vtk.util import numpy_support

    array = np.ascontiguousarray(_storable(np.asarray(volume.array), label_map))
    image = vtk.vtkImageData()
    image.SetDimensions(*volume.size)
    scalars = numpy_support.numpy_to_vtk(array.ravel(order="C"), deep=True)
    scalars.SetName("ImageScalars")
    image.GetPointData().SetScalars(scalars)
    node.SetIJKToRASMatrix(numpy_to_matrix(volume.ijk_to_ras()))
    node.SetAndObserveImageData(image)


def add_volume(ss, volume: Volume, name: str, *, label_map: bool = False, attributes: dict | None = None):
    """Add ``volume`` as a new scalar (or label map) volume node with a display node; returns the node.

    The node's IJKToRAS is exactly ``volume.ijk_to_ras()``. ``name`` is made unique in the scene.
    """
    scene = getattr(ss, "scene", ss)
    cls = "vtkMRMLLabelMapVolumeNode" if label_map else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(cls, unique_node_name(scene, name))
    set_node_array(node, volume, label_map=label_map)
    node.CreateDefaultDisplayNodes()
    for key, value in (attributes or {}).items():
        node.SetAttribute(str(key), str(value))
    return node


def node_ijk_to_ras(node, *, world: bool = True) -> np.ndarray:
    """4x4 IJK-to-RAS of a volume node; with ``world`` a linear parent transform is applied too."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = matrix_to_numpy(matrix)
    parent = node.GetParentTransformNode() if world else None
    if parent is not None:
        if not parent.IsTransformToWorldLinear():
            raise XAIError(
                f"volume '{node.GetName()}' is under a non-linear transform",
                "harden the transform (Data module) before explaining the volume",
            )
        to_world = vtk.vtkMatrix4x4()
        parent.GetMatrixTransformToWorld(to_world)
        ijk_to_ras = matrix_to_numpy(to_world) @ ijk_to_ras
    return ijk_to_ras


def volume_from_node(node, *, world: bool = True) -> Volume:
    """A copy of a volume node's voxels as a Volume with the node's exact geometry."""
    from vtk.util import numpy_support

    image = node.GetImageData() if node is not None else None
    if image is None or image.GetPointData().GetScalars() is None:
        name = node.GetName() if node is not None else "None"
        raise XAIError(f"volume node '{name}' holds no image data", "load a scalar volume first")
    if image.GetNumberOfScalarComponents() != 1:
        raise XAIError(
            f"volume '{node.GetName()}' has {image.GetNumberOfScalarComponents()} components",
            "give a single-component scalar volume",
        )
    i, j, k = image.GetDimensions()
    array = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(k, j, i).copy()
    return Volume.from_ras_affine(array, node_ijk_to_ras(node, world=world))
