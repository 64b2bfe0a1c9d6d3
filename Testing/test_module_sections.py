"""The module file stays thin wiring (under 500 lines) and its new sections are wired to things that exist:
every widget the Qt-free presenter reads or writes is in the .ui, with a setter its class has; every
action the module sends has a handler; the sections and the embedded Segment Editor are in the .ui."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

from XAIMedSlicerLib.slicerlogic import presenter as presenter_module
from XAIMedSlicerLib.slicerlogic.annotate import editor_node
from XAIMedSlicerLib.slicerlogic.presenter import INPUTS, ModulePresenter
from XAIMedSlicerLib.slicerlogic.report_view import read_report

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "XAIMedSlicer" / "XAIMedSlicer.py"
UI = REPO / "XAIMedSlicer" / "Resources" / "UI" / "XAIMedSlicer.ui"
PRESENTER = Path(presenter_module.__file__)
# the properties a view may set per widget class (setters of those Qt / Slicer classes)
SETTERS = {
    "QPushButton": {"enabled", "toolTip"},
    "QLabel": {"text", "styleSheet"},
    "QComboBox": {"items", "enabled"},
    "QWidget": {"enabled"},
    "qMRMLNodeComboBox": {"enabled"},
    "QProgressBar": {"value"},
    "QTextBrowser": {"plainText", "html", "searchPaths"},
    "qMRMLTableView": {"MRMLTableNode"},
    "qMRMLSegmentsTableView": {"segmentationNode"},
}
# what ``widget_value`` reads from each input's class
READABLE = {"ctkPathLineEdit", "QLineEdit", "QPlainTextEdit", "QComboBox", "QSpinBox"}


def ui_classes() -> dict[str, str]:
    return {w.get("name"): w.get("class") for w in ET.parse(UI).getroot().iter("widget")}


def view_literals() -> list[tuple[str, str, int]]:
    """(widget, property, line) of every view literal ``{"widget": {"property": ...}}`` in presenter.py,
    and of the keys assigned as ``view["widget"] = {...}``."""
    tree = ast.parse(PRESENTER.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        pairs = []
        if isinstance(node, ast.Dict):
            pairs = [(k, v) for k, v in zip(node.keys, node.values, strict=True) if k is not None]
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            pairs = [(node.targets[0].slice, node.value)]
        for key, value in pairs:
            if isinstance(key, ast.Constant) and isinstance(value, ast.Dict):
                for inner in value.keys:
                    if isinstance(inner, ast.Constant):
                        out.append((key.value, inner.value, node.lineno))
    return out


def test_module_is_thin_wiring_under_500_lines():
    text = MODULE.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 500
    tree = ast.parse(text)
    widget = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "XAIMedSlicerWidget")
    # no study, reader or report logic in the widget: those go through the presenter
    source = ast.unparse(widget)
    for word in ("Study(", "ReaderSession", "read_report", "save_disagreement", "sqlite3"):
        assert word not in source


def test_views_and_inputs_name_real_widgets_with_setters():
    classes = ui_classes()
    literals = view_literals()
    assert len({w for w, _, _ in literals}) >= 20
    wrong = [
        (w, prop, line)
        for w, prop, line in literals
        if w in classes
        or w.endswith(("Button", "Label", "ComboBox", "Browser", "View", "Bar", "Row", "Selector"))
        if prop not in SETTERS.get(classes.get(w, "missing"), set())
    ]
    assert wrong == [], f"view entries without such a widget or setter: {wrong}"
    missing = [name for name in INPUTS if classes.get(name) not in READABLE]
    assert missing == [], f"inputs that are not readable widgets of the .ui: {missing}"


def test_every_action_the_module_sends_has_a_handler():
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    sent = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = ast.unparse(node.func)
            if name in ("act", "self._act"):
                sent.add(node.args[0].value)
    assert {"new_region", "save_annotation", "export_seg", "start_reader", "rate", "next_case"} <= sent
    assert {"export_summary", "report_folder", "model_path", "model_folder", "import_label_map"} <= sent
    missing = sorted(a for a in sent if not hasattr(ModulePresenter, f"_on_{a}"))
    assert missing == [], f"actions without a presenter handler: {missing}"


def test_sections_and_segment_editor_in_the_ui():
    root = ET.parse(UI).getroot()
    titles = {
        w.get("name"): w.find("property[@name='text']/string").text
        for w in root.iter("widget")
        if w.get("class") == "ctkCollapsibleButton"
    }
    assert {"Annotate disagreement", "Reader study", "Report"} <= set(titles.values())
    assert ui_classes()["segmentEditorWidget"] == "qMRMLSegmentEditorWidget"
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    assert "qMRMLSegmentEditorWidget" in declared
    receivers = {c.findtext("receiver") for c in root.iter("connection")}
    assert "segmentEditorWidget" in receivers


def test_editor_node_is_one_singleton_per_scene_and_report_reader_tolerates_nothing():
    from XAIMedSlicerLib.scene import create_scene

    ss = create_scene()
    first = editor_node(ss.scene)
    assert editor_node(ss.scene) is first and first.IsA("vtkMRMLSegmentEditorNode")
    assert ss.scene.GetNodesByClass("vtkMRMLSegmentEditorNode").GetNumberOfItems() == 1
    assert read_report("").missing == ("explanation.txt", "rules.json", "report.html")
