"""Compose one figure panel with Pillow around an untouched MRML slice image.

Layout: a caption band on top, the slice image (pixels exactly as MRML rendered them, pasted at
``offset``) with orientation letters and a scale bar drawn over its margins, a colour bar with units at
the right. Only the letters and the scale bar are drawn over the slice image, both at its edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

FONT_FILES = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
BACKGROUND = (0, 0, 0)
TEXT = (235, 235, 235)
LETTER = (255, 220, 60)


@lru_cache(maxsize=16)
def font(size: int):
    """DejaVu Sans (matplotlib ships it; Debian too), else Pillow's built-in font."""
    import matplotlib
    from PIL import ImageFont

    candidates = [f"{matplotlib.get_data_path()}/fonts/ttf/{FONT_FILES[0]}", FONT_FILES[1]]
    for path in candidates:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


@dataclass
class ColourBar:
    """Colour bar of the overlay: the table (n, 3) 0..255, the window it spans, tick labels, title."""

    table: np.ndarray
    lower: float
    upper: float
    title: str
    ticks: list[tuple[float, str]]
    threshold: float | None = None


def tick_label(value: float) -> str:
    """A colour-bar number: 3 significant digits."""
    return f"{value:.3g}"


def compose(
    rgb: np.ndarray,
    caption: list[str],
    letters: dict[str, str],
    bar: ColourBar,
    mm_per_pixel: float,
) -> tuple[np.ndarray, tuple[int, int], dict]:
    """The panel as (h, w, 3) uint8, the (row, col) offset of ``rgb`` in it, and where things are."""
    from PIL import Image, ImageDraw

    height, width, _ = rgb.shape
    unit = max(12, round(max(height, width) / 34))
    caption_font, small = font(unit), font(max(10, round(unit * 0.8)))
    line = round(unit * 1.35)
    top = line * len(caption) + unit // 2
    bar_w, label_w = max(14, unit), unit * 5
    side = bar_w + label_w + unit * 2
    canvas = Image.new("RGB", (width + side, height + top), BACKGROUND)
    canvas.paste(Image.fromarray(np.ascontiguousarray(rgb)), (0, top))
    draw = ImageDraw.Draw(canvas)
    for n, text in enumerate(caption):
        draw.text((unit // 2, unit // 4 + n * line), text, fill=TEXT, font=caption_font if n == 0 else small)

    letter_font = font(round(unit * 1.3))
    anchors = {
        "left": ((unit // 3, top + height / 2), "lm"),
        "right": ((width - unit // 3, top + height / 2), "rm"),
        "top": ((width / 2, top + unit // 4), "mt"),
        "bottom": ((width / 2, top + height - unit // 4), "mb"),
    }
    boxes = {}
    for edge, text in letters.items():
        xy, anchor = anchors[edge]
        draw.text(
            xy, text, fill=LETTER, font=letter_font, anchor=anchor, stroke_width=2, stroke_fill=(0, 0, 0)
        )
        boxes[edge] = draw.textbbox(xy, text, font=letter_font, anchor=anchor)

    info = {"letters": boxes, "caption_rows": (0, top)}
    info["scale_bar"] = _scale_bar(draw, width, top + height, unit, mm_per_pixel, small)
    info["colour_bar"] = _colour_bar(draw, bar, width + unit, top, height, bar_w, unit, small)
    return np.asarray(canvas), (top, 0), info


def _scale_bar(draw, width: int, bottom: int, unit: int, mm_per_pixel: float, font_) -> dict | None:
    """A white bar of a round length (10, 20, 50 ... mm) about a fifth of the width, bottom right."""
    if mm_per_pixel <= 0:
        return None
    target = width / 5 * mm_per_pixel
    length = max(v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500) if v <= max(target, 1))
    pixels = round(length / mm_per_pixel)
    x1, y = width - unit, bottom - unit
    draw.rectangle((x1 - pixels, y - 3, x1, y), fill=(255, 255, 255))
    label = f"{length / 10:g} cm" if length >= 10 else f"{length} mm"
    draw.text((x1 - pixels / 2, y - 5), label, fill=TEXT, font=font_, anchor="mb")
    return {"mm": length, "pixels": pixels}


def _colour_bar(draw, bar: ColourBar, x0: int, top: int, height: int, bar_w: int, unit: int, font_) -> dict:
    """Vertical colour bar: the table's first entry at the bottom, the last at the top."""
    y0, y1 = top + round(height * 0.12), top + round(height * 0.88)
    n = len(bar.table)
    for y in range(y0, y1 + 1):
        t = (y1 - y) / max(y1 - y0, 1)
        colour = tuple(int(c) for c in bar.table[min(n - 1, int(t * n))])
        draw.line((x0, y, x0 + bar_w, y), fill=colour)
    draw.rectangle((x0, y0, x0 + bar_w, y1), outline=(200, 200, 200))

    def row_of(value: float) -> float:
        return y1 - (value - bar.lower) / max(bar.upper - bar.lower, 1e-30) * (y1 - y0)

    for value, text in bar.ticks:
        y = row_of(value)
        draw.line((x0 + bar_w, y, x0 + bar_w + 4, y), fill=TEXT)
        draw.text((x0 + bar_w + 7, y), text, fill=TEXT, font=font_, anchor="lm")
    if bar.threshold is not None and bar.lower < bar.threshold < bar.upper:
        y = row_of(bar.threshold)
        draw.line((x0 - 4, y, x0 + bar_w + 4, y), fill=(0, 200, 255), width=2)
    for n_line, text in enumerate(bar.title.split("\n")):
        draw.text((x0 - unit // 2, y0 - unit // 2 - (1 - n_line) * round(unit * 1.1)), text, fill=TEXT,
                  font=font_, anchor="lb")  # fmt: skip
    return {"x": (x0, x0 + bar_w), "rows": (y0, y1), "ticks": [t for _, t in bar.ticks]}
