"""Out-of-fold masks for the refined classifier's training crops: the file format, the folds (no training image is
segmented by a UNet that trained on it), the fold settings chosen by the shipped rules, and the crops that follow them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline import preprocess
from pipeline.config import ModelConfig, config_path, model_path
from pipeline.data.items import Item, load_busbra_items
from pipeline.errors import DatasetError
from pipeline.inference.decisions import PRESENCE_THRESHOLDS, THRESHOLDS
from pipeline.paths import MODELS_DIR
from pipeline.training import augment, crop_masks, oof_masks
from pipeline.training import train as train_module


def _masks(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for i, (h, w) in enumerate([(7, 13), (64, 80), (1, 1), (33, 17)]):
        out[f"benign/benign ({i}).png"] = (rng.random((h, w)) < 0.3).astype(np.uint8)
    out["bus_0001-l"] = np.zeros((20, 30), np.uint8)  # an empty mask (the presence gate said no lesion)
    return out


def test_masks_round_trip_exactly(tmp_path):
    masks = _masks(np.random.default_rng(0))
    back = crop_masks.load_masks(crop_masks.save_masks(tmp_path / "m.npz", masks))
    assert sorted(back) == sorted(masks)
    for key, mask in masks.items():
        assert back[key].shape == mask.shape and back[key].dtype == np.uint8
        assert np.array_equal(back[key], mask)


def test_a_missing_file_or_image_or_a_wrong_size_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="train oof-masks"):
        crop_masks.load_masks(tmp_path / "absent.npz")
    path = crop_masks.save_masks(tmp_path / "m.npz", {"a.png": np.ones((4, 5), np.uint8)})
    item = Item("b.png", np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.uint8), 0)
    with pytest.raises(DatasetError, match="no out-of-fold mask"):
        crop_masks.attach_crop_masks([item], path)
    item = Item("a.png", np.zeros((5, 5), np.uint8), np.zeros((5, 5), np.uint8), 0)
    with pytest.raises(DatasetError, match=r"\(4, 5\)"):
        crop_masks.attach_crop_masks([item], path)
    item = Item("a.png", np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.uint8), 0)
    crop_masks.attach_crop_masks([item], path)
    assert item.crop_mask.sum() == 20


def test_training_crops_follow_the_out_of_fold_mask(monkeypatch):
    """With a crop mask the training crop is cut around it, not around the ground truth (augmentation switched
    off here so the crop can be compared exactly)."""
    monkeypatch.setattr(augment, "geometric", lambda g, m, rng: (g, m))
    monkeypatch.setattr(augment, "photometric", lambda g, rng: g)
    monkeypatch.setattr(augment, "jitter_mask", lambda m, rng: m)
    gray = np.tile(np.arange(200, dtype=np.uint8), (200, 1))
    truth = np.zeros((200, 200), np.uint8)
    truth[10:40, 10:40] = 1
    predicted = np.zeros((200, 200), np.uint8)
    predicted[150:190, 150:190] = 1
    item = Item("x.png", gray, truth, 0, crop_mask=predicted)
    x, y = train_module.cls_example(item, np.random.default_rng(0), refined=True)
    assert np.allclose(x, preprocess.cls_input(preprocess.crop_to_lesion(gray, predicted), preprocess.CLS_SIZE))
    assert not np.allclose(x, preprocess.cls_input(preprocess.crop_to_lesion(gray, truth), preprocess.CLS_SIZE))
    assert y.tolist() == [1.0, 0.0, 0.0]
    # validation (no rng) ignores the crop mask: its masks are the Predictor's already
    x_val, _ = train_module.cls_example(item, None, refined=True)
    assert np.allclose(x_val, preprocess.cls_input(preprocess.crop_to_lesion(gray, truth), preprocess.CLS_SIZE))


def test_fold_settings_follow_the_shipped_rules():
    """Best lesion Dice for the threshold; then the lowest presence gate with at most 10% of normals outlined."""
    items, maps = [], []
    for i in range(4):  # lesion images: 0.8 inside the lesion (one pixel 0.995), 0.45 in a ring around it
        truth = np.zeros((40, 40), np.uint8)
        truth[10:30, 10:30] = 1
        prob = np.where(truth > 0, 0.8, 0.05)
        prob[6:34, 6:10] = 0.45
        prob[20, 20] = 0.995
        items.append(Item(f"l{i}", np.zeros((40, 40), np.uint8), truth, 0))
        maps.append(prob)
    for i in range(5):  # normal images: one with a confident false lesion (0.92), the rest faint
        prob = np.full((40, 40), 0.1)
        if i == 0:
            prob[5:10, 5:10] = 0.92
        items.append(Item(f"n{i}", np.zeros((40, 40), np.uint8), np.zeros((40, 40), np.uint8), 2))
        maps.append(prob)
    chosen = oof_masks.choose_settings(maps, items)
    assert chosen["threshold"] == 0.5  # 0.5-0.7 cut exactly the lesion; the tie goes to the value nearest 0.5
    assert chosen["presence_threshold"] == 0.95  # 1 of 5 normals outlined below it (20% > 10%)
    assert chosen["lesion_dice_and_normal_fp_by_presence_threshold"]["0.95"] == [1.0, 0.0]


def test_busbra_items_of_chosen_folds(busbra_dir):
    items = load_busbra_items(busbra_dir, "train", limit=4, folds=(2,))
    from pipeline.data import busbra

    index = busbra.read_index(busbra_dir).set_index("image")
    assert len(items) == 4 and {int(index.loc[it.image, "fold"]) for it in items} == {2}


@pytest.mark.full  # a Predictor per fold over real BUSI + BUS-BRA images
def test_each_training_image_is_segmented_by_a_unet_that_never_saw_it(busi_dir, busbra_dir, tmp_path, monkeypatch):
    """The fold UNets' training is replaced by a copy of the shipped UNet (training itself is tested in
    test_training); what each would have trained on is recorded and checked against what it segments."""
    seen: list[dict] = []

    def fake_train(name, root, *, split_csv, models_dir, busbra_folds, **kw):
        assert name == "seg" and kw["select_best"] is False and kw["normal_repeat"] == 8 and kw["resume"] is True
        split = pd.read_csv(split_csv)
        seen.append({"busi_train": set(split.loc[split["subset"] == "train", "image"]),
                     "busi_held": set(split.loc[split["subset"] == "val", "image"]),
                     "busbra_train": set(busbra_folds["train"]), "busbra_held": set(busbra_folds["val"])})
        models_dir.mkdir(parents=True, exist_ok=True)
        for f in (model_path("seg", MODELS_DIR), config_path("seg", MODELS_DIR), MODELS_DIR / "manifest.json"):
            shutil.copy(f, models_dir / f.name)

    monkeypatch.setattr(train_module, "train", fake_train)
    out, summary = tmp_path / "oof.npz", tmp_path / "oof.json"
    state = oof_masks.run(busi_dir, busbra_dir, tmp_path / "work", limit=3, out=out, summary=summary)
    assert len(seen) == 3
    for fold in seen:
        assert not fold["busi_train"] & fold["busi_held"] and not fold["busbra_train"] & fold["busbra_held"]
    assert set.union(*(f["busbra_held"] for f in seen)) == {1, 2, 3}  # BUS-BRA's training folds, one each
    busi_held = [f["busi_held"] for f in seen]
    assert not (busi_held[0] & busi_held[1]) and not (busi_held[0] & busi_held[2]) and not (busi_held[1] & busi_held[2])
    masks = crop_masks.load_masks(out)
    assert len(masks) == state["images"] == 3 * (3 + 2)  # per fold: 3 BUSI (one per class) + 2 BUS-BRA (limit 3)
    written = json.loads(summary.read_text())
    shipped = ModelConfig.load(config_path("seg", MODELS_DIR))
    for record in written["folds"].values():
        assert record["test_time"]["flip_tta"] == shipped.flip_tta
        assert record["test_time"]["threshold"] in THRESHOLDS
        assert record["test_time"]["presence_threshold"] in PRESENCE_THRESHOLDS
        assert 0.0 <= record["busbra"]["lesion_dice"] <= 1.0
    # the BUS-BRA masks of the shipped UNet are not empty for these biopsy-proven lesions
    assert any(m.any() for key, m in masks.items() if key.startswith("bus_"))
    # a rerun skips the folds already done; --fold redoes one fold and keeps the others
    seen.clear()
    oof_masks.run(busi_dir, busbra_dir, tmp_path / "work", limit=3, out=out, summary=summary)
    assert seen == []
    again = oof_masks.run(busi_dir, busbra_dir, tmp_path / "work", limit=3, out=out, summary=summary, only=[1])
    assert len(seen) == 1 and seen[0]["busbra_held"] == {2}
    assert sorted(again["folds"]) == ["0", "1", "2"] and len(crop_masks.load_masks(out)) == 15
