"""``xaimed view``: the web viewer (trame-slicer) on a scan, a model and optional structures or result."""

from __future__ import annotations

import argparse


def add_view_arguments(parser: argparse.ArgumentParser, *, inputs: bool = True) -> None:
    """The server options (and, with ``inputs``, the files) of ``xaimed view``."""
    if inputs:
        parser.add_argument("--image", help="scan: NIfTI, NRRD or DICOM series folder")
        parser.add_argument("--model", help="model card (.json), MONAI bundle, TorchScript file or MeshNet")
        parser.add_argument("--labels", help="label map of anatomical structures")
        parser.add_argument("--label-names", help="JSON or colour table naming the labels")
        parser.add_argument(
            "--result",
            action="append",
            help="an explanation folder (xaimed explain --out) to show; repeat it for side by side",
        )
        parser.add_argument("--study", help="study database (xaimed study init) for annotations")
        parser.add_argument("--case", help="the case ID of this scan in the study")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    parser.add_argument("--host", default="localhost", help="address to listen on")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--encoder", default="png", help="view image encoding: png (exact) or turbo-jpeg")


def quiet_vtk() -> None:
    """Keep VTK's start-up warnings (interactor resize events, Slicer's colour files) off the terminal, so
    the URL line stands out; ``XAIMED_VTK_WARNINGS=1`` keeps them."""
    import os

    if os.environ.get("XAIMED_VTK_WARNINGS") == "1":
        return
    import vtk

    vtk.vtkObject.GlobalWarningDisplayOff()
    vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_OFF)


def serve(
    args: argparse.Namespace, *, image=None, model=None, labels=None, label_names=None, result=None
) -> int:
    """Build the viewer, load the inputs (errors show in the page) and serve until stopped."""
    from .web import XAIViewer

    quiet_vtk()
    viewer = XAIViewer(encoder=args.encoder)
    viewer.load(image=image, model=model, labels=labels, label_names=label_names, result=result)
    viewer.state.study_path = getattr(args, "study", None) or ""
    viewer.state.case_id = getattr(args, "case", None) or ""
    print(f"xaimed view: serving on http://{args.host}:{args.port}/ (Ctrl+C to stop)", flush=True)
    viewer.start(port=args.port, open_browser=not args.no_browser, host=args.host)
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    return serve(
        args,
        image=args.image or "",
        model=args.model or "",
        labels=args.labels or "",
        label_names=args.label_names or "",
        result=args.result or "",
    )


def view_demo(args: argparse.Namespace) -> int:
    """``xaimed demo --view``: the viewer on the demo case just written (scan, tissue labels, result);
    ``--cxr``: the radiograph (``image.nrrd``), the 2D classifier and the result with its chest anatomy."""
    from pathlib import Path

    out = Path(args.out)
    if getattr(args, "cxr", False):
        from .demo.cxr_model import CARD_PATH as CXR_CARD

        return serve(args, image=out / "image.nrrd", model=CXR_CARD, labels="", label_names="", result=out)
    from .demo.model import CARD_PATH

    return serve(
        args,
        image=out / "image.nii.gz",
        model=CARD_PATH,
        labels=out / "labels.nii.gz",
        label_names=out / "label_names.json",
        result=out,
    )


def add_parser(sub) -> None:
    """Register ``xaimed view``, and ``--view`` (with the server options) on ``xaimed demo``."""
    view = sub.add_parser("view", help="web viewer: slice and 3D views, Explain, overlay, structure table")
    add_view_arguments(view)
    view.set_defaults(func=cmd_view)
    demo = sub.choices.get("demo")
    if demo is not None:
        demo.add_argument("--view", action="store_true", help="then open the web viewer on the demo case")
        add_view_arguments(demo, inputs=False)
