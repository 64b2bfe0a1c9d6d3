"""Rewrite the two file lists in XAIMedSlicer/CMakeLists.txt from the files git sees (run before committing)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CMAKE = REPO / "XAIMedSlicer" / "CMakeLists.txt"


def module_files() -> list[str]:
    """Tracked or new (not ignored) files of the module folder, relative to it."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "XAIMedSlicer"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    rel = [
        str((REPO / line).relative_to(REPO / "XAIMedSlicer"))
        for line in out
        if line and (REPO / line).is_file()
    ]
    return sorted(p for p in rel if p != "CMakeLists.txt")


def _item(path: str) -> str:
    return (
        path.replace("XAIMedSlicer.py", "${MODULE_NAME}.py", 1)
        if path == "XAIMedSlicer.py"
        else (path.replace("/XAIMedSlicer.", "/${MODULE_NAME}.") if path.startswith("Resources/") else path)
    )


def _replace(text: str, variable: str, items: list[str]) -> str:
    body = "".join(f"  {_item(i)}\n" for i in items)
    return re.sub(rf"set\(\s*{variable}\s+.*?\)", f"set({variable}\n{body}  )", text, count=1, flags=re.S)


def main() -> None:
    files = module_files()
    scripts = ["XAIMedSlicer.py"] + [f for f in files if f.endswith(".py") and f != "XAIMedSlicer.py"]
    resources = [f for f in files if not f.endswith(".py")]
    text = CMAKE.read_text(encoding="utf-8")
    text = _replace(_replace(text, "MODULE_PYTHON_SCRIPTS", scripts), "MODULE_PYTHON_RESOURCES", resources)
    tmp = CMAKE.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(CMAKE)
    print(f"{CMAKE.relative_to(REPO)}: {len(scripts)} scripts, {len(resources)} resources")


if __name__ == "__main__":
    main()
