"""Training-time augmentation on uint8 grayscale images (and their masks), with OpenCV.

Flips, small rotations/shifts/scales, brightness/contrast/gamma, and multiplicative speckle-like
noise. Geometry is applied to image and mask alike (mask with nearest-neighbour). For other scanners: the
shift benchmark's display variations (``display_variation``), and frames cut to a part holding the lesion
(``zoom_crop``). Against a shortcut: caliper marks and text drawn anywhere, whatever the class
(``random_marks``). Lesion-free regions of lesion frames, the extra normal tissue, are in ``regions``.
"""

from __future__ import annotations

import cv2
import numpy as np


def geometric(gray: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator,
              max_rot: float = 12.0, max_shift: float = 0.06, scale: tuple[float, float] = (0.9, 1.12)):
    """Random horizontal flip + affine (rotation, shift, scale) of image and mask."""
    if rng.random() < 0.5:
        gray = gray[:, ::-1]
        mask = mask[:, ::-1] if mask is not None else None
    h, w = gray.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-max_rot, max_rot), rng.uniform(*scale))
    m[0, 2] += rng.uniform(-max_shift, max_shift) * w
    m[1, 2] += rng.uniform(-max_shift, max_shift) * h
    gray = cv2.warpAffine(np.ascontiguousarray(gray), m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)
    if mask is not None:
        mask = cv2.warpAffine(np.ascontiguousarray(mask), m, (w, h), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return gray, mask


def photometric(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, gamma and speckle noise; returns uint8."""
    x = gray.astype(np.float32) / 255.0
    x = x ** rng.uniform(0.8, 1.25)
    x = (x - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.08, 0.08)
    if rng.random() < 0.5:
        sigma = rng.uniform(0.03, 0.12)
        x = x * (1 + sigma * rng.standard_normal(x.shape).astype(np.float32))
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def jitter_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Imitate segmentation errors: random dilation or erosion of the mask."""
    k = int(rng.integers(3, 15))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    out = cv2.dilate(mask, kernel) if rng.random() < 0.5 else cv2.erode(mask, kernel)
    return out if out.any() else mask


def zoom_crop(gray: np.ndarray, mask: np.ndarray, rng: np.random.Generator, p: float,
              side: tuple[float, float] = (0.4, 0.8), min_side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """With probability ``p``, a random rectangle of ``side`` of the frame's height and width (at least ``min_side``
    pixels, or the whole side) that holds the whole lesion (grown to the lesion's box where that is larger), image and
    mask alike: frames of every class are shown magnified too, so the magnification of a lesion-free region does not
    give its class away."""
    if p <= 0 or rng.random() >= p:
        return gray, mask
    h, w = mask.shape
    bh, bw = (min(n, max(min_side, int(n * rng.uniform(*side)))) for n in (h, w))
    if mask.any():
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        bh, bw = max(bh, y1 - y0), max(bw, x1 - x0)
        y = int(rng.integers(max(0, y1 - bh), min(y0, h - bh) + 1))
        x = int(rng.integers(max(0, x1 - bw), min(x0, w - bw) + 1))
    else:
        y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    return gray[y:y + bh, x:x + bw], mask[y:y + bh, x:x + bw]


def display_variation(gray: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                      p: float) -> tuple[np.ndarray, np.ndarray]:
    """With probability ``p``, one of the scanner-shift benchmark's display variations (tinted gray map, pictogram,
    calipers, gain, time-gain bands, padding, blur, speckle, JPEG...) at a random strength, read back as the upload
    loader reads it (a tinted gray map becomes gray again). The mask follows (padding and down-sampling change it)."""
    if p <= 0 or rng.random() >= p:
        return gray, mask
    from pipeline.imageio import load_image
    from pipeline.training.shift import STRENGTHS, VARIATIONS, upload_bytes

    name = list(VARIATIONS)[int(rng.integers(len(VARIATIONS)))]
    level = int(rng.integers(len(STRENGTHS)))
    out, mask = VARIATIONS[name](np.ascontiguousarray(gray), np.ascontiguousarray(mask), level, rng)
    # lossy or colour: through the benchmark's upload file and the loader (a gray PNG round trip changes nothing)
    if name == "jpeg" or out.ndim == 3:
        out = load_image(upload_bytes(out, name, level)).pixels
    return out, mask


MARK_TEXTS = ("D1 1.23cm", "D2 0.87cm", "L BREAST", "R BREAST 10H", "2 FN", "RT5", "LT 3CM")


def random_marks(gray: np.ndarray, rng: np.random.Generator, p: float, scale: float = 1.0) -> np.ndarray:
    """With probability ``p``, a radiologist's marks drawn at random places whatever the class: one or two pairs of
    caliper crosses (joined by a dotted line half the time) and, half the time, a line of text, bright, 1-3 px. BUSI's
    calipers sit on lesions and its normal frames rarely have any, so a network can learn "marks mean a lesion"; these
    marks carry no such sign. ``scale``: how much larger the original frame was than ``gray`` (the UNet augments at
    its input size): the marks are drawn at the original size and shrunk with the frame, 1-px lines and all, so they
    look as real ones do after resizing. The mask is not touched."""
    if p <= 0 or rng.random() >= p:
        return gray
    h, w = gray.shape
    big_h, big_w = max(h, int(round(h * scale))), max(w, int(round(w * scale)))
    layer = np.zeros((big_h, big_w), np.uint8)
    unit = max(big_h, big_w) / 500  # the marks' size on a ~500 px frame
    level = int(rng.integers(200, 256))
    thick = max(1, int(round(rng.integers(1, 4) * unit)))  # BUSI's calipers are 3 px lines on a ~500 px frame
    for _ in range(int(rng.integers(1, 3))):
        a = np.array([rng.uniform(0.1, 0.9) * big_w, rng.uniform(0.1, 0.9) * big_h])
        angle, length = rng.uniform(0, np.pi), rng.uniform(0.1, 0.4) * min(big_h, big_w)
        b = np.clip(a + length * np.array([np.cos(angle), np.sin(angle)]), 0, [big_w - 1, big_h - 1])
        size = max(2, int(round(rng.uniform(6, 12) * unit)))
        for x, y in (a.astype(int), b.astype(int)):
            cv2.line(layer, (int(x) - size, int(y)), (int(x) + size, int(y)), level, thick)
            cv2.line(layer, (int(x), int(y) - size), (int(x), int(y) + size), level, thick)
        if rng.random() < 0.5:  # the dotted line between them
            n = max(2, int(np.linalg.norm(b - a) / max(3, 3 * thick)))
            for t in np.linspace(0.1, 0.9, n):
                x, y = (a + t * (b - a)).astype(int)
                layer[y:y + thick, x:x + thick] = level
    if rng.random() < 0.5:
        text = MARK_TEXTS[int(rng.integers(len(MARK_TEXTS)))]
        org = (int(rng.uniform(0.02, 0.6) * big_w), int(rng.uniform(0.08, 0.97) * big_h))
        cv2.putText(layer, text, org, cv2.FONT_HERSHEY_SIMPLEX, max(0.3, 0.5 * unit), level, max(1, thick - 1),
                    cv2.LINE_AA)
    if layer.shape != (h, w):
        layer = cv2.resize(layer, (w, h), interpolation=cv2.INTER_AREA)
    return np.maximum(gray, layer)
