"""Training smoke tests: one step on a few real images (the run's tiny bundle), checkpoint, resume, export."""

from __future__ import annotations

import json

import pytest
from trained import TINY, copy_bundle

from pipeline.config import ModelConfig
from pipeline.inference.bundle import loaded_files, verify
from pipeline.training.train import train


@pytest.mark.full
def test_one_step_seg_and_cls(tiny_bundle, busi_dir, tmp_path):
    assert ModelConfig.load(tiny_bundle / "unet.json").backbone == "unet16"
    state = json.loads((tiny_bundle / "checkpoints" / "seg" / "state.json").read_text())
    assert state["epoch"] == 1
    resumed = train("seg", busi_dir, models_dir=copy_bundle(tiny_bundle, tmp_path / "b"), arch="unet16", resume=True,
                    **{**TINY, "epochs": 2})
    assert resumed.trained_epochs == 2
    # the refined crop classifier was trained on crops of out-of-fold masks (here: a box in each training image)
    cls = ModelConfig.load(tiny_bundle / "classifier_refined.json")
    assert (tiny_bundle / "classifier_refined.keras").is_file() and cls.initialisation == "random"
    assert cls.notes["training_crops"] == "out-of-fold predicted masks (oof.npz)"
    with pytest.raises(ValueError, match="refined crop classifier only"):
        train("raw", busi_dir, models_dir=tmp_path, crop_masks=tiny_bundle / "oof.npz", **TINY)
    assert verify(tiny_bundle, loaded_files(tiny_bundle)) == []  # training recorded every file in the manifest


@pytest.mark.full
def test_warm_start_on_busi_and_busbra(tiny_bundle, busi_dir, busbra_dir, tmp_path):
    """--with-busbra adds BUS-BRA's training folds and its validation fold; --init starts from a saved model;
    the UNet's checkpoint is chosen on lesion Dice minus the normal-image false-positive rate."""
    cfg = train("seg", busi_dir, models_dir=tmp_path, busbra_root=busbra_dir, init=tiny_bundle / "unet.keras",
                normal_repeat=3, **TINY)
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


def test_added_examples_share_their_class_weight_so_the_class_prior_stays():
    from pipeline.data.items import Item
    from pipeline.training.train import class_weights, prior_kept_weights

    real = [Item(str(i), None, None, label) for i, label in enumerate([0] * 6 + [1] * 3 + [2] * 1)]
    extra = [Item(f"x{i}", None, None, 2) for i in range(4)]
    kept, before = prior_kept_weights(real, extra, 0.5), class_weights(real, 0.5)
    counts_after = {0: 6, 1: 3, 2: 5}
    for c, n_before in {0: 6, 1: 3, 2: 1}.items():  # each class's total weight is what it was without the extras
        assert abs(kept[c] * counts_after[c] - before[c] * n_before) < 1e-12
    assert kept[2] < before[2] and kept[0] == before[0]


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
