"""Make docs/XAIMedSlicer-screenshot.png with the project's own pipeline and headless renderer.

Real data from ../shared/data: a 96-voxel block of the T1 head scan around the basal ganglia. The
MeshNet network with 18 subcortical classes runs twice in the background worker, as in the Slicer
module: first in segment mode (the structures), then Grad-CAM for its Putamen prediction. The scene
package builds the MRML scene and renders the three slice views and the 3D view.

    python docs/make_screenshot.py [--data ../shared/data] [--out docs/XAIMedSlicer-screenshot.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]


def t1_block(data: Path, size: int = 96):
    """The block of the T1 centred on the predicted thalamus, caudate, putamen and pallidum."""
    from XAIMedSlicerLib.geometry.volume import Volume
    from XAIMedSlicerLib.io.volumes import read_volume

    t1 = read_volume(data / "brain/t1_crop.nii.gz")
    labels = read_volume(data / "brain/t1_crop_subcortical18_pred_model18cls.nii.gz")
    k, j, i = np.nonzero(np.isin(labels.array, [7, 8, 9, 10]))
    start = np.clip(np.array([i.mean(), j.mean(), k.mean()]).round().astype(int) - size // 2, 0, None)
    i0, j0, k0 = (int(v) for v in start)
    block = np.ascontiguousarray(t1.array[k0 : k0 + size, j0 : j0 + size, i0 : i0 + size])
    origin = t1.ijk_to_lps()[:3, :3] @ start.astype(float) + np.array(t1.origin)
    return Volume(block, t1.spacing, tuple(origin), t1.direction)


def run(job_fields: dict, tmp: Path):
    from XAIMedSlicerLib.worker import WorkerJob, create_job_folder, run_job

    folder = create_job_folder(tmp)
    job = WorkerJob(out_dir=str(folder.out_dir), device="cpu", **job_fields)
    outcome = run_job(job, folder, on_message=lambda m: print(f"  {m.get('stage')}: {m.get('message')}"))
    if not outcome.ok:
        raise SystemExit(outcome.message)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "XAIMedSlicer-screenshot.png")
    args = parser.parse_args()

    from XAIMedSlicerLib.io.volumes import write_volume
    from XAIMedSlicerLib.scene import (
        add_volume,
        build_scene,
        create_scene,
        read_color_table,
        render_3d,
    )
    from XAIMedSlicerLib.scene.figure import render_figures
    from XAIMedSlicerLib.worker import load_explanation, load_labels

    model = args.data / "models/meshnet/model18cls"
    with tempfile.TemporaryDirectory(prefix="xaimed-screenshot-") as tmp_name:
        tmp = Path(tmp_name)
        image = t1_block(args.data)
        image_path = write_volume(image, tmp / "t1_block.nrrd")
        print("segmenting the structures with MeshNet (background worker)")
        labels, names = load_labels(
            run({"image": str(image_path), "model": str(model), "mode": "segment"}, tmp).out_dir
        )
        # the deep structures only: cerebral white matter and cortex (labels 1, 2) would hide them in 3D
        labels = labels.with_array(np.where(np.isin(labels.array, [1, 2]), 0, labels.array).astype(np.uint16))
        names = {k: v for k, v in names.items() if k not in (1, 2)}
        labels_path = write_volume(labels, tmp / "structures.nrrd")
        print("explaining the Putamen prediction with Grad-CAM (background worker)")
        fields = {
            "image": str(image_path),
            "model": str(model),
            "method": "gradcam",
            "target": "Putamen",
            "labels": str(labels_path),
            "label_names": {str(k): v for k, v in names.items()},
        }
        explanation = load_explanation(run(fields, tmp).out_dir, image_path)
        (tmp / "views").mkdir()
        ss = create_scene()
        scan_node = add_volume(ss, image, "T1")
        colors = {label: rgb for label, (_name, rgb) in read_color_table(model / "colormap.json").items()}
        bundle = build_scene(explanation, ss=ss, image_node=scan_node, colors=colors)
        # the annotated figures: colour bar with units, orientation letters, caption, top outlines only
        views = render_figures(bundle, explanation, tmp / "views", opacity=0.55)
        three_d = render_3d(bundle, tmp / "3d.png", size=(420, 420))
        tiles = [Image.open(views[v].path).convert("RGB") for v in ("axial", "coronal", "sagittal")]
        tiles.append(Image.open(three_d).convert("RGB"))
        side = 420
        sheet = Image.new("RGB", (2 * side, 2 * side + 28), (18, 20, 28))
        for n, tile in enumerate(tiles):
            tile.thumbnail((side, side))
            x, y = (n % 2) * side + (side - tile.width) // 2, 28 + (n // 2) * side + (side - tile.height) // 2
            sheet.paste(tile, (x, y))
        top = explanation.structures[0]["name"] if explanation.structures else ""
        title = f"XAIMedSlicer: Grad-CAM of MeshNet's Putamen prediction on a T1 scan (most evidence: {top})"
        ImageDraw.Draw(sheet).text((8, 8), title, fill=(235, 235, 235))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
