"""Model inputs, prepared in one place for training, evaluation and prediction alike.

- Segmentation: grayscale resized to SEG_SIZE (area interpolation), scaled to [0, 1], one channel.
- Baseline classifier: the whole frame, grayscale repeated to 3 channels, CLS_SIZE, values 0-255
  (the networks normalise inside themselves).
- Refined classifier: a lesion-centred crop around the predicted mask (bounding box widened by
  CROP_MARGIN of its size on each side, made square, at least CROP_MIN_FRACTION of the frame);
  an empty mask gives the whole frame.
- Before any of these, a frame loses its uniform black borders (``content_box``): the padding a scanner puts
  around a narrower or shallower field of view is not tissue (nor are the text, icons and body-mark pictogram
  drawn on it), and the networks see the frame as if it had none.
  Masks and maps are placed back into the full frame (``place_in_box``).
"""

from __future__ import annotations

import cv2
import numpy as np

SEG_SIZE = 256
CLS_SIZE = 224
CROP_MARGIN = 0.5
CROP_MIN_FRACTION = 0.35
MASK_THRESHOLD = 0.5
# a border row or column: at least BORDER_SHARE of its pixels at or below gray level BORDER_LEVEL (black padding,
# JPEG noise included) or in thin bright marks (text, scale ticks written on the padding: a white top-hat of
# MARK_SIDE px at least MARK_CONTRAST above its surroundings and at least MARK_LEVEL); a frame whose content would be
# under BORDER_MIN_SIDE px on a side is taken whole
BORDER_LEVEL = 4
BORDER_SHARE = 0.98
BORDER_MIN_SIDE = 32
MARK_SIDE = 5
MARK_CONTRAST = 60
MARK_LEVEL = 150
# ...and blobs on the padding: a patch of content not touching the image (8-connected after closing gaps of up to
# 2 px), under ISLAND_SHARE of the frame's area and reaching ISLAND_PEAK, is a mark too (a body-mark pictogram,
# coloured icons, a block of text); faint speckle below the image (under ISLAND_PEAK) stays content
ISLAND_SHARE = 0.02
ISLAND_PEAK = 60

Box = tuple[int, int, int, int]  # x0, y0, x1, y1


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 grayscale from a grayscale, RGB or RGBA uint8 array."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2GRAY)
    raise ValueError(f"expected a 2-D grayscale or H x W x 3/4 colour image, got shape {image.shape}")


def content_box(gray: np.ndarray) -> Box:
    """(x0, y0, x1, y1) of ``gray`` without its uniform black borders: the outer rows and columns that are at least
    ``BORDER_SHARE`` black (level <= ``BORDER_LEVEL``) or marks on black (thin bright text, and small bright blobs
    apart from the image: a pictogram, icons). The whole frame when no border is found or too little would be left;
    dark rows inside the frame (an anechoic cyst, a shadow) never count, only those outside all content."""
    h, w = gray.shape[:2]
    dark = gray <= BORDER_LEVEL
    if dark.any():  # (a frame with no black pixel has no border: skip the marks)
        dark = dark | thin_marks(gray) | _islands(gray, dark)
    rows = np.flatnonzero(dark.mean(axis=1) < BORDER_SHARE)
    cols = np.flatnonzero(dark.mean(axis=0) < BORDER_SHARE)
    if not len(rows) or not len(cols):
        return 0, 0, w, h
    x0, x1, y0, y1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    if x1 - x0 < min(BORDER_MIN_SIDE, w) or y1 - y0 < min(BORDER_MIN_SIDE, h):
        return 0, 0, w, h
    return x0, y0, x1, y1


def thin_marks(gray: np.ndarray) -> np.ndarray:
    """Boolean map of thin bright marks (text, calipers, scale ticks: a white top-hat of ``MARK_SIDE`` px at least
    ``MARK_CONTRAST`` above its surroundings and at least ``MARK_LEVEL``), dilated by one pixel."""
    tophat = cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, np.ones((MARK_SIDE, MARK_SIDE), np.uint8))
    marks = (tophat >= MARK_CONTRAST) & (gray >= MARK_LEVEL)
    return cv2.dilate(marks.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def border_rule() -> dict:
    """``content_box``'s rule and settings, as the bundle manifest records them."""
    return {"rule": "outer rows and columns at least `share` black (level <= `level`) or marks on black are cut "
                    "(thin bright marks: white top-hat of `mark_side` px >= `mark_contrast` and level >= `mark_level`; "
                    "blobs apart from the image under `island_share` of the frame reaching `island_peak`); the whole "
                    "frame when under `min_side` px would be left",
            "level": BORDER_LEVEL, "share": BORDER_SHARE, "min_side": BORDER_MIN_SIDE, "mark_side": MARK_SIDE,
            "mark_contrast": MARK_CONTRAST, "mark_level": MARK_LEVEL, "island_share": ISLAND_SHARE,
            "island_peak": ISLAND_PEAK}


def _islands(gray: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Small bright blobs of content (not ``dark``) apart from the rest (see ``ISLAND_SHARE``): marks on the padding.
    The biggest blob is never one."""
    joined = cv2.dilate((~dark).astype(np.uint8), np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    if n <= 2:
        return np.zeros_like(dark)
    bright = np.bincount(labels[gray >= ISLAND_PEAK], minlength=n) > 0  # the blob reaches ISLAND_PEAK
    area = stats[:, cv2.CC_STAT_AREA]
    island = (area < ISLAND_SHARE * dark.size) & bright
    island[0] = False  # the background
    island[1 + int(np.argmax(area[1:]))] = False
    return island[labels]


def crop_to_box(a: np.ndarray, box: Box) -> np.ndarray:
    """The part of ``a`` (an image, mask or map with the frame's height and width) inside ``box``."""
    x0, y0, x1, y1 = box
    return a[y0:y1, x0:x1]


def place_in_box(inner: np.ndarray, box: Box, shape: tuple[int, int]) -> np.ndarray:
    """``inner`` (the size of ``box``) placed into a zero frame of ``shape`` (height, width): the inverse of
    ``crop_to_box`` for masks and probability maps."""
    if inner.shape[:2] == tuple(shape):
        return inner
    out = np.zeros(tuple(shape) + inner.shape[2:], inner.dtype)
    x0, y0, x1, y1 = box
    out[y0:y1, x0:x1] = inner
    return out


def seg_input(gray: np.ndarray, size: int = SEG_SIZE) -> np.ndarray:
    """(size, size, 1) float32 in [0, 1] for the UNet."""
    small = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
    return (small.astype(np.float32) / 255.0)[:, :, None]


def seg_target(mask: np.ndarray, size: int = SEG_SIZE) -> np.ndarray:
    """(size, size, 1) float32 0/1 target from a 0/1 (or 0/255) mask."""
    small = cv2.resize((mask > 0).astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return (small > 0.5).astype(np.float32)[:, :, None]


def resize_probability(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a UNet probability map back to ``shape`` (height, width), bilinear."""
    prob = np.asarray(prob, np.float32).squeeze()
    return cv2.resize(prob, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def lesion_box(mask: np.ndarray, margin: float = CROP_MARGIN,
               min_fraction: float = CROP_MIN_FRACTION) -> tuple[int, int, int, int] | None:
    """Square crop box (x0, y0, x1, y1) around the mask's lesion pixels, or None for an empty mask (``margin``,
    ``min_fraction``: the bundle's values, see the module docstring)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = int(round(min(max(side, min_fraction * max(h, w)), max(h, w))))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bx0 = int(round(cx - side / 2))
    by0 = int(round(cy - side / 2))
    bx0 = min(max(bx0, 0), max(w - side, 0))
    by0 = min(max(by0, 0), max(h - side, 0))
    return bx0, by0, min(bx0 + side, w), min(by0 + side, h)


def crop_to_lesion(gray: np.ndarray, mask: np.ndarray, margin: float = CROP_MARGIN,
                   min_fraction: float = CROP_MIN_FRACTION) -> np.ndarray:
    """The lesion-centred crop of ``gray`` (the whole image when the mask is empty)."""
    box = lesion_box(mask, margin, min_fraction)
    if box is None:
        return gray
    x0, y0, x1, y1 = box
    return gray[y0:y1, x0:x1]


def cls_input(gray: np.ndarray, size: int = CLS_SIZE) -> np.ndarray:
    """(size, size, 3) float32 in 0-255: grayscale resized and repeated on three channels."""
    interp = cv2.INTER_AREA if min(gray.shape[:2]) >= size else cv2.INTER_LINEAR
    small = cv2.resize(gray, (size, size), interpolation=interp).astype(np.float32)
    return np.repeat(small[:, :, None], 3, axis=2)


def refined_input(gray: np.ndarray, mask: np.ndarray, size: int = CLS_SIZE, margin: float = CROP_MARGIN,
                  min_fraction: float = CROP_MIN_FRACTION) -> np.ndarray:
    """Refined-classifier input: the lesion-centred crop, prepared like ``cls_input``."""
    return cls_input(crop_to_lesion(gray, mask, margin, min_fraction), size)
