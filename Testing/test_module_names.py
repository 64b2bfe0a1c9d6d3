"""The Slicer module file compiles and every name it imports from XAIMedSlicerLib exists (Slicer itself
cannot run here, so the module's imports are checked by parsing it)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import py_compile
from pathlib import Path

MODULE = Path(__file__).resolve().parents[1] / "XAIMedSlicer" / "XAIMedSlicer.py"


def test_module_compiles_and_imports_resolve(tmp_path):
    py_compile.compile(str(MODULE), cfile=str(tmp_path / "m.pyc"), doraise=True)
    tree = ast.parse(MODULE.read_text())
    checked = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("XAIMedSlicerLib"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                found = hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}")
                assert found, f"{node.module} has no {alias.name} (line {node.lineno})"
                checked += 1
    assert checked >= 5
