"""Lesion measurements on hand-made shapes."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from pipeline.inference.measure import describe, measure


def disc(radius: int, shape=(200, 200), centre=(100, 100)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.circle(m, centre, radius, 1, -1)
    return m


@pytest.mark.parametrize("radius", [10, 30, 80])
def test_disc_is_round_and_convex(radius):
    m = measure(disc(radius))
    assert m.circularity == pytest.approx(1.0, abs=0.05)
    assert m.irregularity < 0.08
    assert m.n_components == 1
    assert m.area_px == int(disc(radius).sum())
    assert m.width_px == m.height_px == 2 * radius + 1
    assert m.taller_than_wide is False


def test_rectangle_10_wide_40_tall():
    mask = np.zeros((100, 100), np.uint8)
    mask[20:60, 30:40] = 1  # 10 wide, 40 tall
    m = measure(mask)
    assert m.bbox == (30, 20, 10, 40)
    assert (m.width_px, m.height_px) == (10, 40)
    assert m.taller_than_wide is True
    assert m.aspect_ratio == pytest.approx(4.0)
    assert m.circularity == pytest.approx(4 * math.pi * 400 / 100**2, abs=0.03)  # 4πA/P², P = 100
    assert m.solidity == pytest.approx(1.0, abs=0.02)
    assert measure(mask.T).taller_than_wide is False


def test_two_blobs_are_two_components_and_bbox_covers_both():
    mask = disc(10) | disc(10, centre=(160, 40))
    m = measure(mask)
    assert m.n_components == 2
    assert m.bbox == (90, 30, 81, 81)
    assert m.area_px == int(mask.sum())


def test_irregular_star_is_less_circular_than_disc():
    mask = np.zeros((200, 200), np.uint8)
    pts = []
    for k in range(16):
        r = 80 if k % 2 == 0 else 35
        a = 2 * math.pi * k / 16
        pts.append((100 + r * math.cos(a), 100 + r * math.sin(a)))
    cv2.fillPoly(mask, [np.array(pts, np.int32)], 1)
    m = measure(mask)
    assert m.circularity < 0.5
    assert m.irregularity > 0.3


def test_empty_mask_gives_zeros_and_none():
    m = measure(np.zeros((50, 60), np.uint8), pixel_spacing_mm=(0.1, 0.1))
    assert (m.area_px, m.n_components, m.area_fraction) == (0, 0, 0.0)
    assert m.bbox is None and m.circularity is None and m.taller_than_wide is None
    assert m.area_mm2 == 0.0
    assert describe(m) == ["No lesion was outlined by the segmentation model."]
    json.dumps(m.to_dict())


def test_pixel_spacing_gives_mm():
    mask = np.zeros((100, 100), np.uint8)
    mask[10:30, 10:50] = 255  # 40 wide, 20 tall
    m = measure(mask, pixel_spacing_mm=(0.2, 0.1))
    assert m.area_mm2 == pytest.approx(800 * 0.02)
    assert (m.width_mm, m.height_mm) == (pytest.approx(4.0), pytest.approx(4.0))
    assert m.taller_than_wide is False  # equal in mm
    assert "mm²" in describe(m)[0]
    assert json.loads(json.dumps(m.to_dict()))["pixel_spacing_mm"] == [0.2, 0.1]


def test_rejects_non_2d():
    with pytest.raises(ValueError):
        measure(np.zeros((4, 4, 3), np.uint8))
