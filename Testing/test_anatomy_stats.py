"""Per-structure statistics equal a direct numpy computation; label maps align in physical space."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from XAIMedSlicerLib.anatomy.labels import align_labels, parse_label_names, read_label_names
from XAIMedSlicerLib.anatomy.stats import structure_statistics
from XAIMedSlicerLib.anatomy.table import format_table
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import read_volume


def direct_row(attr: Volume, labels: np.ndarray, value: int) -> dict:
    inside = labels == value
    a = attr.array.astype(np.float64)
    pos = np.maximum(a, 0)
    n = int(inside.sum())
    masked = np.where(inside, a, -np.inf)
    k, j, i = np.unravel_index(int(np.argmax(masked)), a.shape)
    return {
        "voxels": n,
        "volume_ml": n * np.prod(attr.spacing) / 1000,
        "positive_sum": pos[inside].sum(),
        "positive_mean": pos[inside].sum() / n,
        "positive_share": pos[inside].sum() / pos.sum(),
        "peak": a[inside].max(),
        "peak_ras": attr.index_to_ras((i, j, k)),
    }


def test_statistics_on_real_ct_labels(shared_data):
    labels = read_volume(shared_data("ct/example_seg.nii.gz"))
    names = read_label_names(shared_data("ct/example_seg_labels_present.json"))
    rng = np.random.default_rng(3)
    attr = labels.with_array(rng.normal(0, 1, labels.array.shape).astype(np.float32))
    rows = structure_statistics(attr, labels, names)
    present = sorted(set(np.unique(labels.array).tolist()) - {0})
    assert sorted(r["label"] for r in rows) == present
    shares = [r["positive_share"] for r in rows]
    assert shares == sorted(shares, reverse=True)
    for row in rows:
        ref = direct_row(attr, labels.array, row["label"])
        assert row["name"] == names[row["label"]]
        assert row["voxels"] == ref["voxels"]
        for key in ("volume_ml", "positive_sum", "positive_mean", "positive_share", "peak"):
            assert row[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12)
        np.testing.assert_allclose([row["peak_r"], row["peak_a"], row["peak_s"]], ref["peak_ras"], atol=1e-4)
    total_inside = sum(r["positive_sum"] for r in rows)
    positive = np.maximum(attr.array.astype(np.float64), 0)
    assert total_inside == pytest.approx(positive[labels.array > 0].sum(), rel=1e-9)
    # the terminal table names the share of positive attribution outside every labelled structure
    outside = positive[labels.array == 0].sum() / positive.sum()
    last = format_table(rows, limit=100).splitlines()[-1]
    assert last.startswith("(outside the labelled structures)")
    assert float(last.split()[-1].rstrip("%")) == pytest.approx(100 * outside, abs=0.051)


def test_label_map_on_flipped_grid_is_resampled_in_physical_space(shared_data):
    """The DICOM label map's y axis is flipped against the series: values must follow physical points."""
    image = read_volume(shared_data("dicom/ct_abdomen_series"))
    seg_path = shared_data("dicom/example_seg_dicom.nii.gz")
    seg = read_volume(seg_path)
    assert not seg.same_grid(image)
    aligned = align_labels(seg, image)
    assert aligned.same_grid(image)
    ref = sitk.ReadImage(str(seg_path))
    rng = np.random.default_rng(0)
    fg = np.argwhere(aligned.array > 0)
    picks = fg[rng.choice(len(fg), 200, replace=False)]
    for k, j, i in picks:
        lps = image.ijk_to_lps() @ np.array([i, j, k, 1.0])
        idx = ref.TransformPhysicalPointToIndex(tuple(lps[:3]))
        assert aligned.array[k, j, i] == ref[idx]
    # same structures survive (the grids cover the same physical region)
    assert set(np.unique(aligned.array)) == set(np.unique(seg.array))


def test_non_overlapping_label_map_is_refused(oblique_volume):
    far = Volume(np.ones((4, 4, 4), np.int16), (1, 1, 1), (5000.0, 5000.0, 5000.0))
    with pytest.raises(XAIError, match="does not overlap"):
        align_labels(far, oblique_volume)


def test_label_name_formats(tmp_path, shared_data):
    assert parse_label_names({"labels": ["bg", "WM", "GM"]}) == {1: "WM", 2: "GM"}
    total = json.loads(shared_data("ct/class_map_total.json").read_text())
    names = parse_label_names(total)
    assert names[1] == "spleen" and names[5] == "liver"
    lut = tmp_path / "lut.txt"
    lut.write_text("# FreeSurfer\n0 Unknown 0 0 0 0\n17 Left-Hippocampus 220 216 20 0\n")
    assert read_label_names(lut) == {0: "Unknown", 17: "Left-Hippocampus"}
