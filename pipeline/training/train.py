"""Training: ``python -m pipeline train seg`` and ``python -m pipeline train cls --input raw|refined``.

Seeds fixed; the config is saved beside the model; progress per epoch; a checkpoint every epoch
(``models/checkpoints/<name>/last.keras`` + ``state.json``) so ``--resume`` continues where a run
stopped; early stopping on the validation split; the best epoch is exported to ``models/``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

import pipeline
from pipeline import preprocess
from pipeline.config import BUSBRA_TRAINING, CLASS_NAMES, ModelConfig, config_path, model_path
from pipeline.data.items import Item, load_items
from pipeline.inference.bundle import record_model
from pipeline.paths import MODELS_DIR, SPLIT_CSV
from pipeline.training import augment, regions


def seed_everything(seed: int) -> None:
    """Fix Python, NumPy and backend seeds."""
    import keras

    keras.utils.set_random_seed(seed)


def _batches_class():
    import keras

    class Batches(keras.utils.PyDataset):
        """Batches built on the fly from in-memory items, augmented for training."""

        def __init__(self, items, make, batch_size, train, seed):
            super().__init__()
            self.items, self.make, self.batch_size, self.train = items, make, batch_size, train
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(items))
            if train:
                self.rng.shuffle(self.order)

        def __len__(self):
            return math.ceil(len(self.items) / self.batch_size)

        def __getitem__(self, i):
            idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
            xs, ys = zip(*(self.make(self.items[j], self.rng if self.train else None) for j in idx))
            if isinstance(xs[0], tuple):  # several inputs (the two-branch network)
                return tuple(np.stack(part) for part in zip(*xs)), np.stack(ys)
            return np.stack(xs), np.stack(ys)

        def on_epoch_end(self):
            if self.train:
                self.rng.shuffle(self.order)

    return Batches


def seg_example(item: Item, rng: np.random.Generator | None, display: float = 0.0, marks: float = 0.0,
                band: float = 0.0):
    """(input, target) for the UNet; augmented when ``rng`` is given (a display variation with probability
    ``display``, random caliper marks and text with probability ``marks``, an erasing seam with probability
    ``band``)."""
    size = preprocess.SEG_SIZE
    gray = item.gray if item.gray_small is None else item.gray_small
    mask = item.mask if item.mask_small is None else item.mask_small
    if rng is not None:
        gray = regions.band_swap(gray, mask, rng, band)
        gray, mask = augment.display_variation(gray, mask, rng, display)
        gray = augment.random_marks(gray, rng, marks, scale=max(item.gray.shape) / max(gray.shape))
        gray, mask = augment.geometric(gray, mask, rng)
        gray = augment.photometric(gray, rng)
    return preprocess.seg_input(gray, size), preprocess.seg_target(mask, size)


def cls_example(item: Item, rng: np.random.Generator | None, refined: bool, size: int = preprocess.CLS_SIZE,
                display: float = 0.0, zoom: float = 0.0, marks: float = 0.0, band: float = 0.0):
    """(input, one-hot) for a classifier. For ``refined``, the crop follows the item's out-of-fold predicted mask
    in training when it has one (``Item.crop_mask``, jittered half the time), else the ground-truth mask, jittered
    (and sometimes dropped, or replaced by a random box on normal images), so the network learns to cope with the
    UNet's errors it will meet at inference. In training, a display variation (probability ``display``) is applied
    to the whole frame before the crop, and (probability ``zoom``) the frame is first cut to a random part of it
    that holds the lesion (``augment.zoom_crop``), and (probability ``marks``) caliper marks and text are drawn at
    random places (``augment.random_marks``), and (probability ``band``) the seam of an erased lesion is made away
    from the lesion (``regions.band_swap``)."""
    gray, mask = item.gray, item.mask
    if rng is not None:
        gray = regions.band_swap(gray, item.mask, rng, band)
    if refined:
        if rng is not None and item.crop_mask is not None:  # an out-of-fold predicted mask: the crop seen in use
            mask = item.crop_mask
            if mask.any() and rng.random() < 0.5:
                mask = augment.jitter_mask(mask, rng)
        elif rng is not None:
            if mask.any():
                mask = np.zeros_like(mask) if rng.random() < 0.1 else augment.jitter_mask(mask, rng)
            elif rng.random() < 0.15:
                h, w = mask.shape
                bh, bw = int(h * rng.uniform(0.1, 0.3)), int(w * rng.uniform(0.1, 0.3))
                y, x = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
                mask = mask.copy()
                mask[y:y + bh, x:x + bw] = 1
    if rng is not None:
        gray, mask = augment.zoom_crop(gray, mask, rng, zoom)
        gray, mask = augment.display_variation(gray, mask, rng, display)
        gray = augment.random_marks(gray, rng, marks)
    if refined:
        gray = preprocess.crop_to_lesion(gray, mask)
    if rng is not None:
        gray, _ = augment.geometric(gray, None, rng)
        gray = augment.photometric(gray, rng)
    y = np.zeros(len(CLASS_NAMES), np.float32)
    y[item.label] = 1.0
    return preprocess.cls_input(gray, size), y


def drop_border(item: Item) -> None:
    """Crop an item's image and masks to its frame without uniform black borders (``preprocess.content_box``), as
    the Predictor does with every image, so the networks train on what they are shown in use."""
    box = preprocess.content_box(item.gray)
    if box == (0, 0, item.gray.shape[1], item.gray.shape[0]):
        return
    item.gray, item.mask = (np.ascontiguousarray(preprocess.crop_to_box(a, box)) for a in (item.gray, item.mask))
    if item.crop_mask is not None:
        item.crop_mask = np.ascontiguousarray(preprocess.crop_to_box(item.crop_mask, box))


def _use_predicted_masks(items: list[Item], models_dir: Path) -> None:
    """Give validation items the masks the Predictor predicts (same flip averaging and threshold as in use), so
    the refined classifier's epochs are chosen on the input it meets in the app (ground-truth crops would
    give "normal" away by the whole frame alone)."""
    from pipeline.inference.predictor import Predictor

    seg_file = model_path("seg", models_dir)
    if not seg_file.is_file():
        print(f"warning: {seg_file} not found: validating the refined classifier on ground-truth crops", flush=True)
        return
    masks = Predictor(models_dir, models=("seg",)).segment_batch([it.gray for it in items])
    for it, mask in zip(items, masks):
        it.mask = mask
    print(f"validation crops follow the masks predicted by {seg_file.name} through the Predictor", flush=True)


def initialisation_of(model_file: str | Path) -> str:
    """The ``initialisation`` recorded in a saved model's config, if any."""
    cfg = Path(model_file).with_suffix(".json")
    return json.loads(cfg.read_text()).get("initialisation", "unknown") if cfg.is_file() else "unknown"


def export_model(checkpoint: str | Path, out: str | Path, layer: str | None = None) -> Path:
    """Copy a checkpoint (or its nested model ``layer``) to ``out`` without its optimizer state."""
    import keras

    model = keras.models.load_model(checkpoint, compile=False)
    (model.get_layer(layer) if layer else model).save(out)
    return Path(out)


def class_weights(items: list[Item], power: float = 1.0) -> dict[int, float]:
    """Class weights (n / (k * count)) ** power: 1 is fully balanced, 0.5 the square root (gentler when one class
    is rare, e.g. BUSI's 93 normal training images beside BUS-BRA's 1,100 lesions)."""
    counts = np.bincount([it.label for it in items], minlength=len(CLASS_NAMES))
    return {i: float((len(items) / (len(CLASS_NAMES) * c)) ** power) for i, c in enumerate(counts) if c}


def prior_kept_weights(real: list[Item], extra: list[Item], power: float = 1.0) -> dict[int, float]:
    """``class_weights`` of the ``real`` training items, with each class's weight scaled down by how many more items
    of it the ``extra`` ones make, so each class carries the same total weight as without them: the extra examples
    widen what a class looks like without moving the class prior the network learns."""
    weights = class_weights(real, power)
    counts = np.bincount([it.label for it in real], minlength=len(CLASS_NAMES))
    added = np.bincount([it.label for it in extra], minlength=len(CLASS_NAMES))
    return {i: w * float(counts[i] / (counts[i] + added[i])) for i, w in weights.items()}


def _seg_score_callback(val_items: list[Item], fp_weight: float = 0.5):
    """A callback adding ``val_seg_score`` = mean lesion Dice - ``fp_weight`` x normal-image false-positive rate
    (Dice per lesion image at the network's 0.5 threshold; a normal image is a false positive when any pixel is
    predicted), plus both parts, to the epoch logs. Selecting on it avoids epochs that outline lesions in normal
    images and is steadier than the batch-mean Dice, which empty masks and small lesions dominate."""
    import keras

    from pipeline import metrics

    x = np.stack([preprocess.seg_input(it.gray_small, preprocess.SEG_SIZE) for it in val_items])
    targets = [it.mask_small.astype(bool) for it in val_items]

    class SegScore(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            probs = self.model.predict(x, batch_size=16, verbose=0)[..., 0]
            dice, fp = metrics.lesion_dice_and_normal_fp(probs >= 0.5, targets)
            logs.update(val_lesion_dice=dice, val_normal_fp=fp, val_seg_score=dice - fp_weight * fp)

    return SegScore()


def _resized(model, backbone: str, size: int):
    """Classifier ``model`` rebuilt for ``size`` x ``size`` inputs with the same weights and frozen layers."""
    from pipeline.nets import networks

    new, _ = networks.build_classifier(backbone, size, weights=None)
    new.set_weights(model.get_weights())
    for a, b in zip(new.layers, model.layers, strict=True):
        a.trainable = b.trainable
    return new


def load_initial(path: str | Path):
    """A saved model to start from (warm start), without its optimizer state."""
    import keras

    from pipeline.nets.losses import CUSTOM_OBJECTS

    return keras.models.load_model(path, compile=False, custom_objects=CUSTOM_OBJECTS)


@dataclass(frozen=True)
class RefinedRecipe:
    """Another refined-classifier architecture (an experiment, e.g. ``pipeline.experiments.two_branch.RECIPE``)."""

    example: Callable  # (item, rng) -> (inputs, one-hot)
    build: Callable  # (models_dir, backbone, weights, init) -> (training model, initialisation text)
    configure: Callable  # (cfg, models_dir, training model) -> None: backbone and notes of the config
    export_layer: str | None = None  # the nested inference model to save (None: the whole model)


def train(name: str, root: str | Path, *, epochs: int = 30, batch_size: int = 16, learning_rate: float | None = None,
          backbone: str = "lite2", weights: str | None = "imagenet", patience: int = 8, seed: int = 1234,
          resume: bool = False, limit: int | None = None, models_dir: str | Path = MODELS_DIR,
          steps_per_epoch: int | None = None, split_csv: str | Path = SPLIT_CSV, arch: str = "lite2-unet",
          busbra_root: str | Path | None = None, init: str | Path | None = None,
          class_weight_power: float = 1.0, normal_repeat: int = 1, refined_arch: str | RefinedRecipe = "crop",
          image_size: int | None = None, select_best: bool = True,
          busbra_folds: dict[str, tuple[int, ...]] | None = None, crop_masks: str | Path | None = None,
          run_eagerly: bool = False, display_aug: float = 0.0, lesion_free: int = 0,
          zoom: float = 0.0, marks_aug: float = 0.0, lesion_erased: bool = False,
          band_swap: float = 0.0, keep_class_prior: bool = False, erased_source: str = "all") -> ModelConfig:
    """Train model ``name`` ("seg", "raw" or "refined") and export its best epoch to ``models_dir``.

    ``arch`` (segmentation only): "lite2-unet" (ImageNet Lite2 encoder) or "unet16" (from scratch).
    ``busbra_root``: also train on BUS-BRA's training folds and validate on its validation fold (patients never
    cross subsets). ``init``: start from this saved model's weights instead of ImageNet (warm start).
    ``normal_repeat``: show each normal (empty-mask) training image this many times per epoch; BUS-BRA has no
    normal images, so without it a UNet trained on both learns that every frame holds a lesion.
    ``refined_arch`` ("refined" only): "crop" (a classifier on the lesion crop, fused with the baseline by a
    weighted average) or an experiment's ``RefinedRecipe`` (``pipeline.experiments.two_branch.RECIPE``: the
    shipped baseline in ``models_dir``, frozen, as global branch; ``init``, if given, starts the local branch).
    ``image_size`` (classifiers): input side in pixels (default ``preprocess.CLS_SIZE``); a warm start from a model
    of another size keeps its weights (the convolutions do not depend on the input size).
    ``select_best``: export the best validation epoch (default), else the last one (when the validation images
    must not choose anything, as in cross-validation).
    ``busbra_folds``: {"train": folds, "val": folds} of BUS-BRA's authors' folds instead of folds 1-3 / 4 (the
    out-of-fold UNets). ``crop_masks`` ("refined" with the crop architecture): a file of out-of-fold predicted
    masks (``pipeline.training.oof_masks``); training crops follow them instead of jittered ground truth.
    ``display_aug``: probability that a training example is shown under one of the scanner-shift benchmark's
    display variations (``augment.display_variation``); ``lesion_free``: add up to this many regions of each
    training lesion frame, well away from the lesion, as normal-tissue examples (``regions.lesion_free_items``; both
    datasets, train folds only). ``zoom`` (classifiers): probability that a training frame is first cut to a random
    part of it holding the lesion (``augment.zoom_crop``), so that magnification is not a sign of the added regions.
    ``lesion_erased``: add each training lesion frame with its lesion erased as a whole-frame normal-tissue example
    (``regions.lesion_erased_items``; ``erased_source``: the lesion frames of both datasets, or "busi" / "busbra"
    only); ``band_swap``: probability that a training example gets the seam that erasing leaves, away from its
    lesion (``regions.band_swap``), whatever its class. ``keep_class_prior`` (classifiers): the added normal-tissue
    examples share the normal class's weight instead of adding to it (``prior_kept_weights``).
    ``marks_aug``: probability that a training example gets caliper marks and text at random places
    (``augment.random_marks``), so that marks stop being a sign of a lesion.
    ``run_eagerly``: train step by step without building the training graph (the same arithmetic; building the
    graph costs ~20 s, worth it for an epoch, not for the one-step smoke trainings of the tests).
    """
    import keras

    from pipeline.nets import losses, networks

    seed_everything(seed)
    models_dir, recipe = Path(models_dir), None
    ckpt_dir = models_dir / "checkpoints" / name
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    train_items = load_items(root, "train", split_csv, limit)
    val_items = load_items(root, "val", split_csv, limit)
    if busbra_root is not None:
        from pipeline.data.items import load_busbra_items

        folds = busbra_folds or {}
        train_items += load_busbra_items(busbra_root, "train", limit, folds.get("train"))
        val_items += load_busbra_items(busbra_root, "val", limit, folds.get("val"))
    if crop_masks is not None:
        if name != "refined" or refined_arch != "crop":
            raise ValueError("crop_masks is for the refined crop classifier only")
        from pipeline.training.crop_masks import attach_crop_masks

        attach_crop_masks(train_items, crop_masks)
    for it in train_items + val_items:
        drop_border(it)
    extra_normals = regions.lesion_free_items(train_items, lesion_free, seed) if lesion_free else []
    erased = regions.lesion_erased_items(train_items, seed, erased_source) if lesion_erased else []
    if normal_repeat > 1:
        train_items += [it for it in train_items if not it.mask.any()] * (normal_repeat - 1)
    real_items = list(train_items)
    train_items += extra_normals + erased
    if extra_normals:
        print(f"{name}: {len(extra_normals)} lesion-free regions of lesion frames added as normal tissue", flush=True)
    if erased:
        print(f"{name}: {len(erased)} lesion frames with the lesion erased added as normal tissue", flush=True)
    print(f"{name}: {len(train_items)} training and {len(val_items)} validation images"
          + (" (BUSI + BUS-BRA)" if busbra_root is not None else ""), flush=True)

    if name == "seg":
        size = preprocess.SEG_SIZE
        for it in train_items + val_items:  # augment at network resolution: 5x cheaper
            it.gray_small = cv2.resize(it.gray, (size, size), interpolation=cv2.INTER_AREA)
            it.mask_small = (preprocess.seg_target(it.mask, size)[:, :, 0]).astype(np.uint8)
        make = partial(seg_example, display=display_aug, marks=marks_aug, band=band_swap)
        lr = learning_rate or 1e-3
        if arch == "unet16":
            def build():
                return networks.build_unet(size), "random (Glorot uniform)"
        elif arch == "lite2-unet":
            build = partial(networks.build_lite2_unet, size, weights)
        else:
            raise ValueError(f"unknown segmentation architecture {arch!r}")
        compile_kw = dict(loss=losses.bce_dice_loss, metrics=[losses.dice_metric])
        monitor, mode, weights_arg = "val_seg_score", "max", None
        cfg = ModelConfig(name="seg", image_size=size, backbone=arch, threshold=preprocess.MASK_THRESHOLD)
    else:
        refined = name == "refined"
        if refined:
            _use_predicted_masks(val_items, models_dir)
        size = image_size or preprocess.CLS_SIZE
        make = partial(cls_example, refined=refined, size=size, display=display_aug, zoom=zoom, marks=marks_aug,
                       band=band_swap)
        lr = learning_rate or 3e-4
        build = partial(networks.build_classifier, backbone, size, weights)
        if refined and isinstance(refined_arch, RefinedRecipe):
            recipe = refined_arch
            make, build, init = recipe.example, partial(recipe.build, models_dir, backbone, weights, init), None
        elif refined_arch != "crop":
            raise ValueError(f"unknown refined architecture {refined_arch!r}; choose 'crop' or an experiment's recipe")
        compile_kw = dict(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.05),
                          metrics=["accuracy", keras.metrics.F1Score(average="macro", name="macro_f1")])
        monitor, mode = "val_macro_f1", "max"
        weights_arg = (prior_kept_weights(real_items, extra_normals + erased, class_weight_power) if keep_class_prior
                       else class_weights(train_items, class_weight_power))
        cfg = ModelConfig(name=name, image_size=size, backbone=backbone)
    cfg.seed, cfg.epochs, cfg.batch_size, cfg.learning_rate = seed, epochs, batch_size, lr
    if display_aug or extra_normals or zoom or marks_aug or erased or band_swap:
        cfg.notes["augmentation_for_other_scanners"] = {"display_variation_probability": display_aug,
                                                        "lesion_free_normal_regions": len(extra_normals),
                                                        **({"lesion_erased_normal_frames": len(erased),
                                                           "lesion_erased_source": erased_source} if erased else {}),
                                                        **({"band_swap_probability": band_swap} if band_swap else {}),
                                                        **({"class_prior_kept": True} if keep_class_prior else {}),
                                                        **({"zoom_crop_probability": zoom} if zoom else {}),
                                                        **({"random_marks_probability": marks_aug} if marks_aug else {})}

    state_file = ckpt_dir / "state.json"
    initial_epoch, best = 0, None
    if resume and (ckpt_dir / "last.keras").is_file() and state_file.is_file():
        state = json.loads(state_file.read_text())
        model = keras.models.load_model(ckpt_dir / "last.keras")
        initial_epoch, best = state["epoch"], state.get("best")
        cfg.initialisation = state.get("initialisation", "unknown")
        print(f"resuming {name} after epoch {initial_epoch}", flush=True)
    else:
        if init is not None:
            model = load_initial(init)
            if name != "seg" and tuple(model.input_shape[1:3]) != (cfg.image_size, cfg.image_size):
                model = _resized(model, backbone, cfg.image_size)
            cfg.initialisation = f"warm start from {Path(init).name} (itself: {initialisation_of(init)})"
        else:
            model, cfg.initialisation = build()
        model.compile(optimizer=keras.optimizers.AdamW(lr, weight_decay=1e-4), **compile_kw)
    model.run_eagerly = run_eagerly
    if recipe is not None:
        recipe.configure(cfg, models_dir, model)

    def schedule(epoch, _lr):
        warm = 1 if name != "seg" else 0
        if epoch < warm:
            return lr * 0.3
        return float(lr * 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / epochs)) + lr * 0.01)

    Batches = _batches_class()
    train_data = Batches(train_items, make, batch_size, True, seed)
    val_data = Batches(val_items, make, batch_size, False, seed)

    class Checkpoint(keras.callbacks.Callback):
        """Save last.keras + state.json every epoch and best.keras when the monitored value improves."""

        def __init__(self, best_value):
            super().__init__()
            self.best = best_value

        def on_epoch_end(self, epoch, logs=None):
            value = float(logs[monitor])
            self.model.save(ckpt_dir / "last.keras")
            improved = self.best is None or (value > self.best["value"] if mode == "max" else value < self.best["value"])
            if improved:
                self.best = {"value": value, "epoch": epoch + 1}
                self.model.save(ckpt_dir / "best.keras")
            state_file.write_text(json.dumps({"epoch": epoch + 1, "best": self.best, "initialisation": cfg.initialisation}))
            print(f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k}={v:.4f}" for k, v in logs.items())
                  + (" (best)" if improved else ""), flush=True)

    ckpt = Checkpoint(best)
    callbacks = [keras.callbacks.LearningRateScheduler(schedule)]
    if name == "seg":  # adds val_seg_score to the logs before the checkpoint reads it
        callbacks.append(_seg_score_callback(val_items))
    callbacks += [
        ckpt,
        keras.callbacks.CSVLogger(str(ckpt_dir / "history.csv"), append=resume),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, verbose=1),
    ]
    model.fit(train_data, validation_data=val_data, epochs=epochs, initial_epoch=initial_epoch,
              class_weight=weights_arg, callbacks=callbacks, verbose=2, steps_per_epoch=steps_per_epoch)

    best_state = json.loads(state_file.read_text())
    cfg.trained_epochs = best_state["epoch"]
    cfg.best_epoch = (best_state.get("best") or {}).get("epoch", best_state["epoch"]) if select_best else cfg.trained_epochs
    cfg.notes = {**cfg.notes, "monitor": monitor, "best_value": (best_state.get("best") or {}).get("value"),
                 "train_images": len(train_items), "val_images": len(val_items),
                 "class_weights": weights_arg,
                 "datasets": BUSBRA_TRAINING if busbra_root is not None else "BUSI train",
                 "normal_repeat": normal_repeat, "epoch_kept": "best on validation" if select_best else "last"}
    if busbra_folds:
        cfg.notes["busbra_folds"] = {k: list(v) for k, v in busbra_folds.items()}
    if crop_masks is not None:
        cfg.notes["training_crops"] = f"out-of-fold predicted masks ({Path(crop_masks).name})"
    out = export_model(ckpt_dir / ("best.keras" if select_best else "last.keras"), model_path(name, models_dir),
                       layer=recipe.export_layer if recipe is not None else None)
    cfg.save(config_path(name, models_dir))
    record_model(models_dir, name, pipeline.__version__)
    kept = f"best epoch {cfg.best_epoch}, {monitor}={cfg.notes['best_value']}" if select_best else \
        f"last epoch {cfg.trained_epochs}; the best {monitor} was {cfg.notes['best_value']}"
    print(f"saved {out} ({kept})", flush=True)
    return cfg
