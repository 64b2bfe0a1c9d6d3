"""Volume <-> MRML volume node: exact IJKToRAS (1e-4 mm) on built oblique LPS volumes and real CT."""

from __future__ import annotations

import numpy as np
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import read_volume
from XAIMedSlicerLib.scene import add_volume, create_scene, unique_node_name, volume_from_node
from XAIMedSlicerLib.scene.volumes import matrix_to_numpy, numpy_to_matrix

TOL = 1e-4


def _node_ijk_to_ras(node) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return matrix_to_numpy(matrix)


def _assert_same(volume: Volume, back: Volume) -> None:
    assert back.size == volume.size
    np.testing.assert_allclose(back.ijk_to_ras(), volume.ijk_to_ras(), atol=TOL)
    np.testing.assert_allclose(back.spacing, volume.spacing, atol=TOL)
    np.testing.assert_allclose(back.origin, volume.origin, atol=TOL)
    np.testing.assert_allclose(back.direction, volume.direction, atol=TOL)
    np.testing.assert_array_equal(back.array, volume.array)


def test_oblique_lps_volume_node_geometry(oblique_volume):
    ss = create_scene()
    node = add_volume(ss, oblique_volume, "oblique")
    # the node's own matrix is the Volume's IJK->RAS: LPS origin and axes flipped in x and y
    np.testing.assert_allclose(_node_ijk_to_ras(node), oblique_volume.ijk_to_ras(), atol=TOL)
    origin_ras = np.array(node.GetOrigin())
    np.testing.assert_allclose(origin_ras, np.array(oblique_volume.origin) * [-1, -1, 1], atol=TOL)
    np.testing.assert_allclose(node.GetSpacing(), oblique_volume.spacing, atol=TOL)
    _assert_same(oblique_volume, volume_from_node(node))
    # a voxel index maps to the same RAS point through MRML and through the Volume
    ijk = (7, 11, 5)
    ras = _node_ijk_to_ras(node) @ np.array([*ijk, 1.0])
    np.testing.assert_allclose(ras[:3], oblique_volume.index_to_ras(ijk), atol=TOL)


def test_blob_voxel_lands_at_its_physical_point(oblique_volume):
    ss = create_scene()
    node = add_volume(ss, oblique_volume, "blob")
    back = volume_from_node(node)
    k, j, i = np.unravel_index(int(np.argmax(oblique_volume.array)), oblique_volume.array.shape)
    kb, jb, ib = np.unravel_index(int(np.argmax(back.array)), back.array.shape)
    np.testing.assert_allclose(
        back.index_to_ras((ib, jb, kb)), oblique_volume.index_to_ras((i, j, k)), atol=TOL
    )


def test_label_map_and_dtypes():
    rng = np.random.default_rng(1)
    volume = Volume(rng.integers(0, 300, (5, 6, 7)).astype(np.int64), (0.7, 0.8, 3.0), (1.0, 2.0, 3.0))
    ss = create_scene()
    labels = add_volume(ss, volume, "labels", label_map=True)
    assert labels.IsA("vtkMRMLLabelMapVolumeNode")
    back = volume_from_node(labels)
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, volume.array)
    floats = Volume(rng.normal(size=(5, 6, 7)), (0.7, 0.8, 3.0), (1.0, 2.0, 3.0))
    np.testing.assert_array_equal(volume_from_node(add_volume(ss, floats, "f")).array, floats.array)
    with pytest.raises(XAIError, match="non-integer"):
        add_volume(ss, floats, "bad labels", label_map=True)


def test_parent_linear_transform_is_applied(oblique_volume):
    ss = create_scene()
    node = add_volume(ss, oblique_volume, "moved")
    shift = np.eye(4)
    shift[:3, 3] = (5.0, -3.0, 12.5)
    transform = ss.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    transform.SetMatrixTransformToParent(numpy_to_matrix(shift))
    node.SetAndObserveTransformNodeID(transform.GetID())
    world = volume_from_node(node)
    np.testing.assert_allclose(world.ijk_to_ras(), shift @ oblique_volume.ijk_to_ras(), atol=TOL)
    local = volume_from_node(node, world=False)
    np.testing.assert_allclose(local.ijk_to_ras(), oblique_volume.ijk_to_ras(), atol=TOL)


def test_unique_names_never_reuse_a_node():
    ss = create_scene()
    volume = Volume(np.zeros((2, 3, 4), np.float32), (1, 1, 1), (0, 0, 0))
    first = add_volume(ss, volume, "map")
    second = add_volume(ss, volume, "map")
    assert first.GetName() == "map" and second.GetName() != "map"
    assert first.GetID() != second.GetID()
    assert unique_node_name(ss.scene, "map") not in {"map", second.GetName()}


def test_real_ct_geometry(shared_data):
    ct = read_volume(shared_data("ct/example_ct_sm.nii.gz"))
    seg = read_volume(shared_data("ct/example_seg.nii.gz"))
    ss = create_scene()
    _assert_same(ct, volume_from_node(add_volume(ss, ct, "ct")))
    back = volume_from_node(add_volume(ss, seg, "seg", label_map=True))
    np.testing.assert_allclose(back.ijk_to_ras(), seg.ijk_to_ras(), atol=TOL)
    np.testing.assert_array_equal(back.array, seg.array)


def test_node_without_image_is_a_clear_error():
    ss = create_scene()
    empty = ss.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(XAIError, match="holds no image data"):
        volume_from_node(empty)


def test_headless_current_scene_and_slicer_util():
    import slicer

    from XAIMedSlicerLib.scene import current_scene

    ss = create_scene()
    assert slicer.mrmlScene is ss.scene and current_scene() is ss
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    node = slicer.util.addVolumeFromArray(array, name="via slicer.util")  # slicer.util works headless
    assert node.GetScene() is ss.scene
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), array)
    assert slicer.modules.segmentations.logic() is ss.segmentations_logic
    other = create_scene()
    assert current_scene() is other and current_scene() is not ss
