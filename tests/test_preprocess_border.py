"""Black borders around a frame (a scanner's padding around a narrower or shallower field of view) are set aside
before any network sees the frame: ``preprocess.content_box`` on hand cases, and the training side's ``drop_border``."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import preprocess
from pipeline.data.items import Item
from pipeline.training.train import drop_border


def _tissue(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(20, 200, (h, w), dtype=np.uint8)


def test_a_frame_without_borders_is_taken_whole():
    g = _tissue(60, 80)
    assert preprocess.content_box(g) == (0, 0, 80, 60)


def test_padding_below_and_at_the_sides_is_cut_even_with_jpeg_noise():
    g = np.pad(_tissue(60, 80), ((0, 30), (20, 25)))
    noise = np.random.default_rng(1).integers(0, preprocess.BORDER_LEVEL + 1, g.shape, dtype=np.uint8)
    g = np.where(g == 0, noise, g).astype(np.uint8)
    assert preprocess.content_box(g) == (20, 0, 100, 60)


def test_dark_rows_inside_the_frame_and_short_marks_in_the_padding():
    g = np.pad(_tissue(60, 80), ((0, 40), (0, 0)))
    g[20:30] = 0  # an anechoic band inside the tissue: kept
    g[80, 5] = 255  # a stray mark in the padding, under 2% of its row: still padding
    assert preprocess.content_box(g) == (0, 0, 80, 60)
    g[90, :40] = preprocess.ISLAND_PEAK - 20  # a faint band across half the row (deep speckle): content, so the crop stops there
    assert preprocess.content_box(g) == (0, 0, 80, 91)
    g[90, :40] = preprocess.ISLAND_PEAK + 30  # the same band bright, apart from the image: a mark on the padding
    assert preprocess.content_box(g) == (0, 0, 80, 60)


def test_a_pictogram_and_icons_on_the_padding_do_not_stop_the_crop():
    """Another scanner's screen: a strip of coloured icons above the image, a filled body-mark pictogram and a block of
    text below it (drawn in colour, read as the loader's luminance)."""
    import cv2

    rgb = np.pad(np.repeat(_tissue(120, 160)[:, :, None], 3, axis=2), ((16, 60), (40, 40), (0, 0)))
    for i in range(4):
        cv2.rectangle(rgb, (70 + 20 * i, 3), (80 + 20 * i, 12), (60, 200, 255) if i % 2 else (255, 140, 0), -1)
    cv2.circle(rgb, (60, 168), 14, (230, 190, 150), -1)
    cv2.line(rgb, (48, 162), (72, 174), (255, 220, 0), 3)
    cv2.rectangle(rgb, (90, 152), (130, 166), (200, 200, 200), -1)  # a solid label block
    g = preprocess.to_gray(rgb)
    assert preprocess.content_box(g) == (40, 16, 200, 136)


def test_a_big_bright_patch_apart_from_the_image_is_content():
    g = np.pad(_tissue(60, 80), ((0, 60), (0, 0)))
    g[75:115, 10:70] = 120  # a second picture below the first (a dual view), not a mark
    assert preprocess.content_box(g) == (0, 0, 80, 115)


def test_text_written_on_the_padding_does_not_stop_the_crop():
    import cv2

    g = np.pad(_tissue(120, 160), ((0, 60), (40, 40)))
    cv2.putText(g, "L BREAST 3H 4.0cm", (2, 170), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1, cv2.LINE_AA)
    cv2.putText(g, "12L", (2, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 230, 1, cv2.LINE_AA)
    assert preprocess.content_box(g) == (40, 0, 200, 120)


@pytest.mark.parametrize("g", [np.zeros((50, 50), np.uint8), np.pad(_tissue(10, 80), ((0, 60), (0, 0)))],
                         ids=["all black", "too little left"])
def test_nothing_sensible_left_means_the_whole_frame(g):
    assert preprocess.content_box(g) == (0, 0, g.shape[1], g.shape[0])


def test_place_in_box_inverts_crop_to_box():
    g = np.pad(_tissue(60, 80), ((5, 30), (20, 25)))
    box = preprocess.content_box(g)
    inner = preprocess.crop_to_box(g, box)
    back = preprocess.place_in_box(inner, box, g.shape)
    assert np.array_equal(back, g)
    assert preprocess.place_in_box(g, (0, 0, g.shape[1], g.shape[0]), g.shape) is g


def test_training_items_lose_their_borders_with_their_masks():
    gray = np.pad(_tissue(60, 80), ((0, 30), (10, 10)))
    mask = np.zeros_like(gray)
    mask[10:20, 30:40] = 1
    item = Item("x", gray, mask, 0, crop_mask=mask.copy())
    drop_border(item)
    assert item.gray.shape == item.mask.shape == item.crop_mask.shape == (60, 80)
    assert item.mask.sum() == 100 and item.mask[10:20, 20:30].all()
    plain = Item("y", _tissue(40, 40), np.zeros((40, 40), np.uint8), 2)
    before = plain.gray
    drop_border(plain)
    assert plain.gray is before
