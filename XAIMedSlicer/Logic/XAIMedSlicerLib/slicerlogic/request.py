"""What the user chose in the Slicer module, as a plain object for scripts and tests.

:class:`ExplainRequest` has exactly the fields of the module's ``XAIMedSlicerParameterNode`` (same names,
same defaults; ``Testing/test_module_logic.py`` checks this), so the session takes either: it reads
attributes only (duck typing). Enum choices (target region, colour map) may be given as the module's
enum members or as their string values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    chunkSize: int = 0
    memoryBudgetMB: float = 0.0
    seed: int = 0
    validateMap: bool = True
