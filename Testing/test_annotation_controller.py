"""The annotation controller on a real slicer-core scene: a painted segmentation node becomes a saved,
coded annotation on the case grid, its voxels and geometry exact, its agreement equal to numpy."""

from __future__ import annotations

import numpy as np
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.geometry.volume import Volume
from XAIMedSlicerLib.io.volumes import write_volume
from XAIMedSlicerLib.scene import create_scene
from XAIMedSlicerLib.scene.segmentation import add_segmentation
from XAIMedSlicerLib.scene.volumes import add_volume
from XAIMedSlicerLib.slicerlogic.annotation import region_mask, save_disagreement
from XAIMedSlicerLib.study.store import CaseSpec, Study

DIRECTION = np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]])


def test_segmentation_node_saved_exactly(tmp_path):
    rng = np.random.default_rng(1)
    shape = (6, 10, 12)
    image = Volume(rng.normal(size=shape).astype(np.float32), (0.8, 1.1, 2.5), (10.0, -20.0, 5.0), DIRECTION)
    attr = image.with_array(rng.normal(size=shape).astype(np.float32))
    write_volume(attr, tmp_path / "gc.nrrd")
    painted = np.zeros(shape, np.uint8)
    painted[2:5, 3:8, 4:10] = 1
    ss = create_scene()
    image_node = add_volume(ss, image, "CT")
    seg_node, _ = add_segmentation(
        ss, image.with_array(painted), {1: "drawn"}, reference_node=image_node, closed_surface=False
    )
    n_nodes = ss.scene.GetNumberOfNodes()
    mask = region_mask(seg_node, image_node, ss)
    assert ss.scene.GetNumberOfNodes() == n_nodes  # no node left behind
    assert np.array_equal(mask, painted.astype(bool))
    study = Study.create(tmp_path / "s.sqlite", name="t", methods=["gradcam"])
    study.add_cases([CaseSpec("c1", "img", "h" * 8, {"class": 1}, {"gradcam": str(tmp_path / "gc.nrrd")})])
    saved = save_disagreement(
        study,
        case_id="c1",
        reference=image,
        mask=mask,
        code="missed",
        reader="R1",
        note="lesion",
        method="gradcam",
    )
    ann = study.load_annotation(saved.annotation_id)
    assert np.array_equal(ann.mask("missed"), mask)
    assert np.abs(ann.labels.ijk_to_ras() - image.ijk_to_ras()).max() < 1e-4
    assert ann.provenance.model_hash == "h" * 8 and ann.provenance.target == {"class": 1}
    from XAIMedSlicerLib.metrics.localisation import top_k_region

    top = top_k_region(attr.array.astype(np.float64), 5.0)
    assert saved.agreement["missed_share"] == pytest.approx((mask & ~top).sum() / mask.sum())
    with pytest.raises(XAIError):
        save_disagreement(
            study, case_id="c1", reference=image, mask=mask, code="agree", reader=" ", method="gradcam"
        )
    assert len(study.annotations()) == 1
    study.close()
