"""``python -m pipeline train oof-masks``: out-of-fold predicted masks of the refined classifier's training images.

The crop classifier meets the UNet's predicted masks in use, and the shipped UNet has seen every training image,
so its masks of them are better than any it draws in use. Here each training image gets a mask from a UNet that
never saw it, so training crops come closer to the crops of use than jittered ground truth does:

- k = 3 folds of the training data: BUSI train by duplicate group (classes balanced, fixed seed) and
  BUS-BRA's training folds 1-3 as they are (by patient), fold j holding BUS-BRA fold j + 1;
- per fold, a UNet trained from ImageNet weights on the other folds (the shipped recipe's normal-image
  repetition, a fixed number of epochs, last epoch kept), then the held-out fold segmented through the
  Predictor (flip averaging as the shipped UNet), its mask threshold and presence gate chosen by the rules
  ``evaluate`` uses for the shipped UNet (``choose_settings``);
- masks written per fold (a rerun skips folds already done, a fold UNet interrupted between epochs resumes
  from its last one, and ``--fold N --epochs E`` gives one fold more epochs) and merged into one file, with
  each fold's Dice and normal-image false-positive rate in a JSON summary.

``python -m pipeline train cls --input refined --crop-masks FILE`` then trains on them.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from pipeline import metrics
from pipeline.config import ModelConfig, config_path
from pipeline.data.items import Item, load_busbra_items, load_items
from pipeline.data.split import read_split
from pipeline.errors import ModelLoadError
from pipeline.inference import decisions
from pipeline.paths import CACHE_DIR, LITE2_WEIGHTS, MODELS_DIR, SPLIT_CSV
from pipeline.training.crop_masks import load_masks, save_masks

DEFAULT_OUT = CACHE_DIR / "oof_masks.npz"
DEFAULT_SUMMARY = MODELS_DIR / "experiments" / "oof_masks.json"
SEED = 20261201
BUSBRA_TRAIN_FOLDS = (1, 2, 3)


def choose_settings(maps: list[np.ndarray], items: list[Item]) -> dict:
    """A fold UNet's mask threshold and presence gate, by the rules ``evaluate`` applies to the shipped UNet on
    validation (best mean lesion Dice; then the presence gate with at most 10% of normal images outlined), here on
    the fold's held-out training images: a UNet trained briefly is less confident than the shipped one, so the
    shipped gate (0.99) would empty most of its masks, and the crops would not look like those of use."""
    truths = [it.mask for it in items]
    dice = decisions.lesion_dice_by_threshold(maps, truths)
    _, threshold = decisions.choose_threshold({(False, t): d for t, d in dice.items()})
    presence, table = decisions.choose_presence(maps, truths, threshold)
    return {"threshold": threshold, "presence_threshold": presence,
            "lesion_dice_by_threshold": {str(t): v for t, v in dice.items()},
            "lesion_dice_and_normal_fp_by_presence_threshold": {str(c): list(v) for c, v in table.items()}}


def _score(items: list[Item], masks: list[np.ndarray]) -> dict:
    dice, fp = metrics.lesion_dice_and_normal_fp(masks, [it.mask for it in items])
    return {"images": len(items), "lesion_dice": dice, "normal_false_positive_rate": fp,
            "lesion_images_with_empty_mask": int(sum(1 for it, m in zip(items, masks) if it.mask.any() and not m.any()))}


def run(busi_root: str | Path, busbra_root: str | Path, work_dir: str | Path, *, k: int = 3, epochs: int = 1,
        normal_repeat: int = 8, out: str | Path | None = None, summary: str | Path | None = None,
        shipped_dir: str | Path = MODELS_DIR, split_csv: str | Path = SPLIT_CSV, only: list[int] | None = None,
        limit: int | None = None, steps: int | None = None) -> dict:
    """Train the fold UNets, write every training image's out-of-fold mask to ``out``; returns the summary.

    ``only``: redo these folds (their UNets continue from their last epoch up to ``epochs``; their masks are made
    again); the other folds are kept as they are. ``limit``/``steps``: smoke tests (random weights, few images).
    """
    from pipeline.inference.predictor import Predictor
    from pipeline.training.crossval import assign_folds, fold_split
    from pipeline.training.train import train

    if k != len(BUSBRA_TRAIN_FOLDS):
        raise ValueError(f"k must be {len(BUSBRA_TRAIN_FOLDS)}: one BUS-BRA training fold per out-of-fold fold")
    if not LITE2_WEIGHTS.is_file() and limit is None:
        raise ModelLoadError(f"the fold UNets train from ImageNet weights: {LITE2_WEIGHTS} not found "
                             "(python -m pipeline backbone convert-lite2)")
    work_dir = Path(work_dir)
    out = Path(out) if out else DEFAULT_OUT
    summary_path = Path(summary) if summary else DEFAULT_SUMMARY
    folds = assign_folds(read_split(split_csv), k, SEED, subsets=("train",))
    state = {"command": "python -m pipeline train oof-masks", "k": k, "seed": SEED,
             "normal_repeat": normal_repeat, "initialisation": "ImageNet (EfficientNet-Lite2)",
             "epoch_kept": "last", "data": "BUSI train (duplicate-grouped folds) + BUS-BRA folds 1-3 (one per fold)",
             "folds": {}}
    weights = "imagenet" if limit is None else None
    for fold in range(k):
        fold_dir = work_dir / f"fold{fold}"
        fold_file = fold_dir / "oof_masks.npz"
        fold_json = fold_dir / "oof_scores.json"
        held_busbra = (BUSBRA_TRAIN_FOLDS[fold],)
        if (only is not None and fold not in only) or (only is None and fold_file.is_file() and fold_json.is_file()):
            print(f"fold {fold}: already done, skipped", flush=True)
            record = json.loads(fold_json.read_text())
            record.setdefault("seg_epochs", ModelConfig.load(config_path("seg", fold_dir)).trained_epochs)
            state["folds"][str(fold)] = record
            continue
        csv = fold_split(folds, fold, fold_dir / "split.csv")
        train("seg", busi_root, epochs=epochs, split_csv=csv, models_dir=fold_dir, patience=10**6, resume=True,
              select_best=False, limit=limit, steps_per_epoch=steps, weights=weights, busbra_root=busbra_root,
              normal_repeat=normal_repeat,
              busbra_folds={"train": tuple(f for f in BUSBRA_TRAIN_FOLDS if f not in held_busbra), "val": held_busbra})
        predictor = Predictor(fold_dir, models=("seg",), runtime="keras").with_settings(
            {"seg": {"flip_tta": ModelConfig.load(config_path("seg", shipped_dir)).flip_tta}})
        parts = {"busi": load_items(busi_root, "val", csv, limit),
                 "busbra": load_busbra_items(busbra_root, "val", limit, held_busbra)}
        items = parts["busi"] + parts["busbra"]
        maps = predictor.segment_probabilities([it.gray for it in items])
        settings = choose_settings(maps, items)
        predicted = [decisions.lesion_mask(m, settings["threshold"], settings["presence_threshold"]) for m in maps]
        del maps
        masks = {it.image: m for it, m in zip(items, predicted)}
        n_busi = len(parts["busi"])
        scores = {"busi": _score(parts["busi"], predicted[:n_busi]), "busbra": _score(parts["busbra"], predicted[n_busi:])}
        save_masks(fold_file, masks)
        record = {"held_out": {"busi_train_fold": fold, "busbra_fold": held_busbra[0]},
                  "seg_epochs": ModelConfig.load(config_path("seg", fold_dir)).trained_epochs,
                  "test_time": {"flip_tta": predictor.configs["seg"].flip_tta, **settings},
                  **scores, "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        fold_json.write_text(json.dumps(record, indent=1) + "\n")
        state["folds"][str(fold)] = record
        print(f"fold {fold}: BUSI lesion Dice {scores['busi']['lesion_dice']:.3f}, normals outlined "
              f"{scores['busi']['normal_false_positive_rate']:.0%}; BUS-BRA Dice {scores['busbra']['lesion_dice']:.3f}",
              flush=True)
    merged: dict[str, np.ndarray] = {}
    for fold in range(k):
        merged.update(load_masks(work_dir / f"fold{fold}" / "oof_masks.npz"))
    save_masks(out, merged)
    state["masks_file"] = out.name
    state["images"] = len(merged)
    state["generated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(state, indent=1) + "\n")
    print(f"wrote {len(merged)} out-of-fold masks to {out} and the summary to {summary_path}", flush=True)
    return state
