"""The scanner-shift benchmark: each variation on generated frames, and a small real run (full tier)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.imageio import load_image
from pipeline.training.shift import STRENGTHS, VARIATIONS, describe, varied_bytes


def _frame(h: int = 120, w: int = 160) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    gray = cv2.GaussianBlur(rng.integers(40, 200, (h, w)).astype(np.uint8), (5, 5), 0)
    mask = np.zeros((h, w), np.uint8)
    mask[40:70, 60:100] = 1
    return gray, mask


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
@pytest.mark.parametrize("level", range(len(STRENGTHS)))
def test_variation_decodes_through_the_upload_path_and_keeps_the_mask_aligned(variation, level):
    gray, mask = _frame()
    data, truth = varied_bytes(gray, mask, "x.png", variation, level)
    loaded = load_image(data, name="x")
    assert loaded.pixels.shape == truth.shape  # the mask follows padding and down-sampling
    assert truth.sum() > 0
    again, _ = varied_bytes(gray, mask, "x.png", variation, level)
    assert again == data  # fixed seed per image


def test_variations_change_the_image_and_strong_changes_more():
    gray, mask = _frame()
    clean = load_image(varied_bytes(gray, mask, "x.png", None)[0]).pixels.astype(float)
    for name in ("gain", "dynamic_range", "near_field", "speckle", "tgc_bands"):
        mild, strong = (load_image(varied_bytes(gray, mask, "x.png", name, lv)[0]).pixels.astype(float)
                        for lv in (0, 1))
        assert 0 < np.abs(mild - clean).mean() < np.abs(strong - clean).mean(), name


def test_tints_are_colour_and_padding_adds_black():
    gray, mask = _frame()
    tinted = load_image(varied_bytes(gray, mask, "x.png", "tint_blue", 1)[0])
    assert tinted.rgb is not None and tinted.rgb[..., 2].mean() > tinted.rgb[..., 0].mean()
    padded, truth = varied_bytes(gray, mask, "x.png", "padding", 1)
    px = load_image(padded).pixels
    assert px.shape[0] > gray.shape[0] and px.shape[1] > gray.shape[1] and px[-5:].max() == 0
    assert set(describe()) == set(VARIATIONS) and all(describe().values())


@pytest.mark.parametrize("level", range(len(STRENGTHS)))
def test_screen_layout_is_a_tinted_frame_whose_extras_lie_outside_the_content_box(level):
    from pipeline import preprocess

    gray, mask = _frame(300, 400)
    data, truth = varied_bytes(gray, mask, "x.png", "screen_layout", level)
    loaded = load_image(data)
    assert any("tinted gray map" in w for w in loaded.warnings) and not loaded.is_colour
    x0, y0, x1, y1 = preprocess.content_box(loaded.pixels)
    assert (x1 - x0, y1 - y0) == gray.shape[::-1] and y0 > 0 and x0 > 0
    assert y1 < loaded.pixels.shape[0] - 30  # the pictogram and the label lie below the box
    assert truth[y0:y1, x0:x1].sum() == truth.sum() == mask.sum()


@pytest.mark.full
def test_small_real_run_scores_baseline_and_refined(busi_dir):
    from pipeline.data.items import load_items
    from pipeline.inference.predictor import Predictor
    from pipeline.training.regions import lesion_free_items
    from pipeline.training.shift import LESION_FREE, REGION_SEED, run_shift

    items = load_items(busi_dir, "test", limit=6)
    regions = lesion_free_items(items, 1, REGION_SEED)
    assert regions  # 4 lesion frames: at least one leaves room
    result = run_shift(Predictor(), {"BUSI test": items}, ["padding"])
    conds = result["datasets"]["BUSI test"]
    assert set(conds) == {"clean", "padding:mild", "padding:strong", LESION_FREE}
    assert set(result["variations"]) == {"padding", LESION_FREE}
    for name, c in conds.items():
        assert 0 <= c["refined"]["accuracy"] <= 1 and 0 <= c["normal_outlined"] <= 1
        if name == LESION_FREE:  # normal tissue only: accuracy is normal recall, no Dice
            assert c["images"] == len(regions) and c["dice"] is None
            assert c["refined"]["accuracy"] == c["refined"]["normal_recall"]
        else:
            assert c["images"] == 6 and c["dice"] is not None
    assert set(run_shift(Predictor(), {"BUSI test": items[:2]}, ["gain"], lesion_free=False)["datasets"]["BUSI test"]) \
        == {"clean", "gain:mild", "gain:strong"}


def test_shift_table_for_the_models_page():
    from pipeline.views.results import shift_table

    s = {"datasets": {"BUS-BRA fold 5": {
        "clean": {"images": 4, "baseline": {"accuracy": 0.5, "normal_recall": None}, "refined": {"accuracy": 0.75},
                  "dice": 0.8, "normal_outlined": None, "scope_accepted": 1.0},
        "gain:strong": {"images": 4, "baseline": {"accuracy": 0.25}, "refined": {"accuracy": 0.5}, "dice": 0.6,
                        "normal_outlined": None, "scope_accepted": 0.75}}}}
    t = shift_table(s, "BUS-BRA fold 5")
    assert t["variation"].tolist() == ["clean", "gain"] and t["strength"].tolist() == ["—", "strong"]
    assert t["refined − baseline accuracy"].tolist() == [0.25, 0.25]
    assert "normal frames outlined" not in t.columns and "baseline normal recall" not in t.columns  # no normals
    s["datasets"]["BUS-BRA fold 5"]["lesion_free_regions"] = {
        "images": 2, "baseline": {"accuracy": 0.5, "normal_recall": 0.5}, "refined": {"accuracy": 1.0, "normal_recall": 1.0},
        "dice": None, "normal_outlined": 0.5, "scope_accepted": 1.0}
    t = shift_table(s, "BUS-BRA fold 5")  # the regions row brings normal tissue to a set without normal frames
    row = t[t["variation"] == "lesion_free_regions"].iloc[0]
    assert row["refined normal recall"] == 1.0 and row["normal frames outlined"] == 0.5 and row["strength"] == "—"
