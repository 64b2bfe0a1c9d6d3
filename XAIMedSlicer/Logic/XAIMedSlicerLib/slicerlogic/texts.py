"""What the module's labels say, Qt-free: model, devices, progress, the map's check verdict.

Every function takes ``tr`` (the module passes Slicer's ``_``) so the texts stay translatable.
"""

from __future__ import annotations

from collections.abc import Callable

from .request import is_set

Tr = Callable[[str], str]


def _same(text: str) -> str:
    return text


def model_info(path, tr: Tr = _same) -> tuple[str, list[str]]:
    """(label text, class names) of a model path, read without PyTorch; a bad path: its one-line error."""
    if not is_set(path):
        return tr("No model selected."), []
    from ..worker.summary import model_summary

    try:
        summary = model_summary(path)
    except Exception as exc:  # XAIError: one line for the label
        return str(exc), []
    classes = list(summary["classes"] or [])
    text = tr("{kind}, task: {task}, classes: {classes}").format(
        kind=summary["kind"],
        task=summary["task"],
        classes=", ".join(classes) if classes else tr("unknown until it runs"),
    )
    return text, classes


def device_text(probe, tr: Tr = _same) -> str | None:
    """The device line of a ``DeviceProbe`` (None while the check still runs)."""
    if probe is None or probe.devices is None:
        return None
    gpus = "; ".join(
        tr("{name}: {free:.0f} MB free of {total:.0f} MB").format(
            name=d["name"], free=d["free_mb"], total=d["total_mb"]
        )
        for d in probe.gpus
    )
    return gpus or probe.error or tr("No CUDA GPU found: the CPU is used.")


def progress_text(progress: dict, elapsed: float, tr: Tr = _same) -> str:
    """``stage: message (12 s)`` of the worker's last progress message."""
    return tr("{stage}: {message} ({elapsed:.0f} s)").format(
        stage=progress.get("stage"), message=progress.get("message"), elapsed=elapsed
    )


def flags_text(node, tr: Tr = _same) -> tuple[str, bool]:
    """(text, failed) of the selected map's sanity and faithfulness verdict."""
    from ..scene.flags import get_flags

    flags = get_flags(node)
    if flags is None:
        return (tr("Checks: not run for this map.") if node else ""), False
    prefix = tr("FAILS CHECKS: ") if flags["failed"] else tr("Checks: ")
    return prefix + flags["text"], bool(flags["failed"])


def install_plan(wanted: list[str], *, torch_extension: bool) -> list[str]:
    """The requirement lines to ensure: the module's, plus PyTorch when no PyTorch extension manages it."""
    return list(wanted) + ([] if torch_extension else ["torch>=2.1"])
