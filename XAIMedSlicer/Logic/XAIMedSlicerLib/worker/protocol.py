"""The wire protocol between the worker process and its parent: JSON lines and exit codes.

The worker writes one JSON object per line on its *message channel* (the original stdout; anything a
library prints goes to stderr instead). Every message has ``type`` and ``t`` (seconds since the worker
started). Types:

* ``progress``: ``stage``, ``fraction`` (0..1 of the whole job), ``message``, ``heartbeat`` (True when
  the line only repeats the last state because nothing new happened for a while);
* ``retry``: ``reason`` (``out_of_memory``), ``failed`` and ``next`` (each ``{"device", "chunk"}``),
  ``message``;
* ``result``: ``outputs`` (file names in the output folder) and ``summary``;
* ``error``: ``kind`` (``user``, ``out_of_memory`` or ``internal``) and a one-line ``message``.

The exit code tells the parent how it ended (see :class:`ExitCode`); a negative code (POSIX) or a
Windows exception code means the worker crashed.
"""

from __future__ import annotations

import enum
import json
import os
import signal
import threading
import time
from typing import IO

HEARTBEAT_S = 0.5  # the worker repeats its state at least this often (the GUI promise is 2 s)


class ExitCode(enum.IntEnum):
    """How a worker ended."""

    DONE = 0
    INTERNAL_ERROR = 1  # an unexpected exception (a bug); the message says where
    USER_ERROR = 2  # bad input: an XAIError with a one-line problem and fix
    OUT_OF_MEMORY = 3  # out of memory even after smaller chunks and the CPU
    CANCELLED = 4  # the worker received SIGTERM and stopped cleanly


# Windows reports crashes as NTSTATUS codes.
_WINDOWS_CRASHES = {
    0xC0000005: "access violation",
    0xC00000FD: "stack overflow",
    0xC0000409: "stack buffer overrun (abort)",
    0xC000001D: "illegal instruction",
}


def crash_description(returncode: int) -> str | None:
    """Words for an exit code that means a crash, or None for an ordinary exit code."""
    code = returncode & 0xFFFFFFFF
    if code in _WINDOWS_CRASHES:  # Windows, as an unsigned or a signed 32-bit number
        return f"{_WINDOWS_CRASHES[code]} (0x{code:08X})"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
        words = {
            "SIGSEGV": "segmentation fault",
            "SIGABRT": "abort",
            "SIGKILL": "killed",
            "SIGBUS": "bus error",
        }
        return f"{words.get(name, name)} ({name})"
    if returncode in (128 + signal.SIGSEGV, 128 + signal.SIGABRT):  # a shell or launcher in between
        return crash_description(-(returncode - 128))
    return None


def decode(line: str) -> dict | None:
    """The message on one line of the channel, or None when the line is not a protocol message."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        msg = json.loads(line)
    except json.JSONDecodeError:
        return None
    return msg if isinstance(msg, dict) and isinstance(msg.get("type"), str) else None


class Emitter:
    """Writes protocol messages (thread-safe) and repeats the last progress as a heartbeat."""

    def __init__(self, stream: IO[str], heartbeat_s: float = HEARTBEAT_S) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last_emit = self._start
        self._state = {"stage": "start", "fraction": 0.0, "message": "starting"}
        self._heartbeat_s = heartbeat_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def on_private_stdout(cls, heartbeat_s: float = HEARTBEAT_S) -> Emitter:
        """Keep the real stdout for messages; point fd 1 (prints, C libraries) at stderr."""
        channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
        os.dup2(2, 1)
        return cls(channel, heartbeat_s)

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def emit(self, type_: str, **fields) -> None:
        """Write one message line and flush it."""
        msg = {"type": type_, "t": round(self.elapsed(), 3), **fields}
        line = json.dumps(msg, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
            self._last_emit = time.monotonic()

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        """Report the job's state (``fraction`` of the whole job, clamped to 0..1)."""
        with self._lock:
            self._state = {
                "stage": stage,
                "fraction": round(min(1.0, max(0.0, float(fraction))), 4),
                "message": message,
            }
            state = dict(self._state)
        self.emit("progress", heartbeat=False, **state)

    def start_heartbeat(self) -> None:
        """Start the thread that repeats the last state when the main thread is busy."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="xaimed-heartbeat", daemon=True)
            self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self._heartbeat_s)
            self._thread = None

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_s / 2):
            with self._lock:
                due = time.monotonic() - self._last_emit >= self._heartbeat_s
                state = dict(self._state)
            if due:
                try:
                    self.emit("progress", heartbeat=True, **state)
                except (OSError, ValueError):  # the parent went away
                    return
