"""Build files: the CMake lists name every file on disk, the extension metadata, catalog entry and icon."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
MODULE_DIR = REPO / "XAIMedSlicer"
MODULE_CMAKE = MODULE_DIR / "CMakeLists.txt"
EXTENSION_CMAKE = REPO / "CMakeLists.txt"
CATALOG = REPO / "XAIMedSlicer.json"
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}


def cmake_list(text: str, variable: str) -> list[str]:
    """Items of ``set(VARIABLE item item ...)`` with ``${MODULE_NAME}`` expanded."""
    match = re.search(rf"set\(\s*{variable}\s+(.*?)\)", text, re.S)
    assert match, f"{variable} is not set"
    name = re.search(r"set\(\s*MODULE_NAME\s+(\S+)\s*\)", text).group(1)
    items = [line.split("#")[0].strip() for line in match.group(1).splitlines()]
    return [item.replace("${MODULE_NAME}", name) for item in items if item]


def module_files() -> list[str]:
    """Files of the module folder as git sees them (tracked or new, not ignored), relative to it."""
    if shutil.which("git") and (REPO / ".git").exists():
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "XAIMedSlicer"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        paths = [REPO / line for line in out if line]
    else:  # a source tarball: walk, leaving out what .gitignore leaves out
        paths = [
            p
            for p in MODULE_DIR.rglob("*")
            if p.is_file()
            and not SKIPPED_PARTS & set(p.parts)
            and p.suffix != ".pyc"
            and ".egg-info" not in str(p)
        ]
    return sorted(str(p.relative_to(MODULE_DIR)) for p in paths if p.is_file() and p.name != "CMakeLists.txt")


def test_module_cmake_lists_every_python_file_and_resource():
    text = MODULE_CMAKE.read_text(encoding="utf-8")
    scripts = cmake_list(text, "MODULE_PYTHON_SCRIPTS")
    resources = cmake_list(text, "MODULE_PYTHON_RESOURCES")
    on_disk = module_files()
    want_scripts = sorted(f for f in on_disk if f.endswith(".py"))
    want_resources = sorted(f for f in on_disk if not f.endswith(".py"))
    assert len(scripts) == len(set(scripts)) and len(resources) == len(set(resources)), (
        "duplicates in the lists"
    )
    missing = sorted(set(want_scripts) - set(scripts)) + sorted(set(want_resources) - set(resources))
    extra = sorted(set(scripts) - set(want_scripts)) + sorted(set(resources) - set(want_resources))
    assert not missing and not extra, (
        f"XAIMedSlicer/CMakeLists.txt is out of date. Add: {missing}. Remove (not on disk): {extra}."
    )
    assert "XAIMedSlicer.py" in scripts
    assert {
        "Resources/UI/XAIMedSlicer.ui",
        "Resources/Icons/XAIMedSlicer.png",
        "Resources/requirements.txt",
    } <= set(resources)


def test_module_cmake_builds_the_scripted_module_with_tests():
    text = MODULE_CMAKE.read_text(encoding="utf-8")
    build = re.search(r"slicerMacroBuildScriptedModule\((.*?)\)", text, re.S)
    assert build, "slicerMacroBuildScriptedModule missing"
    args = build.group(1).split()
    for needed in (
        "NAME",
        "${MODULE_NAME}",
        "SCRIPTS",
        "${MODULE_PYTHON_SCRIPTS}",
        "RESOURCES",
        "WITH_GENERIC_TESTS",
    ):
        assert needed in args, f"slicerMacroBuildScriptedModule lacks {needed}"
    testing = re.search(r"if\(BUILD_TESTING\)(.*?)endif\(\)", text, re.S)
    assert testing and "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in testing.group(1)


def extension_settings() -> dict[str, str]:
    text = EXTENSION_CMAKE.read_text(encoding="utf-8")
    return dict(re.findall(r'set\((EXTENSION_[A-Z_]+)\s+"([^"]*)"', text))


def test_extension_cmake_has_metadata_and_the_slicer_steps_in_order():
    settings = extension_settings()
    for key in (
        "EXTENSION_HOMEPAGE",
        "EXTENSION_CATEGORY",
        "EXTENSION_CONTRIBUTORS",
        "EXTENSION_DESCRIPTION",
        "EXTENSION_ICONURL",
        "EXTENSION_SCREENSHOTURLS",
        "EXTENSION_DEPENDS",
    ):
        assert settings.get(key, "").strip(), f"{key} is empty"
    assert "PyTorch" in settings["EXTENSION_DEPENDS"].split(";")
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        assert settings[key].startswith("https://"), key
    text = EXTENSION_CMAKE.read_text(encoding="utf-8")
    steps = [
        "project(XAIMedSlicer)",
        "find_package(Slicer REQUIRED)",
        "include(${Slicer_USE_FILE})",
        "add_subdirectory(XAIMedSlicer)",
        "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
        "include(${Slicer_EXTENSION_CPACK})",
    ]
    positions = [text.find(step) for step in steps]
    assert -1 not in positions, f"missing: {[s for s, p in zip(steps, positions, strict=True) if p < 0]}"
    assert positions == sorted(positions), "the Slicer extension steps are out of order"


def test_icon_and_screenshot_named_by_the_metadata_exist():
    icon = Image.open(MODULE_DIR / "Resources" / "Icons" / "XAIMedSlicer.png")
    assert icon.format == "PNG" and icon.size == (128, 128)
    pixels = np.asarray(icon.convert("RGBA"), dtype=float)
    assert pixels[..., 3].max() == 255 and pixels[..., :3].std() > 20, "the icon is blank"
    settings = extension_settings()
    for key in ("EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        for url in settings[key].split():
            relative = url.split("/main/", 1)[1]
            assert (REPO / relative).is_file(), f"{key} names {relative}, which is not in the repository"


# The constraints of Slicer's slicer-extension-catalog-entry-schema-v1.0.1.json.
SCHEMA_REQUIRED = {"$schema", "category", "scm_url"}
SCHEMA_TYPES = {
    "$schema": str,
    "category": str,
    "scm_url": str,
    "scm_revision": str,
    "scm_type": str,
    "build_dependencies": list,
    "build_subdirectory": str,
    "enabled": bool,
    "tier": int,
}


def test_catalog_entry_follows_the_schema_and_the_cmake_metadata():
    entry = json.loads(CATALOG.read_text(encoding="utf-8"))
    assert SCHEMA_REQUIRED <= set(entry), f"missing {SCHEMA_REQUIRED - set(entry)}"
    assert set(entry) <= set(SCHEMA_TYPES), f"not allowed by the schema: {set(entry) - set(SCHEMA_TYPES)}"
    for key, value in entry.items():
        assert isinstance(value, SCHEMA_TYPES[key]), key
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.1.json#")
    assert entry.get("scm_type", "git") in ("git", "local")
    assert entry.get("tier", 5) in (1, 3, 5)
    assert all(isinstance(d, str) for d in entry.get("build_dependencies", []))
    settings = extension_settings()
    assert entry["category"] == settings["EXTENSION_CATEGORY"]
    assert sorted(entry.get("build_dependencies", [])) == sorted(settings["EXTENSION_DEPENDS"].split(";"))
    assert entry["scm_url"].startswith("https://") and entry["scm_url"].endswith(".git")


def test_requirements_parse_and_have_version_floors():
    from packaging import requirements

    lines = (MODULE_DIR / "Resources" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    reqs = [requirements.Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    names = {r.name.lower() for r in reqs}
    assert {"monai", "captum"} <= names
    assert "torch" not in names, "PyTorch comes from the PyTorch extension (PyTorchUtils)"
    for req in reqs:
        assert any(spec.operator in (">=", "==", "~=") for spec in req.specifier), (
            f"{req} has no version floor"
        )
