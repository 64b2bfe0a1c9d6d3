"""JSON serialisation shared by every metric result dataclass."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, numpy scalars/arrays and tensors to plain JSON types (NaN becomes None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch tensor
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        value = float(obj)
        return None if math.isnan(value) or math.isinf(value) else value
    return obj


class JSONResult:
    """Mixin for result dataclasses: ``to_dict()``, ``to_json()`` and atomic ``save(path)``."""

    def to_dict(self) -> dict:
        """Plain-JSON dictionary of every field (NaN and infinities become null)."""
        return to_jsonable(self)

    def to_json(self, indent: int | None = 2) -> str:
        """The result as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | os.PathLike) -> None:
        """Write the JSON atomically."""
        from ..io.atomic import write_text

        write_text(path, self.to_json() + "\n")
