"""The per-structure statistics as a vtkMRMLTableNode (typed columns, sorted by share)."""

from __future__ import annotations

import json

from ..anatomy.stats import STRUCTURE_COLUMNS
from ..errors import XAIError
from .provenance import PREFIX
from .volumes import unique_node_name

ROWS = PREFIX + "rows"
INTEGER_COLUMNS = ("label", "voxels")
STRING_COLUMNS = ("name",)
UNITS = {"volume_ml": "mL", "peak_r": "mm", "peak_a": "mm", "peak_s": "mm"}
DESCRIPTIONS = {
    "label": "label value in the label map",
    "name": "structure name",
    "voxels": "number of voxels",
    "volume_ml": "volume",
    "positive_sum": "sum of the positive attribution inside",
    "positive_mean": "positive attribution sum / voxels",
    "positive_share": "share of the total positive attribution of the map",
    "peak": "highest attribution value inside",
    "peak_r": "RAS position of the peak (R)",
    "peak_a": "RAS position of the peak (A)",
    "peak_s": "RAS position of the peak (S)",
}


def sorted_rows(rows: list[dict]) -> list[dict]:
    """Rows by decreasing ``positive_share`` (ties: by label)."""
    return sorted(rows, key=lambda row: (-float(row["positive_share"]), int(row["label"])))


def _array(column: str):
    import vtk

    if column in INTEGER_COLUMNS:
        array = vtk.vtkIntArray()
    elif column in STRING_COLUMNS:
        array = vtk.vtkStringArray()
    else:
        array = vtk.vtkDoubleArray()
    array.SetName(column)
    return array


def add_structure_table(scene, rows: list[dict], name: str = "Structures table"):
    """A new table node with one row per structure (columns ``STRUCTURE_COLUMNS``), sorted by share."""
    scene = getattr(scene, "scene", scene)
    for row in rows:
        missing = [c for c in STRUCTURE_COLUMNS if c not in row]
        if missing:
            raise XAIError(f"structure row lacks columns {missing}", "compute rows with anatomy.stats")
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", unique_node_name(scene, name))
    table = node.GetTable()
    arrays = [_array(column) for column in STRUCTURE_COLUMNS]
    for row in sorted_rows(rows):
        for column, array in zip(STRUCTURE_COLUMNS, arrays, strict=True):
            value = row[column]
            if column in INTEGER_COLUMNS:
                array.InsertNextValue(int(value))
            elif column in STRING_COLUMNS:
                array.InsertNextValue(str(value))
            else:
                array.InsertNextValue(float(value))
    for array in arrays:
        table.AddColumn(array)
    for column in STRUCTURE_COLUMNS:
        node.SetColumnDescription(column, DESCRIPTIONS[column])
        if column in UNITS:
            node.SetColumnUnitLabel(column, UNITS[column])
    node.SetUseColumnTitleAsColumnHeader(True)
    node.SetLocked(True)
    node.SetAttribute(PREFIX + "role", "structure statistics")
    # the exact values (table files keep 6 significant digits)
    node.SetAttribute(ROWS, json.dumps(sorted_rows(rows), default=float))
    node.Modified()
    return node


def table_rows(node) -> list[dict]:
    """The table's rows as dicts (typed like ``anatomy.stats`` rows), in table order."""
    table = node.GetTable()
    columns = {}
    for index in range(table.GetNumberOfColumns()):
        array = table.GetColumn(index)
        columns[array.GetName()] = array
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for column in STRUCTURE_COLUMNS:
            if column not in columns:
                continue
            value = columns[column].GetValue(r)
            if column in INTEGER_COLUMNS:
                row[column] = int(value)
            elif column in STRING_COLUMNS:
                row[column] = str(value)
            else:
                row[column] = float(value)
        rows.append(row)
    return rows


def exact_rows(node) -> list[dict]:
    """The full-precision rows stored with the table (``XAIMed.rows``), else ``table_rows``."""
    text = node.GetAttribute(ROWS)
    return json.loads(text) if text else table_rows(node)


def row_index_for_label(node, label: int) -> int | None:
    """Table row (0-based) of a label value, or None."""
    for index, row in enumerate(table_rows(node)):
        if row.get("label") == int(label):
            return index
    return None
