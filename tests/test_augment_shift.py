"""Training augmentation for other scanners: the shift benchmark's display variations as augmentation (read back
as the loader reads them) and lesion-free regions of lesion frames as extra normal tissue."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from trained import TINY

from pipeline.config import CLASS_NAMES
from pipeline.data.items import Item
from pipeline.training import augment, regions
from pipeline.training.regions import lesion_free_items
from pipeline.training.shift import VARIATIONS
from pipeline.training.train import cls_example, seg_example


def _frame(seed: int = 0, shape=(240, 320)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gray = cv2.GaussianBlur(rng.gamma(2.0, 40.0, shape).clip(0, 255).astype(np.uint8), (3, 3), 0)
    mask = np.zeros(shape, np.uint8)
    mask[100:140, 130:190] = 1
    gray[mask > 0] //= 3  # a dark lesion
    return gray, mask


def test_every_display_variation_comes_back_gray_with_its_mask_aligned():
    gray, mask = _frame()
    seen = set()
    for seed in range(200):
        out, m = augment.display_variation(gray, mask, np.random.default_rng(seed), p=1.0)
        assert out.dtype == np.uint8 and out.ndim == 2 and out.shape == m.shape, seed
        assert set(np.unique(m)) <= {0, 1} and m.any()
        ys, xs = np.nonzero(m)  # the lesion is still where the (scaled / padded) mask says: darker than the rest
        assert out[ys, xs].mean() < out[m == 0].mean(), seed
        seen.add((out.shape != gray.shape, not np.array_equal(out, gray)))
    assert (True, True) in seen and (False, True) in seen  # padding / down-sampling and in-place variations both drawn


def test_no_variation_without_probability_and_the_random_stream_untouched():
    gray, mask = _frame()
    rng = np.random.default_rng(3)
    out, m = augment.display_variation(gray, mask, rng, p=0.0)
    assert out is gray and m is mask
    assert rng.random() == np.random.default_rng(3).random()


def test_a_tinted_gray_map_is_read_back_as_its_gray_levels():
    gray, mask = _frame(1)
    tinted, _ = VARIATIONS["tint_blue"](gray, mask, 1, np.random.default_rng(0))
    from pipeline.imageio import image_from_array

    back = image_from_array(tinted).pixels
    assert np.corrcoef(back.ravel(), gray.ravel())[0, 1] > 0.99


def test_lesion_free_regions_stay_away_from_the_lesion():
    gray, mask = _frame(2)
    rng = np.random.default_rng(0)
    h, w = mask.shape
    margin = int(0.08 * max(h, w))
    near = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))
    for c in np.nonzero(near.any(0))[0]:  # below the lesion (its acoustic shadow): never taken either
        near[near[:, c].argmax():, c] = 1
    found = 0
    for _ in range(50):
        crop = regions.lesion_free_crop(gray, mask, rng)
        if crop is None:
            continue
        found += 1
        ch, cw = crop.shape
        assert 0.25 * h - 1 <= ch <= 0.6 * h and 0.25 * w - 1 <= cw <= 0.6 * w
        # locate the crop in the frame: it must not reach the dilated lesion
        res = cv2.matchTemplate(gray, crop, cv2.TM_SQDIFF)
        y, x = np.unravel_index(int(res.argmin()), res.shape)
        assert np.array_equal(gray[y:y + ch, x:x + cw], crop) and not near[y:y + ch, x:x + cw].any()
    assert found >= 25
    whole = np.ones_like(mask)
    assert regions.lesion_free_crop(gray, whole, rng) is None  # no room: nothing made up


def test_lesion_free_items_are_normal_with_empty_masks_and_fixed_by_the_seed():
    gray, mask = _frame(3)
    items = [Item("benign (1).png", gray, mask, CLASS_NAMES.index("benign")),
             Item("normal (1).png", gray, np.zeros_like(mask), CLASS_NAMES.index("normal"))]
    out = lesion_free_items(items, 2, seed=5)
    assert 1 <= len(out) <= 2 and all(it.image.startswith("benign (1).png#lesion-free") for it in out)
    assert all(it.label == CLASS_NAMES.index("normal") and not it.mask.any() and it.mask.shape == it.gray.shape
               for it in out)
    again = lesion_free_items(items, 2, seed=5)
    assert all(np.array_equal(a.gray, b.gray) for a, b in zip(out, again))


@pytest.mark.parametrize("refined", [False, True])
def test_training_examples_with_display_variations_keep_their_shapes(refined):
    gray, mask = _frame(4)
    item = Item("malignant (1).png", gray, mask, CLASS_NAMES.index("malignant"))
    for seed in range(30):
        x, y = cls_example(item, np.random.default_rng(seed), refined=refined, size=64, display=1.0)
        assert x.shape == (64, 64, 3) and y.argmax() == CLASS_NAMES.index("malignant")
        s_in, s_target = seg_example(item, np.random.default_rng(seed), display=1.0)
        assert s_in.shape[:2] == s_target.shape[:2]
    plain = cls_example(item, None, refined=refined, size=64, display=1.0)[0]  # validation: never varied
    assert np.array_equal(plain, cls_example(item, None, refined=refined, size=64)[0])


@pytest.mark.full
def test_one_step_training_with_display_variations_and_extra_normals(busi_dir, tmp_path):
    from pipeline.training.train import train

    cfg = train("raw", busi_dir, models_dir=tmp_path, display_aug=0.5, lesion_free=1, lesion_erased=True,
                band_swap=0.3, **TINY)
    extra = cfg.notes["augmentation_for_other_scanners"]
    assert extra["display_variation_probability"] == 0.5 and extra["lesion_free_normal_regions"] >= 1
    assert extra["lesion_erased_normal_frames"] >= 1 and extra["band_swap_probability"] == 0.3
    assert (tmp_path / "classifier_baseline.keras").is_file()


def test_a_zoom_crop_keeps_the_whole_lesion_and_leaves_the_stream_alone_when_off():
    gray, mask = _frame(4)
    rng = np.random.default_rng(9)
    out, m = augment.zoom_crop(gray, mask, rng, p=0.0)
    assert out is gray and m is mask and rng.random() == np.random.default_rng(9).random()
    shapes = set()
    for seed in range(100):
        out, m = augment.zoom_crop(gray, mask, np.random.default_rng(seed), p=1.0)
        assert out.shape == m.shape and m.sum() == mask.sum()  # the whole lesion is inside
        assert out.shape[0] < gray.shape[0] and out.shape[1] < gray.shape[1]
        shapes.add(out.shape)
    assert len(shapes) > 10
    empty = np.zeros_like(mask)
    out, m = augment.zoom_crop(gray, empty, np.random.default_rng(1), p=1.0)
    assert not m.any() and out.size < gray.size
    big = np.ones_like(mask)  # a lesion filling the frame: the crop grows to hold it
    assert augment.zoom_crop(gray, big, np.random.default_rng(2), p=1.0)[0].shape == gray.shape
    small = gray[:70, :100]  # a small lesion-free region: never cut below 64 px (the loader refuses < 32 px)
    for seed in range(20):
        out, _ = augment.zoom_crop(small, np.zeros(small.shape, np.uint8), np.random.default_rng(seed), p=1.0)
        assert min(out.shape) >= 64
    tiny = gray[:40, :50]
    assert augment.zoom_crop(tiny, np.zeros(tiny.shape, np.uint8), np.random.default_rng(0), p=1.0)[0].shape == (40, 50)


def test_cls_example_zooms_only_when_asked():
    gray, mask = _frame(5)
    item = Item("x.png", gray, mask, CLASS_NAMES.index("benign"))
    a, _ = cls_example(item, np.random.default_rng(0), refined=False, size=64)
    b, _ = cls_example(item, np.random.default_rng(0), refined=False, size=64, zoom=0.0)
    c, _ = cls_example(item, np.random.default_rng(0), refined=False, size=64, zoom=1.0)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_random_marks_are_bright_thin_marks_anywhere_and_off_leaves_the_stream_alone():
    from pipeline.experiments.caliper_marks import thin_marks

    gray, _ = _frame(5)
    rng = np.random.default_rng(2)
    assert augment.random_marks(gray, rng, 0.0) is gray
    assert rng.random() == np.random.default_rng(2).random()
    drawn = [augment.random_marks(gray, np.random.default_rng(s), 1.0) for s in range(20)]
    for out in drawn:
        added = out > gray
        assert out.shape == gray.shape and out.dtype == np.uint8 and (out >= gray).all()
        assert 0 < added.mean() < 0.05 and int(out[added].max()) >= 200  # a few bright pixels
        assert thin_marks(out)[added].mean() > 0.5  # found as marks, as calipers are
    assert len({tuple(np.argwhere(o > gray).mean(0).round()) for o in drawn}) > 10  # in many places
    small = cv2.resize(gray, (128, 96), interpolation=cv2.INTER_AREA)
    shrunk = augment.random_marks(small, np.random.default_rng(0), 1.0, scale=2.5)
    assert shrunk.shape == small.shape and (shrunk > small).any()


def test_training_examples_with_random_marks_keep_their_targets():
    gray, mask = _frame(4)
    item = Item("normal (1).png", gray, np.zeros_like(mask), CLASS_NAMES.index("normal"))
    for seed in range(10):
        s_in, s_target = seg_example(item, np.random.default_rng(seed), marks=1.0)
        assert s_in.shape[:2] == s_target.shape[:2] and not s_target.any()  # marks are not a lesion
        x, y = cls_example(item, np.random.default_rng(seed), refined=False, size=64, marks=1.0)
        assert x.shape == (64, 64, 3) and y.argmax() == CLASS_NAMES.index("normal")


def test_an_erased_lesion_leaves_the_frame_at_its_scale_with_the_lesion_columns_refilled():
    gray, mask = _frame(5)
    rng = np.random.default_rng(0)
    out = regions.lesion_erased(gray, mask, rng)
    assert out is not None and out.shape == gray.shape and out.dtype == np.uint8
    cols = np.flatnonzero(mask.any(0))
    rows = np.flatnonzero(mask.any(1))
    pad = int(round(0.05 * gray.shape[1]))
    changed = out != gray
    # only the band over the lesion, from just above it down, is touched
    assert not changed[:, :cols.min() - pad].any() and not changed[:, cols.max() + 1 + pad:].any()
    assert not changed[:rows.min() - pad].any()
    # the dark lesion is gone: its pixels now look like the tissue around it
    assert out[mask > 0].mean() > 2 * gray[mask > 0].mean()
    assert abs(float(out[mask > 0].mean()) - float(gray[mask == 0].mean())) < 25
    wide = np.zeros_like(mask)
    wide[100:140, 20:300] = 1  # wider than max_width of the frame: nothing made up
    assert regions.lesion_erased(gray, wide, rng) is None
    assert regions.lesion_erased(gray, np.zeros_like(mask), rng) is None


def test_lesion_erased_items_are_normal_whole_frames_fixed_by_the_seed():
    gray, mask = _frame(6)
    items = [Item("benign (2).png", gray, mask, CLASS_NAMES.index("benign")),
             Item("normal (2).png", gray, np.zeros_like(mask), CLASS_NAMES.index("normal"))]
    out = regions.lesion_erased_items(items, seed=1)
    assert [it.image for it in out] == ["benign (2).png#lesion-erased"]
    assert out[0].label == CLASS_NAMES.index("normal") and out[0].gray.shape == gray.shape and not out[0].mask.any()
    assert np.array_equal(out[0].gray, regions.lesion_erased_items(items, seed=1)[0].gray)


def test_lesion_erased_items_can_come_from_one_dataset_only():
    gray, mask = _frame(6)
    items = [Item("benign/benign (2).png", gray, mask, CLASS_NAMES.index("benign")),
             Item("bus_0002-l", gray, mask, CLASS_NAMES.index("malignant"))]
    names = {src: [it.image for it in regions.lesion_erased_items(items, seed=1, source=src)]
             for src in regions.ERASED_SOURCES}
    assert names == {"all": ["benign/benign (2).png#lesion-erased", "bus_0002-l#lesion-erased"],
                     "busi": ["benign/benign (2).png#lesion-erased"], "busbra": ["bus_0002-l#lesion-erased"]}
    with pytest.raises(ValueError, match="unknown lesion-erased source"):
        regions.lesion_erased_items(items, seed=1, source="busbra-only")


def test_a_band_swap_keeps_off_the_lesion_and_leaves_the_stream_alone_when_off():
    gray, mask = _frame(7)
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    assert regions.band_swap(gray, mask, rng, 0.0) is gray and rng.bit_generator.state == state
    lesion_cols = mask.any(0)
    swapped = 0
    for _ in range(40):
        out = regions.band_swap(gray, mask, rng, 1.0)
        assert out.shape == gray.shape
        changed = (out != gray).any(0)
        assert not (changed & lesion_cols).any()  # the lesion and the columns through it are never touched
        swapped += bool(changed.any())
    assert swapped >= 10
