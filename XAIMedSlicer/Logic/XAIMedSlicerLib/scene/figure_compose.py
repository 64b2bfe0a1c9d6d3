"""Compose one figure panel with Pillow around an MRML slice image.

Layout: a caption band on top; the slice image (pixels as MRML rendered them, plus the thin outlines,
pasted at ``offset``) inside a black band that holds the orientation letters on its four sides and the
scale bar below; the colour bar with its title, units and ticks at the right; the outline legend at
the bottom. Nothing is drawn over the slice image itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

FONT_FILES = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
BACKGROUND = (0, 0, 0)
TEXT = (235, 235, 235)
LETTER = (255, 220, 60)
THRESHOLD = (0, 200, 255)


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
    """Colour bar of the overlay: the table (n, 3) 0..255, the window it spans, tick labels, title lines."""

    table: np.ndarray
    lower: float
    upper: float
    title: list[str]
    ticks: list[tuple[float, str]]
    threshold: float | None = None


def tick_label(value: float) -> str:
    """A colour-bar number: 3 significant digits."""
    return f"{value:.3g}"


def _text_width(text: str, font_) -> float:
    from PIL import Image, ImageDraw

    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=font_)


def compose(
    rgb: np.ndarray,
    caption: list[str],
    letters: dict[str, str],
    bar: ColourBar,
    mm_per_pixel: float,
    legend: list[tuple[str, tuple[int, int, int]]] | None = None,
) -> tuple[np.ndarray, tuple[int, int], dict]:
    """The panel as (h, w, 3) uint8, the (row, col) offset of ``rgb`` in it, and where things are."""
    from PIL import Image, ImageDraw

    height, width, _ = rgb.shape
    unit = max(12, round(max(height, width) / 34))
    caption_font, small, letter_font = font(unit), font(max(10, round(unit * 0.8))), font(round(unit * 1.3))
    line = round(unit * 1.35)
    pad = round(max(unit * 1.8, *(_text_width(t, letter_font) + unit * 0.6 for t in letters.values())))
    top = line * len(caption) + unit // 2 + pad
    legend = list(legend or [])
    bar_w = max(14, unit)
    labels_w = max(_text_width(t, small) for _, t in bar.ticks) + 10
    titles_w = max(_text_width(t, small) for t in bar.title)
    side = round(max(bar_w + labels_w, titles_w) + unit * 1.5)
    captions_w = max(_text_width(t, caption_font if n == 0 else small) for n, t in enumerate(caption))
    canvas_w = round(max(2 * pad + width + side, captions_w + unit))
    canvas_h = top + height + pad + (line * len(legend) + unit // 2 if legend else 0)
    canvas = Image.new("RGB", (canvas_w, canvas_h), BACKGROUND)
    canvas.paste(Image.fromarray(np.ascontiguousarray(rgb)), (pad, top))
    draw = ImageDraw.Draw(canvas)
    for n, text in enumerate(caption):
        draw.text((unit // 2, unit // 4 + n * line), text, fill=TEXT, font=caption_font if n == 0 else small)

    middle_x, middle_y = pad + width / 2, top + height / 2
    anchors = {
        "left": (pad / 2, middle_y),
        "right": (pad + width + pad / 2, middle_y),
        "top": (middle_x, top - pad / 2),
        "bottom": (middle_x, top + height + pad / 2),
    }
    boxes = {}
    for edge, text in letters.items():
        draw.text(anchors[edge], text, fill=LETTER, font=letter_font, anchor="mm")
        boxes[edge] = draw.textbbox(anchors[edge], text, font=letter_font, anchor="mm")

    info = {
        "letters": boxes,
        "caption_rows": (0, top - pad),
        "slice_box": (pad, top, pad + width, top + height),
        "legend": [],
    }
    for n, (name, colour) in enumerate(legend):
        y = top + height + pad + unit // 4 + n * line + line // 2
        draw.line((unit // 2, y, unit // 2 + unit * 2, y), fill=colour, width=2)
        draw.text((unit * 3, y), name, fill=TEXT, font=small, anchor="lm")
        info["legend"].append((name, colour, y))
    info["scale_bar"] = _scale_bar(draw, pad + width, top + height + pad / 2, width, mm_per_pixel, small)
    info["colour_bar"] = _colour_bar(draw, bar, 2 * pad + width, top, height, bar_w, unit, small)
    return np.asarray(canvas), (top, pad), info


def _scale_bar(draw, right: int, y: float, width: int, mm_per_pixel: float, font_) -> dict | None:
    """A white bar of a round length (1, 2, 5, 10 ... mm) about a fifth of the image wide, under its
    right end, with its length written to its left."""
    if mm_per_pixel <= 0:
        return None
    target = width / 5 * mm_per_pixel
    length = max(v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500) if v <= max(target, 1))
    pixels = round(length / mm_per_pixel)
    draw.rectangle((right - pixels, y - 2, right, y + 1), fill=(255, 255, 255))
    label = f"{length / 10:g} cm" if length >= 10 else f"{length} mm"
    draw.text((right - pixels - 6, y), label, fill=TEXT, font=font_, anchor="rm")
    return {"mm": length, "pixels": pixels, "x": (right - pixels, right), "y": y}


def _colour_bar(draw, bar: ColourBar, left: int, top: int, height: int, bar_w: int, unit: int, font_) -> dict:
    """Title lines, then a vertical colour bar: the table's first entry at the bottom, the last at the top."""
    line = round(unit * 1.1)
    x0 = left + unit // 2
    for n, text in enumerate(bar.title):
        draw.text((x0, top + n * line), text, fill=TEXT, font=font_, anchor="lt")
    y0 = top + len(bar.title) * line + unit
    y1 = top + height - unit // 2
    n = len(bar.table)
    for y in range(y0, y1 + 1):
        t = (y1 - y) / max(y1 - y0, 1)
        colour = tuple(int(c) for c in bar.table[min(n - 1, int(t * n))])
        draw.line((x0, y, x0 + bar_w - 1, y), fill=colour)

    def row_of(value: float) -> float:
        return y1 - (value - bar.lower) / max(bar.upper - bar.lower, 1e-30) * (y1 - y0)

    for value, text in bar.ticks:
        y = row_of(value)
        draw.line((x0 + bar_w, y, x0 + bar_w + 4, y), fill=TEXT)
        draw.text((x0 + bar_w + 7, y), text, fill=TEXT, font=font_, anchor="lm")
    shown = bar.threshold is not None and bar.lower < bar.threshold < bar.upper
    if shown:
        y = row_of(bar.threshold)
        draw.line((x0 - 4, y, x0 - 1, y), fill=THRESHOLD, width=2)
    return {
        "x": (x0, x0 + bar_w - 1),
        "rows": (y0, y1),
        "ticks": [t for _, t in bar.ticks],
        "threshold": shown,
    }
