"""The Slicer module file against its .ui and Slicer's scripted-module template (no Qt needed here).

The desktop application cannot run in this environment, so the module is checked statically: the file
compiles, defines the template's classes and methods, every ``self.ui.<name>`` exists in the .ui, and
every parameter of the ``@parameterNodeWrapper`` class is bound (``SlicerParameterName``) to a widget
whose type Slicer's GUI connectors accept for that parameter's type.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "XAIMedSlicer" / "XAIMedSlicer.py"
UI = REPO / "XAIMedSlicer" / "Resources" / "UI" / "XAIMedSlicer.ui"
MRML_WIDGETS = {
    "qMRMLNodeComboBox",
    "qMRMLSegmentSelectorWidget",
    "qMRMLTableView",
    "qMRMLSegmentsTableView",
    "qSlicerMarkupsPlaceWidget",
}


@pytest.fixture(scope="module")
def tree() -> ast.Module:
    return ast.parse(MODULE.read_text(encoding="utf-8"), filename=str(MODULE))


@pytest.fixture(scope="module")
def ui() -> ET.Element:
    return ET.parse(UI).getroot()


def widgets(ui: ET.Element) -> dict[str, ET.Element]:
    return {w.get("name"): w for w in ui.iter("widget")}


def bindings(ui: ET.Element) -> dict[str, ET.Element]:
    """SlicerParameterName -> widget element."""
    out = {}
    for w in ui.iter("widget"):
        for prop in w.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                name = prop.find("string").text
                assert name not in out, f"parameter {name} bound to two widgets"
                assert prop.get("stdset") == "0", f"{name}: SlicerParameterName must be a dynamic property"
                out[name] = w
    return out


def classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def methods(cls: ast.ClassDef) -> set[str]:
    return {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}


def base_names(cls: ast.ClassDef) -> list[str]:
    return [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in cls.bases]


def parameter_fields(tree: ast.Module) -> dict[str, ast.expr]:
    wrapped = [
        c
        for c in classes(tree).values()
        if any(ast.unparse(d) == "parameterNodeWrapper" for d in c.decorator_list)
    ]
    assert len(wrapped) == 1, "exactly one @parameterNodeWrapper class"
    return {n.target.id: n.annotation for n in wrapped[0].body if isinstance(n, ast.AnnAssign)}


def test_module_compiles_and_imports_nothing_heavy_at_load(tree):
    compile(MODULE.read_text(encoding="utf-8"), str(MODULE), "exec")
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top.add((node.module or "").split(".")[0])
    assert not top & {"torch", "monai", "captum", "XAIMedSlicerLib"}, f"lazy imports only, found {top}"


def test_template_classes_and_methods(tree):
    found = classes(tree)
    expected = {
        "XAIMedSlicer": (["ScriptedLoadableModule"], {"__init__"}),
        "XAIMedSlicerWidget": (
            ["ScriptedLoadableModuleWidget", "VTKObservationMixin"],
            {
                "setup",
                "cleanup",
                "enter",
                "exit",
                "onSceneStartClose",
                "onSceneEndClose",
                "initializeParameterNode",
                "setParameterNode",
            },
        ),
        "XAIMedSlicerLogic": (["ScriptedLoadableModuleLogic"], {"getParameterNode", "process"}),
        "XAIMedSlicerTest": (["ScriptedLoadableModuleTest"], {"setUp", "runTest"}),
    }
    for name, (bases, needed) in expected.items():
        assert name in found, f"class {name} missing"
        assert base_names(found[name]) == bases, f"{name} bases {base_names(found[name])}"
        assert needed <= methods(found[name]), f"{name} lacks {needed - methods(found[name])}"


def test_tests_are_real_and_all_run(tree):
    test_class = classes(tree)["XAIMedSlicerTest"]
    tests = {m for m in methods(test_class) if m.startswith("test_")}
    assert len(tests) >= 3
    run = next(n for n in test_class.body if isinstance(n, ast.FunctionDef) and n.name == "runTest")
    called = {
        c.func.attr for c in ast.walk(run) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
    }
    assert tests <= called, f"runTest does not call {tests - called}"
    for method in test_class.body:
        if isinstance(method, ast.FunctionDef) and method.name in tests:
            asserts = [
                c
                for c in ast.walk(method)
                if isinstance(c, ast.Call)
                and isinstance(c.func, ast.Attribute)
                and c.func.attr.startswith("assert")
            ]
            assert len(asserts) >= 3, f"{method.name} asserts too little ({len(asserts)})"


def test_texts_are_translated_and_sample_data_registered(tree):
    init = next(n for n in classes(tree)["XAIMedSlicer"].body if isinstance(n, ast.FunctionDef))
    assigned = {}
    for node in ast.walk(init):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            assigned[node.targets[0].attr] = node.value
    for attr in ("title", "helpText", "acknowledgementText"):
        value = assigned[attr]
        assert isinstance(value, ast.Call) and ast.unparse(value.func) == "_", (
            f"{attr} is not translated with _()"
        )
    source = ast.unparse(init)
    assert 'slicer.app.connect("startupCompleted()", registerSampleData)' in source.replace("'", '"')
    register = next(
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "registerSampleData"
    )
    assert "checksums" in ast.unparse(register) and "SHA256:" in ast.unparse(register)


def test_every_ui_name_used_by_the_module_exists(tree, ui):
    names = widgets(ui)
    used = {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Attribute)
        and ast.unparse(n.value) == "self.ui"
    }
    assert len(used) > 20
    missing = sorted(used - set(names))
    assert not missing, f"the module uses widgets missing from the .ui: {missing}"


def test_ui_names_unique_and_mrml_widgets_get_the_scene(ui):
    all_names = [w.get("name") for w in ui.iter("widget")]
    assert len(all_names) == len(set(all_names)), "duplicate widget names in the .ui"
    assert ui.find("widget").get("class") == "qMRMLWidget"
    receivers = {
        c.findtext("receiver")
        for c in ui.iter("connection")
        if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
        and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    mrml = {w.get("name") for w in ui.iter("widget") if w.get("class") in MRML_WIDGETS}
    assert mrml and mrml <= receivers, f"not connected to the scene: {sorted(mrml - receivers)}"
    declared = {c.findtext("class") for c in ui.iter("customwidget")}
    used_custom = {
        w.get("class")
        for w in ui.iter("widget")
        if w.get("class", "").startswith(("ctk", "qMRML", "qSlicer"))
    }
    assert used_custom <= declared, f"custom widgets not declared: {used_custom - declared}"


def _accepts(widget: ET.Element, annotation: ast.expr, enums: set[str]) -> bool:
    """Whether Slicer's GUI connectors (plus the module's own segment connector) bind this pair."""
    cls = widget.get("class")
    text = ast.unparse(annotation)
    base = text
    if isinstance(annotation, ast.Subscript) and ast.unparse(annotation.value) == "Annotated":
        base = ast.unparse(annotation.slice.elts[0])
    if base.startswith("vtkMRML"):
        types = [s.text for s in widget.iter("string")]
        return cls == "qMRMLNodeComboBox" and base in types
    if base == "Path":
        return cls in ("ctkPathLineEdit", "ctkDirectoryButton")
    if base in enums:
        return cls in ("QComboBox", "ctkComboBox")
    if base == "bool":
        return cls in ("QCheckBox", "ctkCheckBox", "QPushButton")
    if base == "float":
        bounded = "WithinRange" in text
        return cls in ("QDoubleSpinBox", "ctkDoubleSpinBox") or (
            cls in ("ctkSliderWidget", "ctkDoubleSlider") and bounded
        )
    if base == "int":
        return cls in ("QSpinBox", "QSlider")
    if base == "str":
        if "Choice" in text:
            return cls in ("QComboBox", "ctkComboBox")
        return cls in ("QLineEdit", "QTextEdit", "QLabel", "qMRMLSegmentSelectorWidget")
    return False


def test_every_parameter_is_bound_to_a_fitting_widget(tree, ui):
    fields = parameter_fields(tree)
    bound = bindings(ui)
    assert len(fields) >= 20
    assert sorted(set(fields) - set(bound)) == [], "parameters without a widget"
    assert sorted(set(bound) - set(fields)) == [], "widgets bound to unknown parameters"
    enums = {
        c.name
        for c in classes(tree).values()
        if any(ast.unparse(b) in ("enum.Enum", "Enum") for b in c.bases)
    }
    wrong = [
        (name, bound[name].get("class"), ast.unparse(fields[name]))
        for name in fields
        if not _accepts(bound[name], fields[name], enums)
    ]
    assert wrong == [], f"no GUI connector binds these: {wrong}"


def test_segment_selector_has_a_registered_connector(tree):
    connectors = [
        c
        for c in classes(tree).values()
        if any(ast.unparse(d) == "parameterNodeGuiConnector" for d in c.decorator_list)
    ]
    assert connectors, "qMRMLSegmentSelectorWidget needs the module's GUI connector"
    body = ast.unparse(connectors[0])
    for needed in ("canRepresent", "create", "_connect", "_disconnect", "widget", "read", "write"):
        assert f"def {needed}(" in body


def _constant(tree: ast.Module, name: str):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not defined")


def test_choices_match_the_logic_package(tree):
    from XAIMedSlicerLib.methods import available_methods
    from XAIMedSlicerLib.model.device import DEVICES
    from XAIMedSlicerLib.worker.job import REGIONS

    assert sorted(_constant(tree, "METHODS")) == available_methods()
    assert set(_constant(tree, "DEVICES")) == set(DEVICES)
    region = classes(tree)["TargetRegion"]
    values = {ast.literal_eval(n.value) for n in region.body if isinstance(n, ast.Assign)}
    assert values == set(REGIONS)


def test_module_side_of_the_package_loads_without_torch():
    """What the module imports at widget time must not pull PyTorch into Slicer's process."""
    code = (
        "import sys\n"
        "import XAIMedSlicerLib.worker, XAIMedSlicerLib.worker.summary, XAIMedSlicerLib.worker.results\n"
        "print(sorted(m for m in ('torch', 'monai', 'captum') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
