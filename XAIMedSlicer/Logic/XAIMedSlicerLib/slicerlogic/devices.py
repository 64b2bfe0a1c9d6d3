"""The device check for the device selector, in a background thread so that the GUI never waits for it."""

from __future__ import annotations

import threading


class DeviceProbe:
    """``worker.probe_devices()`` (a separate process, so Slicer never initialises CUDA) in a daemon thread.

    The GUI polls :attr:`devices` from a timer: None until the answer is in, then the list of devices
    (``{"device": "cpu" | "cuda:N", "name", "free_mb", "total_mb"}``; an ``error`` key when the check failed).
    """

    def __init__(self, python: str | None = None) -> None:
        self.python = python
        self.devices: list[dict] | None = None
        self._thread = threading.Thread(target=self._run, name="xaimed-devices", daemon=True)

    def _run(self) -> None:
        from ..worker import probe_devices

        self.devices = probe_devices(self.python)

    def start(self) -> DeviceProbe:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> list[dict] | None:
        """Block until the answer is in (or ``timeout`` seconds); returns :attr:`devices`."""
        self._thread.join(timeout)
        return self.devices

    @property
    def gpus(self) -> list[dict]:
        """The CUDA devices found (empty until the answer is in)."""
        return [d for d in self.devices or [] if str(d.get("device", "")).startswith("cuda")]

    @property
    def error(self) -> str | None:
        """Why the check failed, or None."""
        return next((d["error"] for d in self.devices or [] if d.get("error")), None)
