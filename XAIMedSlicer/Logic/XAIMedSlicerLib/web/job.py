"""One Explain at a time in the worker process, polled from the event loop (the page stays responsive)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..errors import XAIError

POLL_S = 0.2


class WebJob:
    """Runs ``session.start_explain(request)`` and reports progress, the result or the failure."""

    def __init__(
        self, session, on_progress: Callable[[int, str], None], on_folder: Callable | None = None
    ) -> None:
        self.session = session
        self.on_progress = on_progress
        self.on_folder = on_folder  # called with the output folder of a finished job, before it is removed
        self.job = None

    @property
    def running(self) -> bool:
        return self.job is not None

    async def run(self, request):
        """Start and wait for the worker; returns the attribution node (None when cancelled)."""
        if self.job is not None:
            raise XAIError("an explanation is already running", "wait for it or press Cancel")
        self.job = self.session.start_explain(request)
        try:
            while True:
                percent, progress, outcome = self.job.poll()
                self.on_progress(percent, str(progress.get("message") or progress.get("stage") or ""))
                if outcome is not None:
                    break
                await asyncio.sleep(POLL_S)
            if outcome.status == "cancelled":
                return None
            if not outcome.ok:
                message = str(outcome.message or "").replace("\n", " ").strip()
                if ". Fix: " in message:  # the worker's own one-line error (e.g. a misspelt parameter)
                    problem, fix = message.split(". Fix: ", 1)
                    raise XAIError(f"the explanation failed: {problem}", fix)
                raise XAIError(f"the explanation failed: {message}", "check the model and the scan")
            node = self.session.finish_job(self.job, outcome, request)
            if self.on_folder is not None:
                self.on_folder(node, outcome.out_dir)
            return node
        finally:
            self.job.cleanup()
            self.job = None

    async def cancel(self) -> bool:
        """Stop the worker (killed after a short grace period, off the loop); False when nothing runs."""
        if self.job is None:
            return False
        await asyncio.get_running_loop().run_in_executor(None, self.job.process.cancel)
        return True
