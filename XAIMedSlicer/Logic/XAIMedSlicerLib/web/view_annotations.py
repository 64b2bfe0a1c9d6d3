"""Orientation letters and a caption drawn in each slice view (so they are in every frame and screenshot).

The letters at the four edges come from the view's own SliceToRAS (``scene.figure_geometry.view_letters``),
so they are right for any orientation; the caption (method and target, prediction, model) is the figures'
``caption_lines`` of the shown map's provenance. Both are ``vtkTextActor``s in the view's overlay
renderer, with a fixed font size and an opaque background (readable over any scan).
"""

from __future__ import annotations

from types import SimpleNamespace

# where each text sits in the view (normalized viewport x, y) and how it is justified (horizontal, vertical)
PLACES = {
    "left": ((0.008, 0.5), ("left", "centered")),
    "right": ((0.992, 0.5), ("right", "centered")),
    "top": ((0.5, 0.99), ("centered", "top")),
    "bottom": ((0.5, 0.09), ("centered", "bottom")),  # above the page's slice slider
    "caption": ((0.992, 0.99), ("right", "top")),
}
LETTER_RGB = (1.0, 1.0, 0.0)  # pure yellow: no scan grey, and no colour of the maps' tables
LETTER_PX, CAPTION_PX = 18, 12


def prediction_of(rules) -> dict:
    """The network's prediction as ``rules.json``'s decision records it ({} when it does not)."""
    decision = rules.get("decision") if isinstance(rules, dict) else None
    if not isinstance(decision, dict) or not decision.get("network_class"):
        return {}
    name, percent = str(decision["network_class"]), decision.get("network_confidence_percent")
    if percent is None:
        return {"predicted_class": name}
    return {"predicted_class": name, "classes": [name], "probabilities": [float(percent) / 100.0]}


def caption_of(node, prediction: dict | None = None) -> list[str]:
    """Caption lines of an attribution node, from the provenance it carries (and ``prediction``)."""
    from ..scene import get_provenance
    from ..scene.figure import caption_lines

    if node is None:
        return []
    provenance = get_provenance(node)
    method = provenance.get("method")
    method = method.get("name", "") if isinstance(method, dict) else str(method or "")
    record = SimpleNamespace(
        method=method,
        target=provenance.get("target") if isinstance(provenance.get("target"), dict) else {},
        prediction=prediction
        or (provenance.get("prediction") if isinstance(provenance.get("prediction"), dict) else {}),
        provenance=provenance,
    )
    return caption_lines(record)


def _text(place: str, size: int, rgb, background: float):
    """A 2D text actor at a fixed place and font size, on an opaque (or translucent) black box."""
    import vtk

    (x, y), (horizontal, vertical) = PLACES[place]
    actor = vtk.vtkTextActor()
    actor.SetTextScaleModeToNone()
    actor.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    actor.SetPosition(x, y)
    prop = actor.GetTextProperty()
    prop.SetFontSize(size)
    prop.SetColor(*rgb)
    prop.SetBold(True)
    prop.SetShadow(False)
    prop.SetBackgroundColor(0.0, 0.0, 0.0)
    prop.SetBackgroundOpacity(background)
    getattr(prop, f"SetJustificationTo{horizontal.capitalize()}")()
    getattr(prop, f"SetVerticalJustificationTo{vertical.capitalize()}")()
    actor.SetInput("")
    actor.PickableOff()
    return actor


class ViewAnnotations:
    """Four letter actors and one caption actor per slice view of the viewer."""

    def __init__(self, slicer_app) -> None:
        self.views = {}
        for view in slicer_app.view_manager.get_slice_views():
            actors = {
                edge: _text(edge, LETTER_PX, LETTER_RGB, 1.0) for edge in ("left", "right", "top", "bottom")
            }
            actors["caption"] = _text("caption", CAPTION_PX, (1.0, 1.0, 1.0), 0.6)
            # the overlay layer: drawn over the slice image actor (which is re-added to the first renderer)
            renderer = getattr(view, "_overlay_renderer", None) or view.first_renderer()
            for actor in actors.values():
                renderer.AddViewProp(actor)
            self.views[view.get_singleton_tag()] = (view, actors)
        self.caption: list[str] = []

    def update(self) -> bool:
        """Letters from each view's current SliceToRAS; True when some text changed (render again)."""
        from ..scene.figure_geometry import view_letters

        changed = False
        for view, actors in self.views.values():
            node = view.get_view_node()
            if node is None or not hasattr(node, "GetSliceToRAS"):
                continue
            texts = {**view_letters(node), "caption": "\n".join(self.caption)}
            # the top letter sits just below the caption (whose box may reach the middle of the view)
            height = max(int(node.GetDimensions()[1]), 1)
            below = 1.0 - (len(self.caption) * CAPTION_PX * 1.4 + 4.0) / height if self.caption else 0.99
            if abs(actors["top"].GetPosition()[1] - below) > 1e-6:
                actors["top"].SetPosition(0.5, below)
                changed = True
            for place, text in texts.items():
                if (actors[place].GetInput() or "") != text:
                    actors[place].SetInput(text)
                    changed = True
        return changed

    def set_caption(self, node, prediction: dict | None = None) -> None:
        """The caption of the shown map (None: no caption)."""
        self.caption = caption_of(node, prediction)
        self.update()

    def set_visible(self, visible: bool) -> None:
        """Show or hide every view's letters and caption."""
        for _view, actors in self.views.values():
            for actor in actors.values():
                actor.SetVisibility(bool(visible))

    def texts(self) -> dict:
        """Per view tag: the letters and the caption as drawn (for the page and the tests)."""
        return {
            tag: {
                "letters": {
                    edge: actors[edge].GetInput() or "" for edge in ("left", "right", "top", "bottom")
                },
                "caption": actors["caption"].GetInput() or "",
            }
            for tag, (_view, actors) in self.views.items()
        }
