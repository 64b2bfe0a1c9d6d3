"""Real MRML scenes (slicer-core, headless or inside 3D Slicer) for an explanation.

Everything here works on a real ``vtkMRMLScene``; nothing is mocked. Geometry travels only through
``Volume.ijk_to_ras()`` / ``Volume.from_ras_affine`` (LPS/RAS lives in ``geometry.frames``).
The user's own nodes are never modified: every derived result (absolute value, masked copy, labelmap
for outlines) is a new node with a unique name, and re-running adds new nodes beside earlier ones.

Public API (import from ``XAIMedSlicerLib.scene``)
--------------------------------------------------

Scene and files (``app.py``, ``mrb.py``)
    ``SlicerScene``: the scene plus the logics that must stay alive (``.scene``, ``.app_logic``,
    ``.volumes_logic``, ``.segmentations_logic``, ``.volume_rendering_logic``, ``.color_logic``,
    ``.slice_logics`` = {"Red": axial, "Yellow": sagittal, "Green": coronal}).
    ``create_scene() -> SlicerScene``: a new headless scene with those logics; sets ``slicer.mrmlScene``
    and a minimal ``slicer.modules`` (segmentations, volumes, colors, volumerendering ``.logic()``) so
    that ``slicer.util`` helpers work headless.
    ``current_scene() -> SlicerScene``: inside 3D Slicer, wraps ``slicer.mrmlScene`` and the application's
    logics; headless, creates a scene.
    ``save_mrb(scene, path) -> Path``: atomic (temporary file, then rename); ``scene`` is a SlicerScene or
    a vtkMRMLScene.  ``load_mrb(path) -> SlicerScene``.

Volumes (``volumes.py``)
    ``add_volume(ss, volume, name, *, label_map=False, attributes=None)`` -> new
    vtkMRMLScalarVolumeNode (or LabelMapVolumeNode) with IJKToRAS = ``volume.ijk_to_ras()``.
    ``volume_from_node(node) -> Volume`` (exact geometry).  ``unique_node_name(scene, base) -> str``.

Colour maps (``colormaps.py``)
    ``sequential_color_node(scene)`` (inferno, 256 entries), ``diverging_color_node(scene)``
    (blue-white-red, 256 entries), ``color_node_for(scene, signed)``: vtkMRMLColorTableNodes that are
    saved in the .mrb.  ``add_color_legend(ss, volume_node, title) -> vtkMRMLColorLegendDisplayNode``.

Overlay (``overlay.py``, ``masking.py``)
    ``add_attribution_node(ss, attribution, *, signed, name, provenance=None, reference_node=None,
    threshold=None)`` -> volume node with its display node set up (colour map, window/level from the
    data, symmetric when signed).  ``display_range(array, signed)``, ``set_window(node, lo, hi)``.
    ``set_colormap(node, color_node_or_kind)``, ``set_threshold(node, lower, upper=None)``
    (``None`` = off), ``set_opacity(ss, opacity)`` (foreground opacity of every slice view),
    ``show_in_slice_views(ss, background, foreground, opacity, label=None)``.
    ``absolute_value_node(ss, node) -> new node`` holding |map| (sequential colour map).
    ``mask_to_segments(ss, node, segmentation_node, segment_ids) -> new node`` zero outside the segments.

Segmentation and terminology (``segmentation.py``, ``colortables.py``, ``terminology.py``)
    ``read_color_table(path) -> {label: (name, (r, g, b) 0..1)}`` (MeshNet colormap.json, FreeSurfer LUT).
    ``add_segmentation(ss, labels, names, *, colors=None, reference_node=None, name=...,
    closed_surface=True, keep_labelmap=True) -> (segmentation, labelmap or None)``: one segment per
    present label (tag ``XAIMed.label``), SNOMED CT terminology, reference geometry from
    ``reference_node``, closed surfaces for 3D; the label map node (with a colour table) draws outlines.
    ``segment_id_for_label(segmentation_node, label) -> str | None``.
    ``terminology_entry(name) -> dict`` (SNOMED CT codes of a structure name; table in
    ``snomed_table.py``, unknown names -> generic "Anatomical Structure"), ``parse_terminology(text)``.

Table and provenance (``table.py``, ``provenance.py``)
    ``add_structure_table(scene, rows, name) -> vtkMRMLTableNode`` (columns
    ``anatomy.stats.STRUCTURE_COLUMNS``, sorted by share).  ``table_rows(node) -> list[dict]``;
    ``exact_rows(node)`` (full precision, kept in ``XAIMed.rows``: table files keep 6 digits).
    ``set_provenance(node, provenance)`` / ``get_provenance(node) -> dict`` (attributes ``XAIMed.*``).

One call (``build.py``)
    ``SceneBundle``: ``ss`` (SlicerScene), ``image_node``, ``attribution_node``, ``color_node``,
    ``legend_node``, ``segmentation_node``, ``labelmap_node`` (segment outlines in slice views),
    ``table_node``, ``run_name``.
    ``build_scene(explanation, *, ss=None, image_node=None, name=None, colors=None, opacity=0.5,
    threshold_fraction=0.1, closed_surface=True) -> SceneBundle``; with ``image_node`` (the user's
    loaded scan) the scan is referenced, not copied or changed.  ``bundle.map_nodes()`` lists the map
    and its derived maps.
    ``bundle_from_node(attribution_node, ss=None) -> SceneBundle | None``: the bundle of a map already in a
    scene (after a reload): the run's nodes by ``XAIMed.run``; a derived map leads to its source map
    (``source_map(node)``).

Display settings of the Slicer module (``display.py``, ``threshold.py``)
    ``DisplaySettings(color_map="auto"|"sequential"|"diverging", opacity, threshold (fraction 0..1),
    show_legend, absolute_value, volume_rendering, only_inside_selected)``;
    ``DisplaySettings.from_parameters(p)`` reads the module's parameter-node names (``colorMap``, ...).
    ``apply_display(bundle, settings, segment_ids=()) -> node shown``: colour map, threshold, opacity,
    legend, 3D; |map| and the map inside the selected segments are derived nodes made once
    (``derived_map(bundle, source, key, make)``).
    Signed maps get a symmetric threshold that hides |value| < t: ``set_symmetric_threshold(node, t)``
    gives the map its own colour table (``XAIMed.threshold_of``) whose entries inside (-t, t) have alpha
    0 (slice views honour it; |value| >= t always shown, |value| < t - window/255 always hidden;
    the values are unchanged);
    ``set_symmetric_volume_rendering(display, node, t)`` does the same in 3D (opacity 0 inside (-t, t)).

Interaction for the Slicer module (``interaction.py``, ``volume_rendering.py``)
    ``center_on_structure(bundle, row_or_label) -> ras``: all slice views centred on the structure's
    attribution peak, the segment highlighted.  ``center_slice_views(ss, ras)``.
    ``highlight_segment(bundle, segment_id)`` / ``clear_highlight(bundle)``.
    ``row_for_segment(bundle, segment_id) -> int | None`` and ``segment_for_row(bundle, row) -> str``;
    ``interaction.row_at(bundle, index) -> dict``.
    ``add_volume_rendering(bundle, node=None) -> vtkMRMLVolumeRenderingDisplayNode`` (follows the slice
    colour map of ``node``, default the attribution map)
    and segment closed surfaces shown in 3D.

Rendering (``render.py``, ``render3d.py``)
    ``render_views(bundle, out_dir, opacity=0.5, center_ras=None) -> {"axial"|"coronal"|"sagittal": Path}``
    writes ``overlay_axial.png``, ``overlay_coronal.png``, ``overlay_sagittal.png`` atomically (MRML
    slice logic: scan background, overlay foreground, segment outlines), centred on the peak by default.
    ``render_3d(bundle, path, size=(800, 600), azimuth=30) -> Path``: offscreen 3D screenshot (volume
    rendering and segment surfaces; EGL/OSMesa, multisampling off).  Headless use: ``render_views``
    resizes the slice views it renders through.
"""

from .app import SLICE_VIEWS, SlicerScene, create_scene, current_scene
from .build import SceneBundle, build_scene, bundle_from_node, source_map
from .colormaps import (
    DIVERGING,
    SEQUENTIAL,
    add_color_legend,
    color_node_for,
    color_node_rgba,
    colormap_rgba,
    diverging_color_node,
    sequential_color_node,
)
from .colortables import palette_color, read_color_table
from .display import DisplaySettings, apply_display, derived_map
from .interaction import (
    center_on_structure,
    center_slice_views,
    clear_highlight,
    highlight_segment,
    highlighted_segment,
    row_for_segment,
    segment_for_row,
    slice_view_center,
)
from .masking import mask_to_segments, segments_mask
from .mrb import load_mrb, save_mrb
from .overlay import (
    absolute_value_node,
    add_attribution_node,
    display_range,
    set_colormap,
    set_opacity,
    set_threshold,
    set_window,
    show_in_slice_views,
)
from .provenance import get_provenance, set_provenance, xaimed_attributes
from .render import render_views, slice_image_rgb
from .render3d import render_3d
from .segmentation import add_segmentation, segment_id_for_label, segment_ids, segment_label
from .table import add_structure_table, exact_rows, table_rows
from .terminology import parse_terminology, terminology_entry, terminology_string
from .threshold import set_symmetric_threshold, set_symmetric_volume_rendering, symmetric_threshold
from .volume_rendering import add_volume_rendering
from .volumes import add_volume, unique_node_name, volume_from_node

__all__ = [
    "SLICE_VIEWS",
    "DIVERGING",
    "SEQUENTIAL",
    "DisplaySettings",
    "SceneBundle",
    "SlicerScene",
    "absolute_value_node",
    "add_attribution_node",
    "add_color_legend",
    "add_segmentation",
    "add_structure_table",
    "add_volume",
    "add_volume_rendering",
    "apply_display",
    "build_scene",
    "bundle_from_node",
    "center_on_structure",
    "center_slice_views",
    "clear_highlight",
    "color_node_for",
    "color_node_rgba",
    "colormap_rgba",
    "create_scene",
    "current_scene",
    "derived_map",
    "display_range",
    "diverging_color_node",
    "exact_rows",
    "get_provenance",
    "highlight_segment",
    "highlighted_segment",
    "load_mrb",
    "mask_to_segments",
    "palette_color",
    "parse_terminology",
    "read_color_table",
    "render_3d",
    "render_views",
    "row_for_segment",
    "save_mrb",
    "segment_for_row",
    "segment_id_for_label",
    "segment_ids",
    "segment_label",
    "segments_mask",
    "sequential_color_node",
    "set_colormap",
    "set_opacity",
    "set_provenance",
    "set_symmetric_threshold",
    "set_symmetric_volume_rendering",
    "set_threshold",
    "set_window",
    "show_in_slice_views",
    "slice_image_rgb",
    "slice_view_center",
    "source_map",
    "symmetric_threshold",
    "table_rows",
    "terminology_entry",
    "terminology_string",
    "unique_node_name",
    "volume_from_node",
    "xaimed_attributes",
]
