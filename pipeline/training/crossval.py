"""``python -m pipeline crossval``: 5-fold duplicate-grouped cross-validation of the recipe on BUSI train + val.

The third evaluation view, beside BUSI test and BUS-BRA's held-out fold: with 118 test images one image is
0.85 points, so a refined-vs-baseline gap is read better over five held-out folds of the 662 train + val images.

- Folds: duplicate groups stay whole, classes balanced per fold, fixed seed; the BUSI test split is not used.
- Per fold, the UNet, the baseline and the crop classifier are trained from ImageNet weights on the other four
  folds (BUSI only), for a fixed number of epochs, and the last epoch is kept: no checkpoint, threshold or weight
  is chosen on the held-out fold. Test-time settings are fixed beforehand: mask threshold 0.5, no presence gate,
  flip averaging on, refined = 0.5 x crop + 0.5 x baseline, temperature 1.
- The held-out fold is scored end to end through the Predictor (the crop comes from the fold's own UNet).
- Results per fold, mean ± sd over folds, and the pooled out-of-fold comparison (bootstrap interval, McNemar),
  written after every fold to ``models/experiments/crossval.json``; a rerun skips folds already there.

The budget is an argument: on 2 CPU cores a fold costs about 10-15 minutes at the defaults, so the run here is a
reduced version of the shipped recipe (which warm-starts from longer runs and adds BUS-BRA); a GPU run can give
it the full epochs with the same command.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import metrics
from pipeline.config import CLASS_NAMES, ModelConfig, config_path
from pipeline.data.items import labels, load_items
from pipeline.data.split import read_split
from pipeline.inference.bundle import record_files
from pipeline.paths import LITE2_WEIGHTS, MODELS_DIR, SPLIT_CSV

DEFAULT_OUT = MODELS_DIR / "experiments" / "crossval.json"
SEED = 20261123
FIXED = {"mask_threshold": 0.5, "presence_threshold": 0.0, "flip_tta": True, "fusion_weight": 0.5, "temperature": 1.0}


def assign_folds(split: pd.DataFrame, k: int = 5, seed: int = SEED,
                 subsets: tuple[str, ...] = ("train", "val")) -> pd.DataFrame:
    """``split``'s rows of ``subsets`` with a ``fold`` column (0..k-1): duplicate groups whole, classes balanced.

    Groups are shuffled with the seed, then placed largest first into the fold holding the fewest images of the
    group's class (a group with two labels counts under its first).
    """
    df = split[split["subset"].isin(list(subsets))].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    group_label = df.groupby("group")["label"].first()
    sizes = df.groupby("group").size()
    fold_of: dict[str, int] = {}
    counts = {(label, f): 0 for label in CLASS_NAMES for f in range(k)}
    groups = np.array(sorted(group_label.index))
    groups = groups[rng.permutation(len(groups))]
    for g in sorted(groups, key=lambda g: -sizes[g]):  # stable: ties keep the shuffled order
        label = group_label[g]
        fold = min(range(k), key=lambda f: (counts[(label, f)], f))
        fold_of[g] = fold
        counts[(label, fold)] += int(sizes[g])
    df["fold"] = df["group"].map(fold_of).astype(int)
    return df


def fold_split(folds: pd.DataFrame, fold: int, out: Path) -> Path:
    """A split CSV for one fold: the other folds as "train", the held-out fold as "val"."""
    df = folds.copy()
    df["subset"] = np.where(df["fold"] == fold, "val", "train")
    out.parent.mkdir(parents=True, exist_ok=True)
    df[["image", "label", "subset", "group"]].to_csv(out, index=False)
    return out


def _fix_choices(models_dir: Path) -> None:
    """Write the fixed test-time settings into the fold's configs (nothing is chosen on the held-out fold)."""
    for name in ("seg", "raw", "refined"):
        cfg = ModelConfig.load(config_path(name, models_dir))
        cfg.flip_tta = FIXED["flip_tta"]
        cfg.temperature = FIXED["temperature"]
        if name == "seg":
            cfg.threshold, cfg.presence_threshold = FIXED["mask_threshold"], FIXED["presence_threshold"]
        if name == "refined":
            cfg.fusion_weight = FIXED["fusion_weight"]
        cfg.save(config_path(name, models_dir))
    record_files(models_dir, [config_path(n).name for n in ("seg", "raw", "refined")])


def score_fold(models_dir: Path, root: Path, split_csv: Path) -> dict:
    """End-to-end scores of one fold's models on its held-out images, and their out-of-fold predictions."""
    from pipeline.inference.predictor import Predictor
    from pipeline.training.evaluate import infer, segmentation_report

    items = load_items(root, "val", split_csv)
    y = labels(items)
    res = infer(Predictor(models_dir), items)
    seg = segmentation_report(items, res["masks"])
    out = {"n": len(items), "lesion_dice": seg["dice_mean"], "normal_false_positive_rate": seg["normal_false_positive_rate"]}
    for key, name in (("baseline", "raw"), ("refined", "refined")):
        report = metrics.classification_report(res[name], y, CLASS_NAMES)
        out[key] = {m: report[m] for m in ("accuracy", "macro_f1", "macro_auc")}
    out["refined_minus_baseline"] = metrics.paired_accuracy_difference(y, res["raw"].argmax(1), res["refined"].argmax(1))
    out["predictions"] = [{"image": it.image, "label": int(t), "baseline": int(b), "refined": int(r)}
                          for it, t, b, r in zip(items, y, res["raw"].argmax(1), res["refined"].argmax(1))]
    return out


def _mean_sd(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None}


def summarise(folds: dict) -> dict:
    """Mean ± sd over folds and the pooled out-of-fold comparison."""
    done = [folds[k] for k in sorted(folds)]
    summary = {"folds_done": len(done)}
    for key in ("baseline", "refined"):
        for m in ("accuracy", "macro_f1", "macro_auc"):
            summary[f"{key}_{m}"] = _mean_sd([f[key][m] for f in done])
    diffs = [f["refined_minus_baseline"]["difference"] for f in done]
    summary["refined_minus_baseline_accuracy"] = {**_mean_sd(diffs), "per_fold": diffs}
    summary["lesion_dice"] = _mean_sd([f["lesion_dice"] for f in done])
    pooled = [p for f in done for p in f["predictions"]]
    summary["pooled"] = metrics.paired_accuracy_difference(
        np.array([p["label"] for p in pooled]), np.array([p["baseline"] for p in pooled]),
        np.array([p["refined"] for p in pooled]))
    return summary


def run(root: str | Path, work_dir: str | Path, *, k: int = 5, only: list[int] | None = None, seg_epochs: int = 5,
        cls_epochs: int = 6, out: str | Path | None = None, split_csv: str | Path = SPLIT_CSV,
        limit: int | None = None, steps: int | None = None) -> dict:
    """Train and score the folds (``only``: these fold numbers), writing the results JSON after each fold.

    ``work_dir`` holds each fold's split CSV and models (large: keep it out of git). ``limit``/``steps``: smoke tests.
    """
    from pipeline.errors import ModelLoadError
    from pipeline.training.train import train

    if not LITE2_WEIGHTS.is_file() and limit is None:
        raise ModelLoadError(f"cross-validation trains from ImageNet weights: {LITE2_WEIGHTS} not found "
                             "(python -m pipeline backbone convert-lite2)")
    root, work_dir = Path(root), Path(work_dir)
    path = Path(out) if out else DEFAULT_OUT
    state = json.loads(path.read_text()) if path.is_file() else {}
    folds = assign_folds(read_split(split_csv), k)
    state.update({
        "command": "python -m pipeline crossval", "k": k, "seed": SEED, "split_file": "data/splits/busi.csv (train + val)",
        "images": int(len(folds)), "fold_sizes": {str(f): int((folds["fold"] == f).sum()) for f in range(k)},
        "recipe": {"data": "BUSI only", "initialisation": "ImageNet (EfficientNet-Lite2)", "seg_epochs": seg_epochs,
                   "cls_epochs": cls_epochs, "epoch_kept": "last (no choice on the held-out fold)",
                   "test_time": FIXED},
    })
    state.setdefault("folds", {})
    weights = "imagenet" if limit is None else None
    for fold in only if only is not None else range(k):
        if str(fold) in state["folds"]:
            print(f"fold {fold}: already done, skipped", flush=True)
            continue
        fold_dir = work_dir / f"fold{fold}"
        csv = fold_split(folds, fold, fold_dir / "split.csv")
        common = dict(split_csv=csv, models_dir=fold_dir, patience=10**6, select_best=False, limit=limit,
                      steps_per_epoch=steps, weights=weights)
        train("seg", root, epochs=seg_epochs, **common)
        for name in ("raw", "refined"):
            train(name, root, epochs=cls_epochs, **common)
        _fix_choices(fold_dir)
        state["folds"][str(fold)] = score_fold(fold_dir, root, csv)
        state["folds"][str(fold)]["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        state["summary"] = summarise(state["folds"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state, indent=1) + "\n")
        f = state["folds"][str(fold)]
        print(f"fold {fold}: baseline {f['baseline']['accuracy']:.3f}, refined {f['refined']['accuracy']:.3f}, "
              f"Dice {f['lesion_dice']:.3f} -> {path}", flush=True)
    return state
