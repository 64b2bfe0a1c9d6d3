"""The parent side: start a worker process, read its messages in threads, cancel it, explain its end.

Inside 3D Slicer the worker runs in ``PythonSlicer`` (a launcher that starts the real Python, which is
why Cancel kills the whole process tree); headless it runs in ``sys.executable``. The GUI calls
:meth:`WorkerProcess.poll` from a ``qt.QTimer``; scripts and tests call :meth:`WorkerProcess.wait` (or
:func:`run_job`), the blocking mode.
"""

from __future__ import annotations

import collections
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .job import JobFolder, WorkerJob
from .protocol import ExitCode, crash_description, decode

CANCEL_GRACE_S = 0.5  # SIGTERM first, then SIGKILL for the whole tree; well inside the 2 s promise
LOGIC_DIR = Path(__file__).resolve().parents[2]  # the folder holding the XAIMedSlicerLib package


@dataclass
class WorkerOutcome:
    """How a job ended: ``status`` is ``done``, ``cancelled`` or ``failed``; ``message`` is one line."""

    status: str
    exit_code: int | None
    message: str
    result: dict = field(default_factory=dict)
    out_dir: Path | None = None
    log_tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "done"


def python_executable() -> str:
    """PythonSlicer inside 3D Slicer, else the running interpreter."""
    try:
        import slicer

        home = Path(slicer.app.slicerHome)  # only the desktop application has slicer.app
    except (ImportError, AttributeError):
        return sys.executable
    for name in ("PythonSlicer", "PythonSlicer.exe"):
        candidate = home / "bin" / name
        if candidate.exists():
            return str(candidate)
    return shutil.which("PythonSlicer") or sys.executable


def worker_command(job_path: Path, python: str | None = None) -> list[str]:
    return [python or python_executable(), "-m", "XAIMedSlicerLib.worker", str(job_path)]


def worker_environment(base: dict | None = None) -> dict:
    """The environment with this package importable and unbuffered output.

    Inside 3D Slicer the base is Slicer's startup environment (without the launcher's settings, which
    PythonSlicer sets again for itself); elsewhere it is this process's environment.
    """
    env = dict(_startup_environment() if base is None else base)
    paths = [str(LOGIC_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


def _startup_environment() -> dict:
    try:
        import slicer

        return dict(slicer.util.startupEnvironment())  # only the desktop application has slicer.app
    except Exception:  # noqa: BLE001  (headless: no application, so no launcher settings either)
        return dict(os.environ)


class WorkerProcess:
    """One running job. Messages arrive in a queue filled by two reader threads (stdout, stderr)."""

    def __init__(
        self, folder: JobFolder, job: WorkerJob, *, python: str | None = None, env: dict | None = None
    ):
        self.folder = folder
        self.job = job
        self.python = python
        self.env = env
        self.messages: queue.Queue = queue.Queue()
        self.last_progress: dict = {"stage": "start", "fraction": 0.0, "message": "starting"}
        self.outcome: WorkerOutcome | None = None
        self._proc: subprocess.Popen | None = None
        self._readers: list[threading.Thread] = []
        self._error: dict | None = None
        self._result_msg: dict | None = None
        self._cancelled = False
        self._log_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._log_lock = threading.Lock()

    # ---- life cycle ---------------------------------------------------------------------------
    def start(self) -> WorkerProcess:
        if Path(self.job.out_dir).exists():
            raise FileExistsError(f"output folder {self.job.out_dir} exists; a job never overwrites output")
        self.job.write(self.folder.job_path)
        kwargs = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NO_WINDOW
        self._proc = subprocess.Popen(
            worker_command(self.folder.job_path, self.python),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=worker_environment(self.env),
            cwd=str(self.folder.root),
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            **kwargs,
        )
        for name, stream in (("stdout", self._proc.stdout), ("stderr", self._proc.stderr)):
            thread = threading.Thread(
                target=self._read, args=(name, stream), name=f"xaimed-{name}", daemon=True
            )
            thread.start()
            self._readers.append(thread)
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def poll(self) -> list[dict]:
        """Take every message that arrived (non-blocking); sets :attr:`outcome` once it has ended."""
        out = self._drain()
        ended = self._proc is not None and self._proc.poll() is not None
        if self.outcome is None and ended and all(not t.is_alive() for t in self._readers):
            out += self._drain()
            self.outcome = self._finish()
        return out

    def wait(
        self, timeout: float | None = None, on_message: Callable[[dict], None] | None = None
    ) -> WorkerOutcome:
        """Blocking mode: hand every message to ``on_message`` until the worker ends.

        After ``timeout`` seconds the worker is cancelled.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.outcome is None:
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                deadline = None
            try:
                batch = [self.messages.get(timeout=0.05)]  # sleeps until something arrives
                self._note(batch[0])
            except queue.Empty:
                batch = []
            batch += self.poll()
            if on_message is not None:
                for msg in batch:
                    on_message(msg)
        return self.outcome

    def cancel(self, grace_s: float = CANCEL_GRACE_S) -> None:
        """Stop the worker and all its children (SIGTERM, then SIGKILL after ``grace_s``); no output stays.

        A worker that has already ended is left alone (its outcome stands).
        """
        if self._proc is None or self._proc.poll() is not None:
            return
        import psutil

        self._cancelled = True
        try:
            children = psutil.Process(self._proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        # The direct child is waited for through Popen only: psutil would reap it and hide its exit code.
        self._proc.terminate()
        for child in children:
            _signal(child, "terminate")
        deadline = time.monotonic() + grace_s
        try:
            self._proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        _, alive = psutil.wait_procs(children, timeout=max(0.0, deadline - time.monotonic()))
        for child in alive:
            _signal(child, "kill")
        psutil.wait_procs(alive, timeout=1.0)
        try:
            self._proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        self.folder.remove_partial_output()

    # ---- internals ----------------------------------------------------------------------------
    def _drain(self) -> list[dict]:
        out = []
        while True:
            try:
                msg = self.messages.get_nowait()
            except queue.Empty:
                return out
            self._note(msg)
            out.append(msg)

    def _read(self, name: str, stream) -> None:
        log = None
        try:
            if name == "stderr":
                log = open(self.folder.log_path, "a", encoding="utf-8")  # noqa: SIM115
            for line in stream:
                msg = decode(line) if name == "stdout" else None
                if msg is None:
                    text = line.rstrip("\n")
                    with self._log_lock:
                        self._log_tail.append(text)
                    if log is not None:
                        log.write(text + "\n")
                        log.flush()
                    msg = {"type": "log", "stream": name, "message": text}
                msg["received"] = time.monotonic()
                self.messages.put(msg)
        finally:
            if log is not None:
                log.close()

    def _note(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "progress":
            self.last_progress = {k: msg.get(k) for k in ("stage", "fraction", "message")}
        elif kind == "error":
            self._error = msg
        elif kind == "result":
            self._result_msg = msg

    def _finish(self) -> WorkerOutcome:
        code = self._proc.returncode
        with self._log_lock:
            tail = list(self._log_tail)
        out_dir = Path(self.job.out_dir)
        if self._cancelled:
            self.folder.remove_partial_output()
            return WorkerOutcome("cancelled", code, "Cancelled; no result was written.", log_tail=tail)
        if code == ExitCode.DONE and out_dir.is_dir() and (out_dir / "result.json").exists():
            import json

            result = json.loads((out_dir / "result.json").read_text(encoding="utf-8"))
            return WorkerOutcome("done", code, "Done.", result=result, out_dir=out_dir, log_tail=tail)
        self.folder.remove_partial_output()
        return WorkerOutcome("failed", code, self._failure_message(code, tail), log_tail=tail)

    def _failure_message(self, code: int, tail: list[str]) -> str:
        stage = self.last_progress.get("message") or self.last_progress.get("stage")
        if self._error is not None and code in (
            ExitCode.USER_ERROR,
            ExitCode.OUT_OF_MEMORY,
            ExitCode.INTERNAL_ERROR,
        ):
            prefix = "Out of memory: " if code == ExitCode.OUT_OF_MEMORY else ""
            return prefix + str(self._error.get("message", "")).strip()
        crash = crash_description(code)
        last = next((line.strip() for line in reversed(tail) if line.strip()), "")
        hint = f" Last log line: {last[:160]}." if last else ""
        if crash:
            return (
                f"The worker process crashed ({crash}) while '{stage}'; Slicer is unaffected. "
                f"Fix: try the CPU device or a smaller input; the full log is {self.folder.log_path}.{hint}"
            )
        return (
            f"The worker process ended unexpectedly (exit code {code}) while '{stage}'. "
            f"Fix: see the log {self.folder.log_path}.{hint}"
        )


def probe_devices(python: str | None = None, timeout: float = 120.0) -> list[dict]:
    """The devices the worker's Python can use (CPU, and each GPU with its name and free memory).

    Runs in a separate process so that the caller (3D Slicer) never initialises CUDA itself.
    """
    import json

    try:
        done = subprocess.run(
            [python or python_executable(), "-m", "XAIMedSlicerLib.worker", "--devices"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=worker_environment(),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [{"device": "cpu", "name": "CPU", "error": f"device check failed: {exc}"}]
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return [{"device": "cpu", "name": "CPU", "error": f"device check failed: {last}"}]
    return json.loads(lines[-1])


def _signal(proc, action: str) -> None:
    try:
        getattr(proc, action)()
    except Exception:  # noqa: BLE001  (psutil.NoSuchProcess: it is gone already)
        pass


def run_job(
    job: WorkerJob,
    folder: JobFolder,
    *,
    on_message: Callable[[dict], None] | None = None,
    timeout: float | None = None,
    python: str | None = None,
) -> WorkerOutcome:
    """Blocking mode for scripts and tests: start the worker and wait for its outcome."""
    return WorkerProcess(folder, job, python=python).start().wait(timeout=timeout, on_message=on_message)
