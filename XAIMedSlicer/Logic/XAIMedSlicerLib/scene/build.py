"""One call from an Explanation to a complete MRML scene: ``build_scene(explanation) -> SceneBundle``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import XAIError
from ..explanation import Explanation
from .app import SlicerScene, create_scene
from .colormaps import add_color_legend
from .interaction import center_slice_views
from .overlay import ROLE, SIGNED, add_attribution_node, display_range, show_in_slice_views
from .provenance import PREFIX
from .segmentation import add_segmentation
from .table import add_structure_table
from .volumes import add_volume, volume_from_node

RUN = PREFIX + "run"
DERIVED_FROM = PREFIX + "derived_from"


@dataclass
class SceneBundle:
    """The nodes of one explanation in a scene (node references, not copies)."""

    ss: SlicerScene
    image_node: object
    attribution_node: object
    color_node: object
    legend_node: object
    signed: bool
    run_name: str
    segmentation_node: object | None = None
    labelmap_node: object | None = None
    table_node: object | None = None
    structures: list[dict] = field(default_factory=list)
    derived_nodes: list = field(default_factory=list)

    @property
    def scene(self):
        """The vtkMRMLScene."""
        return self.ss.scene

    def map_nodes(self) -> list:
        """The attribution node and every map derived from it (absolute value, masked copies)."""
        return [self.attribution_node, *self.derived_nodes]


def _nodes_with_role(scene, class_name: str, role: str) -> list:
    nodes = scene.GetNodesByClass(class_name)
    found = [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]
    return [n for n in found if n.GetAttribute(ROLE) == role]


def run_name_for(scene, method: str) -> str:
    """``XAIMed <method> #<n>``, n counting the attribution maps already in the scene."""
    count = len(_nodes_with_role(scene, "vtkMRMLScalarVolumeNode", "attribution")) + 1
    return f"XAIMed {method} #{count}"


def _scan_node(ss: SlicerScene, explanation: Explanation, run_name: str):
    """Reuse a scan an earlier run added (same grid and voxels), else add it."""
    for node in _nodes_with_role(ss.scene, "vtkMRMLScalarVolumeNode", "scan"):
        existing = volume_from_node(node, world=False)
        if existing.same_grid(explanation.image) and np.array_equal(existing.array, explanation.image.array):
            return node
    node = add_volume(ss, explanation.image, f"{run_name} scan")
    node.SetAttribute(ROLE, "scan")
    display = node.GetDisplayNode()
    display.SetAutoWindowLevel(0)
    lo, hi = np.percentile(np.asarray(explanation.image.array, dtype=np.float64), [0.5, 99.5])
    display.SetWindowLevelMinMax(float(lo), float(hi if hi > lo else lo + 1.0))
    return node


def _put_in_folder(scene, run_name: str, nodes) -> None:
    import slicer

    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if hierarchy is None:
        return
    folder = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), run_name)
    for node in nodes:
        item = hierarchy.GetItemByDataNode(node)
        if item:
            hierarchy.SetItemParent(item, folder)


def build_scene(
    explanation: Explanation,
    *,
    ss: SlicerScene | None = None,
    image_node=None,
    name: str | None = None,
    colors: dict | None = None,
    opacity: float = 0.5,
    threshold_fraction: float | None = 0.1,
    closed_surface: bool = True,
) -> SceneBundle:
    """Add one explanation to a scene (a new headless scene by default) and return its nodes.

    * the scan: ``image_node`` when given (the user's node, referenced and never changed), else a node
      an earlier run added for the same scan, else a new one;
    * the attribution map with the scan's IJKToRAS, its colour map (diverging when signed) and legend;
      for unsigned maps values below ``threshold_fraction`` x max are transparent (None: no threshold);
    * with labels: a segmentation (names, ``colors`` {label: rgb 0..1} or a palette, SNOMED CT
      terminology, closed surfaces) and its label map for outlines; with statistics: the table node;
    * slice views: scan, overlay at ``opacity``, outlines, centred on the attribution peak.

    Every node of the run is new, named ``name`` (default ``XAIMed <method> #<n>``) and tagged
    ``XAIMed.run``; earlier runs stay as they are.
    """
    ss = ss or create_scene()
    scene = ss.scene
    run_name = name or run_name_for(scene, explanation.method)
    if image_node is None:
        image_node = _scan_node(ss, explanation, run_name)
    provenance = dict(explanation.provenance)
    provenance.setdefault("method", {"name": explanation.method})
    provenance.setdefault("target", explanation.target)
    threshold = None
    if not explanation.signed and threshold_fraction is not None:
        lo, hi = display_range(explanation.attribution.array, False)
        threshold = lo + float(threshold_fraction) * (hi - lo)
    attribution = add_attribution_node(
        ss,
        explanation.attribution,
        signed=explanation.signed,
        name=f"{run_name} attribution",
        provenance=provenance,
        reference_node=image_node,
        threshold=threshold,
    )
    attribution.SetAttribute(PREFIX + "scan", image_node.GetID())
    attribution.SetAttribute(PREFIX + "prediction", json.dumps(explanation.prediction, default=str))
    color_node = attribution.GetDisplayNode().GetColorNode()
    legend = add_color_legend(ss, attribution, f"{explanation.method} attribution")

    segmentation = labelmap = table = None
    if explanation.labels is not None:
        segmentation, labelmap = add_segmentation(
            ss,
            explanation.labels,
            explanation.label_names,
            colors=colors,
            reference_node=image_node,
            name=f"{run_name} structures",
            closed_surface=closed_surface,
        )
    if explanation.structures:
        table = add_structure_table(scene, explanation.structures, f"{run_name} table")
    run_nodes = [n for n in (attribution, segmentation, labelmap, table) if n is not None]
    for node in run_nodes:
        node.SetAttribute(RUN, run_name)
    _put_in_folder(scene, run_name, run_nodes)

    show_in_slice_views(ss, image_node, attribution, opacity, label=labelmap)
    center_slice_views(ss, explanation.peak_ras())
    return SceneBundle(
        ss=ss,
        image_node=image_node,
        attribution_node=attribution,
        color_node=color_node,
        legend_node=legend,
        signed=explanation.signed,
        run_name=run_name,
        segmentation_node=segmentation,
        labelmap_node=labelmap,
        table_node=table,
        structures=list(explanation.structures),
    )


def _run_nodes(scene, class_name: str, run_name: str) -> list:
    nodes = scene.GetNodesByClass(class_name)
    found = [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]
    return [n for n in found if n.GetAttribute(RUN) == run_name]


def source_map(node):
    """The map a derived map (|map|, masked copy) was made from, followed to the first one."""
    scene, seen = node.GetScene(), {node.GetID()}
    while (source_id := node.GetAttribute(DERIVED_FROM)) and source_id not in seen:
        source = scene.GetNodeByID(source_id)
        if source is None:
            break
        seen.add(source_id)
        node = source
    return node


def bundle_from_node(attribution_node, ss: SlicerScene | None = None) -> SceneBundle | None:
    """The SceneBundle of a map already in a scene (a reloaded scene, or one built by another session).

    The run's nodes are found by their ``XAIMed.run`` attribute, the scan by ``XAIMed.scan``, the
    structure rows by the table's exact rows; a derived map (|map|, masked copy) leads to the map it was
    made from, and the run's derived maps are listed in ``derived_nodes``. ``ss``: the SlicerScene that
    holds the node (default ``current_scene()``). None for a node that is no XAIMedSlicer map.
    """
    from .app import current_scene
    from .table import exact_rows
    from .threshold import base_color_node

    if attribution_node is None or attribution_node.GetAttribute(RUN) is None:
        return None
    ss = ss or current_scene()
    if ss.scene is not attribution_node.GetScene():
        raise XAIError(
            f"map '{attribution_node.GetName()}' is not in the given scene", "pass the SlicerScene holding it"
        )
    node = source_map(attribution_node)
    run_name = node.GetAttribute(RUN)
    scene = ss.scene

    def first(class_name: str):
        found = _run_nodes(scene, class_name, run_name)
        return found[0] if found else None

    maps = [
        n
        for n in _run_nodes(scene, "vtkMRMLScalarVolumeNode", run_name)
        if n.GetAttribute(ROLE) == "attribution" and n is not node and source_map(n) is node
    ]
    scan_id = node.GetAttribute(PREFIX + "scan")
    table = first("vtkMRMLTableNode")
    return SceneBundle(
        ss=ss,
        image_node=scene.GetNodeByID(scan_id) if scan_id else None,
        attribution_node=node,
        color_node=base_color_node(node),
        legend_node=ss.color_logic.GetColorLegendDisplayNode(node),
        signed=node.GetAttribute(SIGNED) == "1",
        run_name=run_name,
        segmentation_node=first("vtkMRMLSegmentationNode"),
        labelmap_node=first("vtkMRMLLabelMapVolumeNode"),
        table_node=table,
        structures=exact_rows(table) if table is not None else [],
        derived_nodes=maps,
    )
