"""Geometry survives reading, writing and the whole explanation pipeline, exact to 1e-4 mm."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from XAIMedSlicerLib.geometry.frames import lps_to_ras_affine, lps_to_ras_points
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import read_volume, write_volume

TOL = 1e-4


def assert_same_geometry(a: Volume, b: Volume) -> None:
    assert a.size == b.size
    np.testing.assert_allclose(a.spacing, b.spacing, atol=TOL)
    np.testing.assert_allclose(a.origin, b.origin, atol=TOL)
    np.testing.assert_allclose(a.direction, b.direction, atol=TOL)
    # every corner lands on the same RAS point
    for corner in [(0, 0, 0), tuple(s - 1 for s in a.size)]:
        np.testing.assert_allclose(a.index_to_ras(corner), b.index_to_ras(corner), atol=TOL)


def sitk_reference(path) -> sitk.Image:
    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path)))
        return reader.Execute()
    return sitk.ReadImage(str(path))


@pytest.mark.parametrize("relative", ["ct/example_ct.nii.gz", "dicom/ct_abdomen_series"])
@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_real_volume_round_trip(shared_data, tmp_path, relative, suffix):
    path = shared_data(relative)
    volume = read_volume(path)
    ref = sitk_reference(path)
    # geometry as ITK reads it, and the voxel at a known index
    np.testing.assert_allclose(volume.spacing, ref.GetSpacing(), atol=TOL)
    np.testing.assert_allclose(volume.origin, ref.GetOrigin(), atol=TOL)
    idx = (5, 7, 3)
    np.testing.assert_allclose(
        lps_to_ras_points(ref.TransformIndexToPhysicalPoint(idx)), volume.index_to_ras(idx), atol=TOL
    )
    assert volume.array[idx[2], idx[1], idx[0]] == ref[idx]
    out = write_volume(volume, tmp_path / f"copy{suffix}")
    back = read_volume(out)
    assert_same_geometry(volume, back)
    np.testing.assert_array_equal(volume.array, back.array)


def test_oblique_lps_round_trip(oblique_volume, tmp_path):
    for suffix in (".nrrd", ".nii.gz", ".mha"):
        back = read_volume(write_volume(oblique_volume, tmp_path / f"oblique{suffix}"))
        assert_same_geometry(oblique_volume, back)
        np.testing.assert_allclose(back.array, oblique_volume.array)


def test_ras_matrix_is_the_lps_flip(oblique_volume):
    lps = oblique_volume.ijk_to_lps()
    ras = oblique_volume.ijk_to_ras()
    np.testing.assert_allclose(ras[:2], -lps[:2])
    np.testing.assert_allclose(ras[2:], lps[2:])
    np.testing.assert_allclose(lps_to_ras_affine(ras), lps)
    rebuilt = Volume.from_ras_affine(oblique_volume.array, ras)
    assert_same_geometry(rebuilt, oblique_volume)
    p = oblique_volume.index_to_ras((3.5, 2.0, 7.25))
    np.testing.assert_allclose(oblique_volume.ras_to_index(p), (3.5, 2.0, 7.25), atol=1e-9)
