"""A fast training smoke test: one step on a few real images, checkpoint, resume, export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.config import ModelConfig
from pipeline.data.items import load_items
from pipeline.training.crop_masks import save_masks
from pipeline.training.train import train


def test_one_step_seg_and_cls(busi_dir, tmp_path):
    cfg = train("seg", busi_dir, epochs=1, batch_size=2, steps_per_epoch=1, limit=4, models_dir=tmp_path,
                arch="unet16", weights=None)
    assert (tmp_path / "unet.keras").is_file()
    assert ModelConfig.load(tmp_path / "unet.json").backbone == "unet16" == cfg.backbone
    state = json.loads((tmp_path / "checkpoints" / "seg" / "state.json").read_text())
    assert state["epoch"] == 1
    resumed = train("seg", busi_dir, epochs=2, batch_size=2, steps_per_epoch=1, limit=4, models_dir=tmp_path,
                    arch="unet16", weights=None, resume=True)
    assert resumed.trained_epochs == 2
    # training crops from out-of-fold masks (here: a box in each training image)
    boxes = {}
    for it in load_items(busi_dir, "train", limit=4):
        boxes[it.image] = np.zeros_like(it.mask)
        boxes[it.image][: it.mask.shape[0] // 2, : it.mask.shape[1] // 2] = 1
    masks = save_masks(tmp_path / "oof.npz", boxes)
    cls = train("refined", busi_dir, epochs=1, batch_size=2, steps_per_epoch=1, limit=4, models_dir=tmp_path,
                backbone="lite2", weights=None, crop_masks=masks)
    assert (tmp_path / "classifier_refined.keras").is_file() and cls.initialisation == "random"
    assert cls.notes["training_crops"] == "out-of-fold predicted masks (oof.npz)"
    with pytest.raises(ValueError, match="refined crop classifier only"):
        train("raw", busi_dir, epochs=1, batch_size=2, steps_per_epoch=1, limit=4, models_dir=tmp_path,
              weights=None, crop_masks=masks)


def test_warm_start_on_busi_and_busbra(busi_dir, busbra_dir, tmp_path):
    """--with-busbra adds BUS-BRA's training folds and its validation fold; --init starts from a saved model;
    the UNet's checkpoint is chosen on lesion Dice minus the normal-image false-positive rate."""
    first = tmp_path / "first"
    train("seg", busi_dir, epochs=1, batch_size=2, steps_per_epoch=1, limit=4, models_dir=first,
          arch="unet16", weights=None)
    cfg = train("seg", busi_dir, epochs=1, batch_size=2, steps_per_epoch=1, limit=4, models_dir=tmp_path,
                busbra_root=busbra_dir, init=first / "unet.keras", normal_repeat=3)
    assert cfg.notes["datasets"] == "BUSI train + BUS-BRA folds 1-3" and cfg.notes["normal_repeat"] == 3
    # one BUSI image per class and two BUS-BRA images per class (it has no normal class) per subset;
    # the one normal training image is shown three times
    assert cfg.notes["train_images"] == 3 + 4 + 2 and cfg.notes["val_images"] == 3 + 4
    assert cfg.notes["monitor"] == "val_seg_score"
    assert cfg.initialisation.startswith("warm start from unet.keras (itself: random")
    history = (tmp_path / "checkpoints" / "seg" / "history.csv").read_text().splitlines()[0]
    assert {"val_lesion_dice", "val_normal_fp", "val_seg_score"} <= set(history.split(","))


def test_class_weights_power():
    from pipeline.data.items import Item
    from pipeline.training.train import class_weights

    items = [Item(str(i), None, None, label) for i, label in enumerate([0] * 6 + [1] * 3 + [2] * 1)]
    full = class_weights(items)
    assert full == {0: 10 / 18, 1: 10 / 9, 2: 10 / 3}
    half = class_weights(items, 0.5)
    assert all(abs(half[k] - full[k] ** 0.5) < 1e-12 for k in full)
    assert class_weights(items, 0.0) == {0: 1.0, 1: 1.0, 2: 1.0}


def test_a_warm_start_at_another_input_size_keeps_weights_and_frozen_layers():
    import numpy as np

    from pipeline.nets import networks
    from pipeline.training.train import _resized

    small, _ = networks.build_classifier("lite2", 64, weights=None)
    networks.freeze_batchnorm(small)
    big = _resized(small, "lite2", 96)
    assert big.input_shape == (None, 96, 96, 3) and big.output_shape == (None, 3)
    assert all(np.array_equal(a, b) for a, b in zip(small.get_weights(), big.get_weights(), strict=True))
    assert [layer.trainable for layer in big.layers] == [layer.trainable for layer in small.layers]
    assert any(not layer.trainable for layer in big.layers)
