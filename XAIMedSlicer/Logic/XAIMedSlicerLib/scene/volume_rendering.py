"""3D: volume rendering of the attribution following the slice colour map, with segment surfaces."""

from __future__ import annotations

import numpy as np


def add_volume_rendering(bundle, node=None, *, surfaces: bool = True):
    """Volume rendering display nodes for ``node`` (default: the bundle's attribution map).

    The rendering follows the map's slice display node (``SetFollowVolumeDisplayNode``): the same colour
    map, window/level and threshold drive the 3D colours and opacity. With ``surfaces`` the structures'
    closed surfaces are made and shown in 3D. Returns the vtkMRMLVolumeRenderingDisplayNode.
    """
    node = node or bundle.attribution_node
    logic = bundle.ss.volume_rendering_logic
    display = logic.GetFirstVolumeRenderingDisplayNode(node)
    if display is None:
        display = logic.CreateDefaultVolumeRenderingNodes(node)
    display.SetFollowVolumeDisplayNode(True)
    display.SetVisibility(True)
    if surfaces and bundle.segmentation_node is not None:
        bundle.segmentation_node.CreateClosedSurfaceRepresentation()
        seg_display = bundle.segmentation_node.GetDisplayNode()
        seg_display.SetVisibility(True)
        seg_display.SetVisibility3D(True)
        seg_display.SetPreferredDisplayRepresentationName3D("Closed surface")
        seg_display.SetOpacity3D(0.35)
    return display


def volume_property_colors(display, values) -> np.ndarray:
    """RGB (n, 3) the volume rendering assigns to scalar ``values`` (reads the live transfer function)."""
    prop = display.GetVolumePropertyNode().GetVolumeProperty()
    transfer = prop.GetRGBTransferFunction()
    return np.array([transfer.GetColor(float(v)) for v in values])


def volume_property_opacities(display, values) -> np.ndarray:
    """Scalar opacity the volume rendering assigns to ``values``."""
    prop = display.GetVolumePropertyNode().GetVolumeProperty()
    opacity = prop.GetScalarOpacity()
    return np.array([opacity.GetValue(float(v)) for v in values])
