"""Reading a finished worker's output back into an Explanation (what the scene package builds from)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import XAIError
from ..explanation import Explanation
from ..geometry.volume import Volume


def load_explanation(out_dir: str | os.PathLike, image: Volume | str | os.PathLike) -> Explanation:
    """The Explanation of an ``explain`` job from its output folder.

    ``image`` is the scan the job ran on (the Volume, or the NRRD the parent wrote for the worker);
    the folder is in the one layout of ``explanation_io``, read by its loader.
    """
    from ..explanation_io import load_explanation as load_folder

    out_dir = Path(out_dir)
    result_path = out_dir / "result.json"
    if not result_path.exists():
        raise XAIError(f"no result in {out_dir}", "run the job to completion first")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    if result.get("mode") != "explain":
        raise XAIError(
            f"{out_dir} holds a '{result.get('mode')}' result, not an explanation", "load it as labels"
        )
    return load_folder(out_dir, image)


def load_labels(out_dir: str | os.PathLike) -> tuple[Volume, dict[int, str]]:
    """The label map and names of a ``segment`` job."""
    from ..io.volumes import read_volume

    out_dir = Path(out_dir)
    result = json.loads((out_dir / "result.json").read_text(encoding="utf-8"))
    if result.get("mode") != "segment":
        raise XAIError(f"{out_dir} holds no label map", "run the worker in segment mode")
    names = {int(k): v for k, v in result.get("label_names", {}).items()}
    return read_volume(out_dir / result["labels"]), names


def load_validation(out_dir: str | os.PathLike) -> dict | None:
    """The map checks of an ``explain`` job that asked for them (``metrics.validate``), else None."""
    result = json.loads((Path(out_dir) / "result.json").read_text(encoding="utf-8"))
    return result.get("validation")
