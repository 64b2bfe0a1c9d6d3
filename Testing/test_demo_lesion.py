"""Demo data: the MNI152 template from nilearn's wheel, its tissue labels, and synthetic lesions."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from XAIMedSlicerLib.demo.cases import make_case
from XAIMedSlicerLib.demo.lesion import Lesion, insert_lesion, sample_lesion
from XAIMedSlicerLib.demo.template import LABEL_NAMES, load_template


@pytest.fixture(scope="module")
def template():
    return load_template(2)


def _mask_distance_mm(mask):
    """Distance (mm) of every voxel to the nearest mask voxel (axis-aligned or not: per-axis spacing)."""
    return distance_transform_edt(np.asarray(mask.array) == 0, sampling=tuple(reversed(mask.spacing)))


def _centroid_ras(mask):
    idx = np.argwhere(np.asarray(mask.array) > 0)[:, ::-1].astype(float)  # (i, j, k)
    affine = mask.ijk_to_ras()
    return (idx @ affine[:3, :3].T + affine[:3, 3]).mean(axis=0)


def test_template_loads_offline_from_the_wheel(monkeypatch):
    """No network access: any socket connection during loading fails the test."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("the template loader tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    load_template.cache_clear()
    tpl = load_template(2)
    assert tpl.image.size == (99, 117, 95)
    assert tpl.image.array.dtype == np.float32


def test_template_geometry_and_labels_match_nilearn(template):
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=2)
    gm = datasets.load_mni152_gm_template(resolution=2).get_fdata()
    wm = datasets.load_mni152_wm_template(resolution=2).get_fdata()
    brain = datasets.load_mni152_brain_mask(resolution=2).get_fdata() > 0.5
    # geometry: the Volume's IJK-to-RAS is the NIfTI affine, and voxel (i, j, k) holds data[i, j, k]
    np.testing.assert_allclose(template.image.ijk_to_ras(), t1.affine, atol=1e-4)
    data = t1.get_fdata()
    for i, j, k in [(49, 58, 47), (30, 80, 60), (70, 20, 10)]:
        assert template.image.array[k, j, i] == pytest.approx(data[i, j, k], abs=1e-6)
    assert template.labels.same_grid(template.image, tol=1e-4)
    assert template.brain.same_grid(template.image, tol=1e-4)
    # labels: argmax of (GM, WM, 1 - GM - WM) inside the brain mask, computed here on nibabel's [i, j, k]
    expected = np.argmax(np.stack([gm, wm, np.clip(1 - gm - wm, 0, 1)]), axis=0) + 1
    expected[~brain] = 0
    np.testing.assert_array_equal(template.labels.array, expected.transpose(2, 1, 0))
    assert set(np.unique(template.labels.array)) == {0, *LABEL_NAMES}
    # tissue intensities are ordered as in a T1: CSF < grey matter < white matter
    medians = {v: np.median(template.image.array[template.labels.array == v]) for v in LABEL_NAMES}
    assert medians[3] < medians[1] < medians[2]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_lesion_changes_intensity_only_at_the_mask(template, seed):
    rng = np.random.default_rng(seed)
    white = float(np.median(template.image.array[template.labels.array == 2]))
    lesion = sample_lesion(rng, template.brain, white)
    out = insert_lesion(template.image, lesion, template.brain)
    assert out.image.same_grid(template.image) and out.mask.same_grid(template.image)
    diff = out.image.array.astype(np.float64) - template.image.array
    changed = diff != 0
    mask = out.mask.array > 0
    assert mask.sum() > 0 and changed.sum() > 0
    # every changed voxel lies in the mask dilated by the soft edge (edge x largest semi-axis) + a voxel diagonal
    reach = lesion.edge * max(lesion.semi_axes_mm) + np.linalg.norm(template.image.spacing)
    assert _mask_distance_mm(out.mask)[changed].max() <= reach
    # inside the brain only; inside the mask at least half-way from the tissue to the lesion's intensity
    assert not changed[template.brain.array == 0].any()
    before = template.image.array[mask].astype(np.float64)
    after = out.image.array[mask].astype(np.float64)
    assert np.all(np.abs(after - lesion.intensity) <= 0.5 * np.abs(before - lesion.intensity) + 1e-5)
    assert np.all((after - before) * (lesion.intensity - before) >= 0)
    # hyper-intense lesions are brighter than all normal tissue, hypo-intense ones darker than grey matter
    if lesion.contrast > 0:
        assert lesion.intensity > template.image.array.max()
    else:
        assert lesion.intensity < np.median(template.image.array[template.labels.array == 1])
    # the reported centre is the mask centroid in RAS
    np.testing.assert_allclose(out.centre_ras, _centroid_ras(out.mask), atol=1e-4)
    assert np.linalg.norm(out.centre_ras - np.asarray(lesion.centre_ras)) < max(lesion.semi_axes_mm)


def test_lesion_lands_at_its_physical_position_on_an_oblique_grid(oblique_volume):
    """A lesion defined in RAS mm goes to the same physical place on an oblique, anisotropic LPS grid."""
    image = oblique_volume.with_array(np.ones(oblique_volume.array.shape, dtype=np.float32))
    centre = image.index_to_ras((13.0, 15.0, 9.0))
    rotation = np.linalg.qr(np.random.default_rng(7).normal(size=(3, 3)))[0]
    lesion = Lesion(tuple(centre), (6.0, 4.0, 7.5), tuple(map(tuple, rotation)), intensity=1.5, contrast=0.5)
    out = insert_lesion(image, lesion)
    # the expected weight of every voxel, from its RAS position (computed here without the package)
    k, j, i = np.indices(image.array.shape)
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3)
    ras = ijk @ image.ijk_to_ras()[:3, :3].T + image.ijk_to_ras()[:3, 3]
    radius = np.linalg.norm(((ras - centre) @ rotation) / np.array([6.0, 4.0, 7.5]), axis=1)
    radius = radius.reshape(image.array.shape)
    core, outside = radius <= 1 - lesion.edge, radius >= 1 + lesion.edge
    np.testing.assert_allclose(out.image.array[core], 1.5, atol=1e-6)
    np.testing.assert_array_equal(out.image.array[outside], 1.0)
    np.testing.assert_array_equal(out.mask.array > 0, radius <= 1.0 + 1e-9)
    assert np.linalg.norm(out.centre_ras - centre) < 0.5 * min(image.spacing)


def test_cases_are_seeded_and_differ_only_at_the_lesion(template):
    a = make_case(11, lesion=True)
    b = make_case(11, lesion=False)
    again = make_case(11, lesion=True)
    np.testing.assert_array_equal(a.image.array, again.image.array)
    np.testing.assert_allclose(a.centre_ras, again.centre_ras, atol=0)
    assert a.label == 1 and b.label == 0 and b.centre_ras is None and not b.lesion_mask.array.any()
    assert a.labels.same_grid(template.image) and a.image.same_grid(template.image)
    np.testing.assert_array_equal(a.labels.array, template.labels.array)
    changed = a.image.array != b.image.array
    reach = a.lesion.edge * max(a.lesion.semi_axes_mm) + np.linalg.norm(template.image.spacing)
    assert changed.any() and _mask_distance_mm(a.lesion_mask)[changed].max() <= reach
    np.testing.assert_allclose(a.centre_ras, _centroid_ras(a.lesion_mask), atol=1e-4)
    # different seeds give different cases; without forcing, both classes occur
    assert not np.array_equal(make_case(12).image.array, a.image.array)
    assert {make_case(s).label for s in range(20)} == {0, 1}
