"""Segment mode: run a segmentation network and return its label map on the scan's grid."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import XAIError
from ..geometry.axes import xyz_to_kji
from ..geometry.resample import resample_to
from ..geometry.volume import Volume


def predict_labels(
    image: Volume, loaded, progress: Callable[[float, str], None] | None = None
) -> tuple[Volume, dict[int, str]]:
    """Arg-max label map of a segmentation network, resampled (nearest) onto ``image``'s grid.

    ``loaded`` is a :class:`~XAIMedSlicerLib.model.loader.LoadedModel`. Returns the labels (uint16)
    and ``{label: class name}`` for the non-background classes.
    """
    import torch

    from ..preprocess import prepare_input

    report = progress or (lambda _f, _m: None)
    report(0.1, "preprocessing")
    model_input = prepare_input(image, loaded.card.preprocessing, loaded.device)
    report(0.3, "inference")
    with torch.inference_mode():
        output = loaded.network(model_input.tensor)
    if output.ndim != 5:
        raise XAIError(
            f"the network output has shape {tuple(output.shape)}, not a 3D segmentation (1, K, X, Y, Z)",
            "choose a segmentation network to make structures",
        )
    labels_xyz = output[0].argmax(0).to(torch.int32).cpu().numpy()
    report(0.8, "mapping labels back to the scan grid")
    on_grid = model_input.grid.with_array(xyz_to_kji(labels_xyz).astype(np.float32))
    labels = resample_to(on_grid, image, "nearest", default=0)
    labels = labels.with_array(np.rint(labels.array).astype(np.uint16))
    classes = loaded.card.classes or [str(i) for i in range(output.shape[1])]
    present = [int(v) for v in np.unique(labels.array) if v != 0]
    return labels, {v: classes[v] if v < len(classes) else str(v) for v in present}
