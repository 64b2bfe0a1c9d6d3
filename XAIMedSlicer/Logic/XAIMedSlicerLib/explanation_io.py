"""The one folder layout of an Explanation (CLI, worker and cohort runner all write and read this).

Layout (``format_version`` 1)::

    explanation.json   format_version, method, signed, prediction, target, label_names, structures,
                       provenance, image reference (path, sha256 of the voxels, geometry), file names
    attribution.nrrd   float32, on exactly the image grid
    labels.nrrd        the label map on the image grid (only when the explanation has labels)
    image.nrrd         the scan itself (only with ``include_image=True``)

The folder is staged beside the target and moved into place at the end (``io.outputs.OutputDir``), so it
appears complete or not at all; files that other writers add to the same folder are left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .errors import XAIError
from .explanation import Explanation
from .geometry.volume import Volume

FORMAT_VERSION = 1
INDEX = "explanation.json"


def array_sha256(volume: Volume) -> str:
    """Content hash of a volume's voxels (dtype, shape and bytes; geometry is stored separately)."""
    array = np.ascontiguousarray(volume.array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def _geometry(volume: Volume) -> dict:
    return {
        "shape_kji": list(volume.array.shape),
        "spacing": [float(v) for v in volume.spacing],
        "origin_lps": [float(v) for v in volume.origin],
        "direction_lps": np.asarray(volume.direction, dtype=float).tolist(),
    }


def save_explanation(
    explanation: Explanation,
    folder: str | os.PathLike,
    *,
    image_path: str | os.PathLike | None = None,
    include_image: bool = False,
) -> Path:
    """Write ``explanation`` in the one layout into ``folder`` (atomically) and return the folder.

    ``image_path`` records where the scan came from; ``include_image`` also stores the scan itself so
    the folder loads without it.
    """
    from .io.atomic import write_json
    from .io.outputs import OutputDir
    from .io.volumes import write_volume

    if not explanation.attribution.same_grid(explanation.image):
        raise XAIError("the attribution is not on the image grid", "resample it onto the image first")
    attribution = explanation.attribution.with_array(explanation.attribution.array.astype(np.float32))
    index = {
        "format_version": FORMAT_VERSION,
        "method": explanation.method,
        "signed": bool(explanation.signed),
        "prediction": explanation.prediction,
        "target": explanation.target,
        "label_names": {str(k): v for k, v in explanation.label_names.items()},
        "structures": list(explanation.structures),
        "provenance": dict(explanation.provenance),
        "image": {
            "path": str(Path(image_path).resolve()) if image_path is not None else None,
            "sha256": array_sha256(explanation.image),
            "dtype": explanation.image.array.dtype.str,
            "geometry": _geometry(explanation.image),
            "file": "image.nrrd" if include_image else None,
        },
        "attribution": "attribution.nrrd",
        "labels": "labels.nrrd" if explanation.labels is not None else None,
    }
    with OutputDir(folder, force=True) as out:
        write_volume(attribution, out.path("attribution.nrrd"))
        if explanation.labels is not None:
            write_volume(explanation.labels, out.path("labels.nrrd"))
        if include_image:
            write_volume(explanation.image, out.path("image.nrrd"))
        write_json(out.path(INDEX), index)
    return Path(folder)


def is_explanation_folder(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a complete explanation in this layout."""
    return (Path(folder) / INDEX).is_file()


def read_index(folder: str | os.PathLike) -> dict:
    """The ``explanation.json`` of a folder, checked for its format version."""
    path = Path(folder) / INDEX
    if not path.is_file():
        raise XAIError(f"no explanation in {folder} ({INDEX} missing)", "run the explanation to completion")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise XAIError(f"{path} is not valid JSON (line {exc.lineno})", "rerun the explanation") from None
    version = index.get("format_version")
    if version != FORMAT_VERSION:
        raise XAIError(
            f"{path} has format_version {version}, this package reads {FORMAT_VERSION}",
            "rerun the explanation with this version of XAIMedSlicer",
        )
    return index


def load_explanation(
    folder: str | os.PathLike, image: Volume | str | os.PathLike | None = None
) -> Explanation:
    """Read a folder written by ``save_explanation``.

    ``image``: the scan (Volume or path); when None, the stored ``image.nrrd`` or the recorded path is
    read. The scan's voxels must match the recorded hash and the attribution must lie on its grid.
    """
    from .io.volumes import read_volume

    folder = Path(folder)
    index = read_index(folder)
    ref = index["image"]
    if image is None:
        source = folder / ref["file"] if ref.get("file") else ref.get("path")
        if source is None or not Path(source).exists():
            raise XAIError(
                f"the scan of {folder} is not available ({source})", "pass the image to the loader"
            )
        image = source
    if not isinstance(image, Volume):
        image = read_volume(image)
    if array_sha256(image) != ref["sha256"]:
        raise XAIError(
            f"the scan given does not match the one explained in {folder}", "pass the original scan"
        )
    attribution = read_volume(folder / index["attribution"])
    if not attribution.same_grid(image):
        raise XAIError(f"the attribution in {folder} is not on the scan's grid", "pass the original scan")
    labels = read_volume(folder / index["labels"]) if index.get("labels") else None
    return Explanation(
        image=image,
        attribution=attribution,
        signed=bool(index["signed"]),
        method=index["method"],
        prediction=index.get("prediction", {}),
        target=index.get("target", {}),
        labels=labels,
        label_names={int(k): v for k, v in index.get("label_names", {}).items()},
        structures=list(index.get("structures", [])),
        provenance=dict(index.get("provenance", {})),
    )
