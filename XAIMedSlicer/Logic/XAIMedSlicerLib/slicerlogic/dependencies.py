"""Installing the module's Python dependencies inside 3D Slicer (no Qt; needs the Slicer application).

PyTorch comes from the PyTorch extension when it is installed (``PyTorchUtils``), else from the
requirements; the module's ``Resources/requirements.txt`` goes through ``slicer.pydeps.pip_ensure``
(Slicer 5.11 and later, older: ``slicer.packaging``) or, lacking both, ``slicer.util.pip_install`` of
the missing lines only.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .requirements import missing_requirements, read_requirements
from .texts import install_plan


def _same(text: str) -> str:
    return text


def _pytorch_utils():
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        return None
    return PyTorchUtils


def _pip_ensure():
    import slicer

    try:
        import slicer.pydeps as pydeps  # Slicer 5.11 and later
    except ImportError:
        pydeps = getattr(slicer, "packaging", None)
    return getattr(pydeps, "pip_ensure", None) if pydeps is not None else None


def ensure_dependencies(requirements_path: str | os.PathLike, tr: Callable[[str], str] = _same) -> list[str]:
    """Install what is missing; returns the requirement lines that were handed to an installer."""
    torch_utils = _pytorch_utils()
    if torch_utils is not None:
        torch_logic = torch_utils.PyTorchUtilsLogic()
        if not torch_logic.torchInstalled():
            if torch_logic.installTorch(askConfirmation=True, torchVersionRequirement=">=2.1") is None:
                raise ValueError(tr("PyTorch is required. Install it from the PyTorch module."))
    wanted = install_plan(read_requirements(requirements_path), torch_extension=torch_utils is not None)
    pip_ensure = _pip_ensure()
    if pip_ensure is not None:
        from packaging.requirements import Requirement

        pip_ensure([Requirement(line) for line in wanted], requester="XAIMedSlicer")
        return wanted
    missing = missing_requirements(wanted)
    if missing:
        import slicer

        slicer.util.pip_install(" ".join(f'"{line}"' for line in missing))
    return missing
