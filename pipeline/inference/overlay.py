"""Drawing a predicted mask over its image (filled or as a contour)."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.preprocess import to_gray

LESION_COLOUR = (255, 40, 120)  # RGB


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.4, mode: str = "filled",
            colour: tuple[int, int, int] = LESION_COLOUR, thickness: int | None = None) -> np.ndarray:
    """RGB uint8 image with the mask drawn: ``mode`` "filled" (blended, with outline) or "contour"."""
    gray = to_gray(image)
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if m.shape != gray.shape:
        raise ValueError(f"mask shape {m.shape} differs from image shape {gray.shape}")
    thickness = thickness or max(1, round(max(gray.shape) / 250))
    out = rgb.copy()
    if mode == "filled" and m.any():
        tint = np.empty_like(rgb)
        tint[:] = colour
        blended = cv2.addWeighted(rgb, 1 - alpha, tint, alpha, 0)
        out[m > 0] = blended[m > 0]
    elif mode != "filled" and mode != "contour":
        raise ValueError(f"mode must be 'filled' or 'contour', not {mode!r}")
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, thickness)
    return out
