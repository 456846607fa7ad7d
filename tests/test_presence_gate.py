"""The lesion-presence gate: an empty mask unless the UNet is confident somewhere, chosen on validation."""

from __future__ import annotations

import numpy as np

from pipeline.data.items import Item
from pipeline.inference.decisions import choose_presence, lesion_mask


def _prob(peak: float, box=(10, 20, 10, 20), shape=(32, 32)) -> np.ndarray:
    p = np.full(shape, 0.05, np.float32)
    y0, y1, x0, x1 = box
    p[y0:y1, x0:x1] = peak
    return p


def test_mask_kept_only_when_some_pixel_reaches_the_presence_threshold():
    p = _prob(0.8)
    assert lesion_mask(p, 0.5).sum() == 100
    assert lesion_mask(p, 0.5, 0.0).sum() == 100  # 0: never gated
    assert lesion_mask(p, 0.5, 0.8).sum() == 100  # the peak reaches it
    gated = lesion_mask(p, 0.5, 0.9)
    assert gated.dtype == np.uint8 and gated.shape == p.shape and not gated.any()


def _item(name: str, lesion: bool) -> Item:
    mask = np.zeros((32, 32), np.uint8)
    if lesion:
        mask[10:20, 10:20] = 1
    return Item(name, np.zeros((32, 32), np.uint8), mask, 0 if lesion else 2)


def test_choose_presence_keeps_false_positives_under_the_limit_at_least_dice_cost():
    # 4 lesions found with peaks 0.99, 0.97, 0.9, 0.6; 10 normal images, two with confident blobs (0.95, 0.7)
    items = [_item(f"l{i}", True) for i in range(4)] + [_item(f"n{i}", False) for i in range(10)]
    maps = [_prob(v) for v in (0.99, 0.97, 0.9, 0.6)] + [_prob(0.95), _prob(0.7)] + [_prob(0.3)] * 8
    best, table = choose_presence(maps, [it.mask for it in items], 0.5, candidates=(0.0, 0.5, 0.8, 0.96), max_fp=0.10)
    assert table[0.0] == (1.0, 0.2) and table[0.8] == (0.75, 0.1) and table[0.96] == (0.5, 0.0)
    assert best == 0.8  # the best Dice among the candidates with at most 10% false positives


def test_choose_presence_falls_back_to_the_lowest_false_positive_rate():
    items = [_item("l", True), _item("n", False)]
    maps = [_prob(0.9), _prob(0.99)]
    best, table = choose_presence(maps, [it.mask for it in items], 0.5, candidates=(0.0, 0.95), max_fp=0.0)
    assert table[0.95] == (0.0, 1.0) and table[0.0] == (1.0, 1.0)
    assert best == 0.0  # both leave the normal image outlined: keep the better Dice
