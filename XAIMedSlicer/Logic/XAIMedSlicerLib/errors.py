"""The one error type users see: a single line naming the problem and the fix."""


class XAIError(Exception):
    """A user-facing error. ``str(err)`` is one line: what is wrong, then how to fix it."""

    def __init__(self, problem: str, fix: str = "") -> None:
        message = problem.rstrip(". ")
        if fix:
            message += f". Fix: {fix.rstrip('. ')}"
        super().__init__(message.replace("\n", " ") + ".")
