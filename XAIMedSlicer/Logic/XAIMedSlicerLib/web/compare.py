"""Two maps of one case side by side: the axial view (map A, the shown result) beside a second axial
view (map B, an earlier result) that follows the first one's slice position, field of view and zoom."""

from __future__ import annotations

COMPARE_VIEW = "Compare"  # singleton tag of the second axial view
COMPARE_LAYOUT = "Compare A | B"


def compare_layout():
    """trame-slicer layout: the axial view ``Red`` | the axial view ``Compare``."""
    from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

    second = ViewLayoutDefinition.slice_view("Axial", label=COMPARE_VIEW, color="#4A90D9")
    return Layout(LayoutDirection.Horizontal, [ViewLayoutDefinition.axial_view(), second])


class CompareViews:
    """The second view's slice node copies ``Red``'s XYToRAS whenever ``Red`` moves."""

    def __init__(self, slicer_app, layout_manager, ss) -> None:
        import vtk

        self.ss = ss
        self.layout_manager = layout_manager
        layout_manager.register_layout(COMPARE_LAYOUT, compare_layout())
        self.view = slicer_app.view_manager.get_view(COMPARE_VIEW)
        self.logic = self.view._logic  # noqa: SLF001 - trame-slicer keeps the slice logic private
        self.node = None  # map B (None: side by side is off)
        ss.slice_node("Red").AddObserver(vtk.vtkCommand.ModifiedEvent, lambda *_: self.sync())

    @property
    def active(self) -> bool:
        return self.node is not None

    def show(self, background, node, opacity: float, main_layout: str) -> None:
        """Map ``node`` over ``background`` in the second view and switch to A | B (None: back)."""
        self.node = node
        if node is None:
            self.layout_manager.set_layout(main_layout)
            return
        self.layout_manager.set_layout(COMPARE_LAYOUT)
        self.refresh(background, opacity)

    def refresh(self, background, opacity: float) -> None:
        """Composite of the second view (``show_in_slice_views`` sets every view's layers to map A)."""
        composite = self.logic.GetSliceCompositeNode()
        composite.SetBackgroundVolumeID(background.GetID() if background is not None else None)
        composite.SetForegroundVolumeID(self.node.GetID() if self.node is not None else None)
        composite.SetForegroundOpacity(float(opacity))
        composite.SetLabelOpacity(0.0)
        self.sync()

    def sync(self) -> None:
        """Same plane, centre and pixel size as the axial view ``Red``."""
        if self.node is None:
            return
        red = self.ss.slice_node("Red")
        mine = self.logic.GetSliceNode()
        if tuple(mine.GetDimensions()) != tuple(red.GetDimensions()):
            return  # the two views are laid out at the same size; wait for the resize
        mine.GetSliceToRAS().DeepCopy(red.GetSliceToRAS())
        mine.SetFieldOfView(*red.GetFieldOfView())
        mine.SetXYZOrigin(*red.GetXYZOrigin())
        mine.UpdateMatrices()

    def geometry_views(self) -> dict:
        """The second view's slice logic for ``view_geometry`` (empty while side by side is off)."""
        return {COMPARE_VIEW: self.logic} if self.node is not None else {}
