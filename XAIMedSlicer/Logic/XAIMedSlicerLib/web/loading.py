"""Files named in the page (or on the command line) into the viewer's MRML scene, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import XAIError


def _existing(path, what: str) -> Path:
    if not path or not str(path).strip():
        raise XAIError(f"no {what} given", f"type the path of the {what}")
    path = Path(str(path).strip()).expanduser()
    if not path.exists():
        raise XAIError(f"{what} not found: {path}", f"check the path of the {what}")
    return path


def load_scan(ss, path):
    """A new scalar volume node for the scan at ``path`` (window from its 0.5-99.5 percentiles)."""
    from ..io.volumes import read_volume
    from ..scene.volumes import add_volume

    path = _existing(path, "scan")
    try:
        volume = read_volume(path)
    except XAIError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the user's file, said in one line
        raise XAIError(
            f"cannot read the scan {path.name} ({type(exc).__name__})", "give a NIfTI, NRRD or DICOM folder"
        ) from None
    if volume.array.ndim != 3 or min(volume.array.shape) < 1:
        raise XAIError(f"{path.name} is not a 3D volume", "give a 3D scan")
    node = add_volume(ss, volume, path.name.split(".")[0] or "scan")
    display = node.GetDisplayNode()
    display.SetAutoWindowLevel(0)
    lo, hi = np.percentile(np.asarray(volume.array, dtype=np.float64), [0.5, 99.5])
    display.SetWindowLevelMinMax(float(lo), float(hi if hi > lo else lo + 1.0))
    return node, volume, path


def load_structures(session, labels_path, names_path, scan_node):
    """A new segmentation from a label map (names from a colour table or label-name file), or None."""
    if not labels_path or not str(labels_path).strip():
        return None
    labels = _existing(labels_path, "label map")
    names = _existing(names_path, "label names") if names_path and str(names_path).strip() else None
    try:
        return session.import_label_map(labels, names, scan_node)
    except XAIError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise XAIError(
            f"cannot read the label map {labels.name} ({type(exc).__name__})",
            "give a NIfTI or NRRD label map",
        ) from None


def load_result(ss, folder, scan_node, scan_volume):
    """The SceneBundle of an explanation folder (``xaimed explain --out``) on the loaded scan."""
    from ..explanation_io import load_explanation
    from ..scene import build_scene

    folder = _existing(folder, "result folder")
    explanation = load_explanation(folder, scan_volume)
    return build_scene(explanation, ss=ss, image_node=scan_node)


def model_info(path) -> dict:
    """``model_summary`` of a model path (no PyTorch), with a one-line error for anything else."""
    from ..worker.summary import model_summary

    path = _existing(path, "model")
    try:
        return model_summary(path)
    except XAIError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise XAIError(
            f"cannot read the model {path.name} ({type(exc).__name__})", "choose a model"
        ) from None
