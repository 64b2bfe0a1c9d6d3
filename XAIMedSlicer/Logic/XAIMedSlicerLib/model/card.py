"""The model card: a JSON file naming a network, its weights, preprocessing and task."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import XAIError

CARD_FORMAT = "xaimed-model-card/1"
TASKS = ("classification", "segmentation")
INTENSITY_TYPES = ("percentile", "window", "zscore", "none")


@dataclass
class Preprocessing:
    """How a scan becomes the network input (applied with MONAI transforms, inverted exactly)."""

    orientation: str | None = None  # e.g. "RAS"; None keeps the scan's axes
    spacing: tuple[float, float, float] | None = None  # target spacing in mm; None keeps it
    intensity: dict = field(default_factory=lambda: {"type": "zscore"})
    spatial_size: tuple[int, int, int] | None = None  # centre pad-or-crop after resampling

    @classmethod
    def from_dict(cls, d: dict | None) -> Preprocessing:
        d = dict(d or {})
        intensity = d.get("intensity") or {"type": "zscore"}
        if intensity.get("type") not in INTENSITY_TYPES:
            raise XAIError(
                f"unknown intensity type '{intensity.get('type')}' in the model card",
                f"use one of {', '.join(INTENSITY_TYPES)}",
            )
        spacing = d.get("spacing")
        size = d.get("spatial_size") or d.get("roi_size")
        # 2D cards give (x, y); the one-slice volume's k axis keeps its single slice and its own
        # thickness (MONAI's Spacing keeps the spacing of a non-positive pixdim)
        spacing = list(spacing) + [0.0] if spacing and len(spacing) == 2 else spacing
        size = list(size) + [1] if size and len(size) == 2 else size
        return cls(
            orientation=d.get("orientation"),
            spacing=tuple(float(s) for s in spacing) if spacing else None,
            intensity=intensity,
            spatial_size=tuple(int(s) for s in size) if size else None,
        )

    def to_dict(self) -> dict:
        return {
            "orientation": self.orientation,
            "spacing": list(self.spacing) if self.spacing else None,
            "intensity": self.intensity,
            "spatial_size": list(self.spatial_size) if self.spatial_size else None,
        }


@dataclass
class ModelCard:
    """Everything the pipeline needs to know about a model besides its weights."""

    name: str
    task: str
    classes: list[str]
    network: dict
    weights: Path | None
    preprocessing: Preprocessing
    gradcam_layer: str | None = None
    weights_key_prefix: str = ""
    sha256: str | None = None
    path: Path | None = None
    spatial_dims: int = 3  # 2: a 2D network run on one-slice volumes (model/slice2d.py)
    input_size: tuple[int, int] | None = None  # 2D networks: resize the slice to this inside the graph

    @classmethod
    def from_dict(cls, d: dict, base: Path | None = None) -> ModelCard:
        """Validate a card dictionary; relative paths resolve against ``base``."""
        task = d.get("task", "classification")
        if task not in TASKS:
            raise XAIError(
                f"unknown task '{task}' in the model card", "use 'classification' or 'segmentation'"
            )
        network = d.get("network")
        if not isinstance(network, dict) or "name" not in network:
            raise XAIError(
                "the model card has no network name", 'add "network": {"name": ..., "args": {...}}'
            )
        weights = d.get("weights")
        weights_path = None
        if weights:
            weights_path = Path(weights)
            if not weights_path.is_absolute() and base is not None:
                weights_path = base / weights_path
        classes = [str(c) for c in d.get("classes", [])]
        return cls(
            name=str(d.get("name", "model")),
            task=task,
            classes=classes,
            network=network,
            weights=weights_path,
            preprocessing=Preprocessing.from_dict(d.get("preprocessing")),
            gradcam_layer=d.get("gradcam_layer"),
            weights_key_prefix=str(d.get("weights_key_prefix", "")),
            sha256=d.get("sha256"),
            spatial_dims=_spatial_dims(d, network),
            input_size=tuple(int(s) for s in d["input_size"]) if d.get("input_size") else None,
        )

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read and validate a card file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise XAIError(
                f"model card {path.name} is not valid JSON (line {exc.lineno})", "fix the JSON"
            ) from None
        card = cls.from_dict(data, base=path.parent)
        card.path = path
        return card

    def class_index(self, target: str | int) -> int:
        """Index of a class given by name or number."""
        if isinstance(target, int) or (isinstance(target, str) and target.lstrip("-").isdigit()):
            index = int(target)
            if self.classes and not 0 <= index < len(self.classes):
                raise XAIError(
                    f"class index {index} out of range", f"the model has {len(self.classes)} classes"
                )
            return index
        if target in self.classes:
            return self.classes.index(target)
        raise XAIError(
            f"unknown target class '{target}'",
            f"choose one of {', '.join(self.classes) or 'the class indices'}",
        )


def _spatial_dims(d: dict, network: dict) -> int:
    """2 or 3: the card's ``spatial_dims``, else the network's, else 2 for torchxrayvision classes."""
    dims = d.get("spatial_dims") or (network.get("args") or {}).get("spatial_dims")
    if dims is None:
        dims = 2 if str(network.get("name", "")).startswith("xrv.") else 3
    if int(dims) not in (2, 3):
        raise XAIError(f"spatial_dims {dims} in the model card", "use 2 (radiographs) or 3")
    return int(dims)
