"""The Explanation result: everything downstream (scene, render, metrics, CLI) reads this object."""

from __future__ import annotations

from dataclasses import dataclass, field

from .geometry.volume import Volume


@dataclass
class Explanation:
    """One attribution of one model on one scan, on the scan's own grid.

    * ``image``: the input scan, untouched.
    * ``attribution``: float32 map on exactly the grid of ``image``.
    * ``signed``: True when the map has meaningful negative values (diverging colour map).
    * ``prediction``: ``{"task", "classes", "probabilities", "predicted_class", ...}``.
    * ``target``: the target's description (``Target.describe()``).
    * ``labels``: the anatomical label map resampled onto ``image``'s grid, or None.
    * ``label_names``: label value -> structure name.
    * ``structures``: one dict per structure (see ``anatomy.stats.STRUCTURE_COLUMNS``).
    * ``provenance``: versions, model hash, method and parameters, target, seed, device, timings.
    """

    image: Volume
    attribution: Volume
    signed: bool
    method: str
    prediction: dict
    target: dict
    labels: Volume | None = None
    label_names: dict[int, str] = field(default_factory=dict)
    structures: list[dict] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def peak_ras(self) -> list[float]:
        """RAS position (mm) of the voxel with the highest attribution."""
        import numpy as np

        k, j, i = np.unravel_index(int(np.argmax(self.attribution.array)), self.attribution.array.shape)
        return self.attribution.index_to_ras((i, j, k)).tolist()
