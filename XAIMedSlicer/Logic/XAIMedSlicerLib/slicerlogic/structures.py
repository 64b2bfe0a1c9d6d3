"""Anatomical structures for the module: from a label map file, or from a segmentation network's output."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def import_label_map(ss, label_path, names_path, reference_node):
    """A new segmentation from a label map file, resampled onto the reference volume in physical space.

    ``names_path``: a colour table (MeshNet colormap JSON, FreeSurfer LUT) giving names and colours, or
    any label-name file ``anatomy.labels.read_label_names`` reads; None names the labels by value.
    """
    from ..anatomy.labels import align_labels, read_label_names
    from ..errors import XAIError
    from ..io.volumes import read_volume
    from ..scene.colortables import read_color_table
    from ..scene.segmentation import add_segmentation
    from ..scene.volumes import volume_from_node

    labels = align_labels(read_volume(label_path), volume_from_node(reference_node))
    names, colors = {}, {}
    if names_path:
        try:
            table = read_color_table(names_path)
            names = {k: v[0] for k, v in table.items()}
            colors = {k: v[1] for k, v in table.items() if v[1] is not None}
        except (XAIError, ValueError):  # not a colour table: a plain label-name file
            names = read_label_names(names_path)
    segmentation, _labelmap = add_segmentation(
        ss,
        labels,
        names,
        colors=colors or None,
        reference_node=reference_node,
        name=f"{Path(str(label_path)).name} structures",
        keep_labelmap=False,
    )
    return segmentation


def model_colors(folder) -> dict[int, tuple]:
    """Label colours from a model folder's colour table with one entry per class (MeshNet); else {}."""
    from ..errors import XAIError
    from ..scene.colortables import read_color_table
    from ..worker.summary import model_summary

    folder = Path(folder)
    if not folder.is_dir():
        return {}
    classes = model_summary(folder)["classes"]
    for colormap in sorted(folder.glob("colormap*.json")):
        try:
            table = read_color_table(colormap)
        except XAIError:  # another JSON in the folder: no colours from it
            log.debug("XAIMedSlicer: %s is not a colour table", colormap)
            continue
        if len(table) == len(classes) - 1:  # label 0 (background) is not in the table
            return {label: color for label, (_name, color) in table.items() if color is not None}
    return {}
