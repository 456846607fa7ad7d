"""Lesion-free regions of lesion frames: normal tissue as each scanner shows it, cut well away from the lesion (extra
normal-tissue examples in training, a validation and benchmark view of normal tissue from scanners without normal
frames), and whole lesion frames with the lesion erased: normal tissue at the frame's own scale."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.config import CLASS_NAMES
from pipeline.data.busbra import is_busbra_image
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


def _feather(n: int, ramp: int) -> np.ndarray:
    """Weights 0..1..0 over ``n`` positions, rising and falling linearly over ``ramp`` positions at each end."""
    w = np.ones(n, np.float32)
    r = max(1, min(ramp, n // 2))
    w[:r] = w[-r:][::-1] = (np.arange(r, dtype=np.float32) + 1) / (r + 1)
    return w


def _transplant(gray: np.ndarray, c0: int, c1: int, r0: int, blocked: np.ndarray, ramp: int,
                rng: np.random.Generator) -> np.ndarray | None:
    """``gray`` with columns ``c0:c1`` from row ``r0`` down replaced by an equally wide band of the same rows whose
    columns avoid ``c0:c1`` and every ``blocked`` column, blended in over ``ramp`` pixels at its edges. Of the
    possible bands, one of the three whose mean level is closest to the columns flanking the target is taken (a
    band holding another structure's shadow would draw a new one). None when no band fits."""
    h, w = gray.shape
    bw = c1 - c0
    col = gray[r0:].mean(axis=0, dtype=np.float64)
    run = np.concatenate([[0.0], np.cumsum(col)])
    bad = np.concatenate([[0], np.cumsum(blocked.astype(np.int64))])
    s = np.arange(0, w - bw + 1)
    ok = ((s + bw <= c0) | (s >= c1)) & (bad[s + bw] - bad[s] == 0)
    if not ok.any():
        return None
    flank = np.r_[col[max(0, c0 - ramp):c0], col[c1:c1 + ramp]]
    level = flank.mean() if flank.size else col.mean()
    s = s[ok]
    gap = np.abs((run[s + bw] - run[s]) / bw - level)
    src = int(rng.choice(s[np.argsort(gap, kind="stable")[:3]]))
    out = gray.astype(np.float32)
    band = out[r0:, src:src + bw]
    if rng.random() < 0.5:
        band = band[:, ::-1]
    alpha = _feather(bw, ramp)[None, :] * np.minimum(1.0, (np.arange(h - r0, dtype=np.float32)[:, None] + 1)
                                                    / max(2, ramp))
    out[r0:, c0:c1] = alpha * band + (1 - alpha) * out[r0:, c0:c1]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def lesion_erased(gray: np.ndarray, mask: np.ndarray, rng: np.random.Generator, margin: float = 0.05,
                  max_width: float = 0.45) -> np.ndarray | None:
    """A lesion frame at its own scale with the lesion replaced by tissue from the same depths beside it: the band
    of columns over the lesion (widened by ``margin`` of the frame's width), from just above the lesion to the
    bottom of the frame (its acoustic shadow or enhancement included), is filled with an equally wide band of
    lesion-free columns at the same rows (``_transplant``). Breast tissue lies in layers roughly parallel to the
    skin, so the same rows elsewhere show the same layers. None when the lesion band is wider than ``max_width`` of
    the frame or no lesion-free band of its width is left."""
    h, w = mask.shape
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    pad = max(2, int(round(margin * w)))
    c0, c1 = max(0, cols.min() - pad), min(w, cols.max() + 1 + pad)
    if c1 - c0 > max_width * w:
        return None
    r0 = max(0, rows.min() - pad)
    return _transplant(gray, c0, c1, r0, mask[r0:].any(axis=0), max(2, min(pad, (c1 - c0) // 6)), rng)


def band_swap(gray: np.ndarray, mask: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """With probability ``p``, the seam ``lesion_erased`` leaves, made on a frame of any class away from its lesion:
    a random band of columns (10-35% of the width, from a random depth in the upper half down) replaced by another
    band of the same rows, neither touching the lesion's columns, so that such seams are no sign of "normal"."""
    if p <= 0 or rng.random() >= p:
        return gray
    h, w = gray.shape
    bw = max(4, int(w * rng.uniform(0.1, 0.35)))
    c0, r0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h // 2 + 1))
    lesion_cols = mask.any(axis=0)
    if lesion_cols[c0:c0 + bw].any():
        return gray
    out = _transplant(gray, c0, c0 + bw, r0, lesion_cols, max(2, min(int(0.05 * w), bw // 6)), rng)
    return gray if out is None else out


ERASED_SOURCES = ("all", "busi", "busbra")


def lesion_erased_items(items: list[Item], seed: int, source: str = "all") -> list[Item]:
    """Each lesion frame with its lesion erased (``lesion_erased``), where it can be, as an extra whole-frame example of
    normal tissue at the frame's own scale from that frame's scanner, with an empty mask (fixed by ``seed``).
    ``source``: erase the lesion frames of both datasets ("all"), or only BUSI's or only BUS-BRA's."""
    if source not in ERASED_SOURCES:
        raise ValueError(f"unknown lesion-erased source {source!r}; choose one of {', '.join(ERASED_SOURCES)}")
    rng, normal, out = np.random.default_rng(seed), CLASS_NAMES.index("normal"), []
    for it in items:
        if source != "all" and is_busbra_image(it.image) != (source == "busbra"):
            continue
        if it.mask.any() and (erased := lesion_erased(it.gray, it.mask, rng)) is not None:
            out.append(Item(f"{it.image}#lesion-erased", erased, np.zeros(erased.shape, np.uint8), normal))
    return out
