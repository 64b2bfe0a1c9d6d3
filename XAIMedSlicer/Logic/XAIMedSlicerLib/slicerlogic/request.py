"""What the user chose in the Slicer module, as a plain object for scripts and tests.

:class:`ExplainRequest` has exactly the fields of the module's ``XAIMedSlicerParameterNode`` (same names,
same defaults; ``Testing/test_module_logic.py`` checks this), so the session takes either: it reads
attributes only (duck typing). Enum choices (target region, colour map) may be given as the module's
enum members or as their string values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import XAIError


def is_set(path) -> bool:
    """Whether a path parameter holds a path (the parameter node's unset Path is ``Path(".")``)."""
    return path is not None and str(path) not in ("", ".")


def choice(value) -> str:
    """The string value of an enum member (or of a string)."""
    return str(getattr(value, "value", value))


@dataclass
class ExplainRequest:
    """The module's parameters; MRML nodes are vtkMRML...Node objects or None."""

    inputVolume: object = None
    modelPath: Path | None = None
    method: str = "gradcam"
    device: str = "auto"
    targetClass: str = ""
    targetRegion: str = "predicted"  # predicted | mask | box | point
    targetSegmentation: object = None
    targetSegmentID: str = ""
    targetROI: object = None
    targetPoint: object = None
    structures: object = None
    labelMapPath: Path | None = None
    labelNamesPath: Path | None = None
    segmentationModelPath: Path | None = None
    result: object = None
    colorMap: str = "auto"  # auto | sequential | diverging
    opacity: float = 0.5
    threshold: float = 0.1
    showLegend: bool = True
    absoluteValue: bool = False
    volumeRendering: bool = False
    onlyInsideSelected: bool = False
    igSteps: int = 32
    methodParameters: str = ""  # KEY=VALUE items, typed in the worker by the method's declared schema
    chestAnatomy: bool = False  # a radiograph: lungs, heart, mediastinum, outside body from the atlas
    slidingWindow: str = ""  # "96 96 96": a patch network over a full-size scan by sliding windows
    chunkSize: int = 0
    memoryBudgetMB: float = 0.0
    seed: int = 0
    validateMap: bool = True


def method_parameter_items(request: ExplainRequest) -> list[str]:
    """The request's ``KEY=VALUE`` method parameters (one per line or space separated).

    They are typed and checked in the worker by the method's declared schema (``methods.params``),
    since this side runs in Slicer's process without PyTorch: a misspelt or out-of-range parameter
    comes back as the job's one-line error.
    """
    text = str(getattr(request, "methodParameters", "") or "")
    items = [t for line in text.splitlines() for t in line.split()]
    for item in items:
        if "=" not in item or item.startswith("="):
            raise XAIError(f"method parameter '{item}' is not KEY=VALUE", "write it like samples=25")
    return items


def sliding_window(request: ExplainRequest) -> list[int] | None:
    """The request's sliding-window size (three positive integers) or None."""
    text = str(getattr(request, "slidingWindow", "") or "").replace(",", " ").split()
    if not text:
        return None
    try:
        size = [int(t) for t in text]
    except ValueError:
        size = []
    if len(size) != 3 or min(size) < 1:
        raise XAIError(
            f"sliding window '{request.slidingWindow}' is not three sizes", "write it like 96 96 96"
        )
    return size
