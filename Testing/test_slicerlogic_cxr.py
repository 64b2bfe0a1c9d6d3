"""The module's logic on a chest radiograph: a one-slice volume node, chest anatomy made by the worker."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from XAIMedSlicerLib.demo.cxr_model import CARD_PATH
from XAIMedSlicerLib.io.volumes import read_volume
from XAIMedSlicerLib.scene import create_scene
from XAIMedSlicerLib.scene.volumes import add_volume
from XAIMedSlicerLib.slicerlogic import ExplainRequest, ExplainSession


def _ijk_to_ras(node) -> np.ndarray:
    import vtk

    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def test_radiograph_with_chest_anatomy_in_the_module_logic(shared_data):
    ss = create_scene()
    session = ExplainSession(ss)
    radiograph = read_volume(shared_data("cxr/00000001_000.png"))
    node = add_volume(ss, radiograph, "chest x-ray")
    # a model path relative to where the user started (the worker runs in its own folder)
    relative = Path(os.path.relpath(CARD_PATH))
    p = ExplainRequest(inputVolume=node, modelPath=relative, method="gradcam", device="cpu",
                       chestAnatomy=True, validateMap=False)  # fmt: skip
    job = session.start_explain(p)
    outcome = job.process.wait(timeout=300)
    assert outcome.status == "done", outcome.message
    attribution = session.finish_job(job, outcome, p)
    job.cleanup()
    bundle = session.bundle_for_node(attribution)
    # the map is a one-slice volume on the radiograph's own grid
    assert bundle.attribution_node.GetImageData().GetDimensions() == (512, 512, 1)
    np.testing.assert_allclose(_ijk_to_ras(bundle.attribution_node), _ijk_to_ras(node), atol=1e-4)
    seg = bundle.segmentation_node.GetSegmentation()
    names = {seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())}
    assert {"right lung", "left lung", "heart", "mediastinum"} <= names
    table = {row["name"]: row for row in bundle.structures}
    assert {"right lung", "left lung", "outside body"} <= set(table)
    assert sum(r["positive_share"] for r in table.values()) <= 1.0 + 1e-6
    assert ss.scene.GetNodeByID(node.GetID()) is node  # the user's node is kept
