"""Which of the module's Python requirements are missing or too old (the fallback when Slicer lacks
``slicer.pydeps.pip_ensure``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def read_requirements(path: str | os.PathLike) -> list[str]:
    """The requirement lines of a requirements file (comments and blank lines left out)."""
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def missing_requirements(requirements: Iterable[str]) -> list[str]:
    """The requirements whose distribution is not installed or whose installed version is outside the
    specifier (by installed package metadata, so ``scikit-image`` is found although it imports as
    ``skimage``)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    missing = []
    for line in requirements:
        requirement = Requirement(line)
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(line)
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            missing.append(line)
    return missing
