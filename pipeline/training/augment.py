"""Training-time augmentation on uint8 grayscale images (and their masks), with OpenCV.

Flips, small rotations/shifts/scales, brightness/contrast/gamma, and multiplicative speckle-like
noise. Geometry is applied to image and mask alike (mask with nearest-neighbour). For other scanners: the
shift benchmark's display variations (``display_variation``), and frames cut to a part holding the lesion
(``zoom_crop``). Lesion-free regions of lesion frames, the extra normal tissue, are in ``regions``.
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
