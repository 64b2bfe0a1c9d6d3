"""Device choice: ``auto`` (CUDA when available), ``cpu`` or ``cuda``."""

from __future__ import annotations

import torch

from ..errors import XAIError

DEVICES = ("auto", "cpu", "cuda")


def choose_device(name: str = "auto") -> torch.device:
    """Resolve a device name, refusing ``cuda`` where no GPU is usable."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise XAIError(f"unknown device '{name}'", "use auto, cpu or cuda")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise XAIError("CUDA was requested but no GPU is available", "use --device cpu or auto")
    return torch.device(name)


def describe_device(device: torch.device) -> dict:
    """Name and free memory of a device, for provenance and the GUI."""
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return {
            "type": "cuda",
            "name": torch.cuda.get_device_name(device),
            "free_bytes": free,
            "total_bytes": total,
        }
    return {"type": "cpu", "name": "CPU", "threads": torch.get_num_threads()}
