"""Drawing masks over their image (filled or as a contour), and the annotated PNG people download."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.preprocess import to_gray

LESION_COLOUR = (255, 40, 120)  # RGB: the predicted lesion
TRUTH_COLOUR = (0, 220, 255)  # RGB: the ground-truth outline (cyan: distinct from the pink prediction)


def overlay(image: np.ndarray, mask: np.ndarray | None, alpha: float = 0.4, mode: str = "filled",
            colour: tuple[int, int, int] = LESION_COLOUR, thickness: int | None = None,
            truth: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 image with the mask drawn: ``mode`` "filled" (blended, with outline) or "contour".

    ``mask=None`` draws no prediction; ``truth`` (optional) is outlined in TRUTH_COLOUR on top.
    """
    if mode not in ("filled", "contour"):
        raise ValueError(f"mode must be 'filled' or 'contour', not {mode!r}")
    gray = to_gray(image)
    out = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    thickness = thickness or max(1, round(max(gray.shape) / 250))
    if mask is not None:
        m = _binary(mask, gray.shape)
        if mode == "filled" and m.any():
            tint = np.empty_like(out)
            tint[:] = colour
            blended = cv2.addWeighted(out, 1 - alpha, tint, alpha, 0)
            out[m > 0] = blended[m > 0]
        _outline(out, m, colour, thickness)
    if truth is not None:
        _outline(out, _binary(truth, gray.shape), TRUTH_COLOUR, thickness)
    return out


def _binary(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if m.shape != shape:
        raise ValueError(f"mask shape {m.shape} differs from image shape {shape}")
    return m


def _outline(out: np.ndarray, m: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, thickness)


def mask_layer(mask: np.ndarray, colour: tuple[int, int, int], filled: bool, thickness: int) -> np.ndarray:
    """RGBA uint8 layer: ``colour`` where the mask is (``filled``) or along its outline, transparent elsewhere;
    a viewer can stack such layers over the image and change their opacity without redrawing the image."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    out = np.zeros((*m.shape, 4), np.uint8)
    if filled:
        out[m > 0] = (*colour, 255)
    else:
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (*colour, 255), thickness)
    return out


def annotate(rgb: np.ndarray, lines: Sequence[str], legend: Sequence[tuple[str, tuple[int, int, int]]] = (),
             footer: str = "") -> np.ndarray:
    """``rgb`` with a white band below it: the text ``lines`` (the first larger), a colour legend and a grey
    ``footer`` line (e.g. the research-tool disclaimer), wrapped to the image's width; the image is not covered."""
    w = rgb.shape[1]
    size = max(12, min(22, round(w / 40)))
    big, small = ImageFont.load_default(size=size + 2), ImageFont.load_default(size=size)
    pad, gap = size // 2 + 2, size // 3 + 2
    body = [(t, big if i == 0 else small) for i, line in enumerate(lines) for t in _wrap(line, big if i == 0 else small,
                                                                                       w - 2 * pad)]
    foot = [(t, small) for t in _wrap(footer, small, w - 2 * pad)]
    rows = _legend_rows(legend, small, w - 2 * pad)
    band = 2 * pad + sum(f.size + gap for _, f in body + foot) + len(rows) * (small.size + gap)
    canvas = Image.new("RGB", (w, rgb.shape[0] + band), "white")
    canvas.paste(Image.fromarray(np.ascontiguousarray(rgb[:, :, :3])), (0, 0))
    draw = ImageDraw.Draw(canvas)
    y = rgb.shape[0] + pad
    for text, font in body:
        draw.text((pad, y), text, fill=(20, 20, 20), font=font)
        y += font.size + gap
    for row in rows:
        x = pad
        for text, colour in row:
            draw.rectangle((x, y + 2, x + small.size, y + small.size), fill=colour, outline=(60, 60, 60))
            draw.text((x + small.size + 6, y), text, fill=(20, 20, 20), font=small)
            x += _item_width(text, small)
        y += small.size + gap
    for text, font in foot:
        draw.text((pad, y), text, fill=(90, 90, 90), font=font)
        y += font.size + gap
    return np.asarray(canvas)


def _item_width(text: str, font) -> int:
    """Width of one legend item: swatch, gap, text, space before the next."""
    return font.size + 6 + int(font.getlength(text)) + 2 * font.size


def _legend_rows(legend, font, width: int) -> list[list[tuple[str, tuple[int, int, int]]]]:
    rows: list[list] = []
    used = width + 1
    for item in legend:
        need = _item_width(item[0], font)
        if used + need > width and (not rows or rows[-1]):
            rows.append([])
            used = 0
        rows[-1].append(item)
        used += need
    return rows


def _wrap(text: str, font, width: int) -> list[str]:
    out, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > width:
            out.append(line)
            line = word
        else:
            line = trial
    return out + ([line] if line else [])
