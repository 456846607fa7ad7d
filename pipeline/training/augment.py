"""Training-time augmentation on uint8 grayscale images (and their masks), with OpenCV.

Flips, small rotations/shifts/scales, brightness/contrast/gamma, and multiplicative speckle-like
noise. Geometry is applied to image and mask alike (mask with nearest-neighbour).
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
