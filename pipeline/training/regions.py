"""Lesion-free regions of lesion frames: normal tissue as each scanner shows it, cut well away from the lesion (extra
normal-tissue examples in training, a validation and benchmark view of normal tissue from scanners without normal
frames)."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.config import CLASS_NAMES
from pipeline.data.items import Item


def lesion_free_crop(gray: np.ndarray, mask: np.ndarray, rng: np.random.Generator, margin: float = 0.08,
                     side: tuple[float, float] = (0.25, 0.6), tries: int = 40) -> np.ndarray | None:
    """A rectangle of a lesion frame well away from its lesion (none of it within ``margin`` of the frame's longer
    side from the mask, nor below the lesion, where its acoustic shadow or enhancement lies), ``side`` of the frame's
    height and width, as an example of normal tissue; None when the lesion leaves no such room."""
    h, w = mask.shape
    k = 2 * int(margin * max(h, w)) + 1
    near = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    near = np.maximum.accumulate(near, axis=0)  # and everything below it: posterior shadowing / enhancement
    for _ in range(tries):
        bh, bw = int(h * rng.uniform(*side)), int(w * rng.uniform(*side))
        y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        if not near[y:y + bh, x:x + bw].any():
            return gray[y:y + bh, x:x + bw]
    return None


def lesion_free_items(items: list[Item], per_image: int, seed: int) -> list[Item]:
    """Up to ``per_image`` regions of each lesion frame well away from its lesion (``lesion_free_crop``), as
    extra normal-tissue examples with empty masks (fixed by ``seed``); frames with no such room give none."""
    rng, normal, out = np.random.default_rng(seed), CLASS_NAMES.index("normal"), []
    for it in items:
        if not it.mask.any():
            continue
        for k in range(per_image):
            crop = lesion_free_crop(it.gray, it.mask, rng)
            if crop is not None:
                out.append(Item(f"{it.image}#lesion-free-{k}", np.ascontiguousarray(crop), np.zeros(crop.shape, np.uint8),
                                normal))
    return out
