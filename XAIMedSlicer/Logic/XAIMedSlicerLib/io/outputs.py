"""An output folder that appears complete or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import XAIError


class OutputDir:
    """Stage files in a hidden sibling folder; ``commit()`` moves them into place.

    A non-empty target is refused unless ``force``; with ``force`` only the files this run
    writes are replaced, other files in the folder are left alone. On failure nothing is moved.
    """

    def __init__(self, target: str | os.PathLike, force: bool = False) -> None:
        self.target = Path(target)
        if self.target.exists() and not self.target.is_dir():
            raise XAIError(f"output path {self.target} is a file", "give a folder path for --out")
        if self.target.is_dir() and any(self.target.iterdir()) and not force:
            raise XAIError(f"output folder {self.target} is not empty", "choose a new folder or pass --force")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.partial-", dir=self.target.parent))

    def path(self, name: str) -> Path:
        """Where to write ``name`` while staging."""
        return self.staging / name

    def commit(self) -> Path:
        """Move the staged files into the target folder."""
        if not self.target.exists():
            os.replace(self.staging, self.target)
            return self.target
        for item in self.staging.iterdir():
            os.replace(item, self.target / item.name)
        self.staging.rmdir()
        return self.target

    def abort(self) -> None:
        """Remove the staging folder."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
