"""The anatomy-masking check: does the classifier keep its prediction when the labelled anatomy is gone?

The scan goes through the model card's own preprocessing; on the network's input grid every voxel
inside the label map (resampled by nearest neighbour) is replaced by the median input value outside it
(the background, on the network's own intensity scale), and the network's probability of the
originally predicted class is read. A prediction that survives removing all the anatomy rests on something else
(a marker, a bias field, the field of view): a shortcut.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import XAIError
from ..explanation import Explanation
from ..geometry.axes import kji_to_xyz


def masked_input(x: torch.Tensor, labels_on_grid: np.ndarray) -> tuple[torch.Tensor, float]:
    """The model input with the anatomy (``labels_on_grid`` != 0, indexed like ``x``'s spatial axes)
    replaced by the median input value outside it."""
    inside = torch.as_tensor(labels_on_grid != 0, device=x.device)
    channel = x[0, 0]
    outside = channel[~inside]
    fill = float(outside.median()) if outside.numel() else float(channel.min())
    masked = x.clone()
    masked[:, :, inside] = fill
    return masked, fill


def anatomy_masking(explanation: Explanation, model=None) -> dict:
    """``{"status": "checked", "probability", "masked_class", "fill"}``, or ``{"status": "not checked",
    "reason"}``. ``model`` is a ``LoadedModel``; None loads the one named in the provenance."""
    if explanation.prediction.get("task") != "classification":
        return {"status": "not applicable", "reason": "not a classifier"}
    if explanation.labels is None or not np.any(np.asarray(explanation.labels.array)):
        return {"status": "not checked", "reason": "no anatomical label map"}
    try:
        return _run(explanation, model)
    except (XAIError, RuntimeError, ValueError) as exc:  # an optional check: say why, do not stop the export
        return {"status": "not checked", "reason": "could not run: " + " ".join(str(exc).split())}


def _run(explanation: Explanation, model) -> dict:
    if model is None:
        path = (explanation.provenance.get("model") or {}).get("path")
        if not path or not Path(path).exists():
            return {"status": "not checked", "reason": "the model file is not available"}
        from ..model.loader import load_model

        model = load_model(path, "cpu")
    from ..methods.targets import as_logits
    from ..preprocess import prepare_input
    from ..preprocess.pipeline import map_to_model_grid

    model_input = prepare_input(explanation.image, model.card.preprocessing, model.device)
    from .facts import anatomy_mask  # labelled structures that are anatomy (not "outside body")

    anatomy = explanation.labels.with_array(anatomy_mask(explanation).astype(np.uint8))
    labels = map_to_model_grid(anatomy, model_input.grid, "nearest").array  # [k, j, i]
    x, fill = masked_input(model_input.tensor, kji_to_xyz(labels))
    with torch.inference_mode():
        probs = torch.softmax(as_logits(model.network(x)).float(), dim=1)[0].cpu().numpy()
    index = int(explanation.prediction["predicted_index"])
    classes = explanation.prediction["classes"]
    return {
        "status": "checked",
        "probability": float(probs[index]),
        "masked_class": str(classes[int(np.argmax(probs))]),
        "fill": fill,
    }
