"""Provenance: what produced a map (versions, model hash, method, target, seed, device, timings)."""

from __future__ import annotations

import platform
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata

PACKAGES = ("xaimedslicer", "torch", "monai", "captum", "numpy", "SimpleITK", "vtk", "slicer-core", "scipy")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the result."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def now_iso() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StageTimer:
    """Wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 4)
