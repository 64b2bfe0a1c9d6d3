"""Targets: what scalar of the network output an attribution explains."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def as_logits(output) -> torch.Tensor:
    """The network output as ``(B, K, ...)``: first tensor of a tuple/dict, ``(B,)`` as one class."""
    if isinstance(output, dict):
        output = next(iter(output.values()))
    if isinstance(output, (tuple, list)):
        output = output[0]
    return output[:, None] if output.ndim == 1 else output


@dataclass
class ClassTarget:
    """The logit of class ``index`` of a classifier (output ``(B, K)``)."""

    index: int
    name: str = ""

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return as_logits(output)[:, self.index]

    def describe(self) -> dict:
        return {"kind": "class_logit", "class_index": self.index, "class_name": self.name}


@dataclass
class RegionTarget:
    """Sum of class ``index``'s logits inside a region of a segmentation output ``(B, K, X, Y, Z)``.

    ``mask`` is a boolean tensor on the output's spatial grid. ``region`` says where it came
    from (``predicted``, ``mask`` or ``box``).
    """

    index: int
    mask: torch.Tensor
    region: str = "predicted"
    name: str = ""

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        output = as_logits(output)
        mask = self.mask.to(device=output.device, dtype=output.dtype)
        return (output[:, self.index] * mask).flatten(1).sum(1)

    def describe(self) -> dict:
        return {
            "kind": "segmentation_region",
            "class_index": self.index,
            "class_name": self.name,
            "region": self.region,
            "region_voxels": int(self.mask.sum().item()),
        }


Target = ClassTarget | RegionTarget  # what every attribution method's ``target`` is
