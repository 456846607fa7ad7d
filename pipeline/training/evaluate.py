"""``python -m pipeline evaluate``: score the committed models, writing ``models/metrics.json``.

Order of work, so the test split is only recorded, never used to choose:
1. validation split: choose the UNet's mask threshold (best mean Dice on lesion images), its lesion-presence
   gate (best lesion Dice with at most 10% of normal images given a lesion) and each classifier's softmax
   temperature (lowest negative log-likelihood), all saved in the configs; then whether to average each
   classifier with its horizontally flipped input and the weight of the crop classifier in the refined
   answer (the rest is the whole-frame classifier), both by val log-loss (classifier choices add BUS-BRA's
   validation fold when the classifiers trained on BUS-BRA);
2. test split: one pass with those choices, end to end (the refined classifier sees the crop of the
   UNet's predicted mask, never the ground truth).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from pathlib import Path

import numpy as np

from pipeline import metrics, paths
from pipeline.config import config_path, model_path
from pipeline.data.items import labels, load_items
from pipeline.inference import decisions
from pipeline.inference.bundle import file_sha256, record_files
from pipeline.inference.predictor import Predictor
from pipeline.inference.report import json_safe
from pipeline.paths import MODELS_DIR, PROJECT_ROOT, SPLIT_CSV


def infer(predictor: Predictor, items, temper: bool = True, masks: list[np.ndarray] | None = None) -> dict:
    """Predicted masks and baseline/crop/refined probabilities for ``items``, through the Predictor.

    Probabilities are un-tempered if ``temper`` is False; ``masks`` skips segmentation when given.
    """
    grays = [it.gray for it in items]
    if masks is None:
        masks = predictor.segment_batch(grays)
    out = predictor.classify_batch(grays, masks, temper=temper)
    return {"masks": masks, "raw": out.baseline, "crop": out.crop, "refined": out.refined}


def _relative(path: str | Path) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(PROJECT_ROOT)) if p.is_relative_to(PROJECT_ROOT) else str(path)


def segmentation_report(items, masks) -> dict:
    """Dice/IoU on lesion images (mean and per image), false-positive rate on normal images, pixel accuracy."""
    lesion = [(it, m) for it, m in zip(items, masks) if it.mask.any()]
    normal = [(it, m) for it, m in zip(items, masks) if not it.mask.any()]
    dices = [metrics.dice(m, it.mask) for it, m in lesion]
    ious = [metrics.iou(m, it.mask) for it, m in lesion]
    return {
        "lesion_images": len(lesion),
        "dice_mean": float(np.mean(dices)) if dices else None,
        "dice_median": float(np.median(dices)) if dices else None,
        "iou_mean": float(np.mean(ious)) if ious else None,
        "normal_images": len(normal),
        "normal_false_positive_rate": float(np.mean([m.any() for _, m in normal])) if normal else None,
        "normal_mean_predicted_fraction": float(np.mean([m.mean() for _, m in normal])) if normal else None,
        "pixel_accuracy_all": float(np.mean([metrics.pixel_accuracy(m, it.mask) for it, m in zip(items, masks)])),
        "per_image": {it.image: {"dice": d, "iou": i} for (it, _), d, i in zip(lesion, dices, ious)},
    }


def compare(res: dict, y: np.ndarray) -> dict:
    """Refined minus baseline accuracy on the same images: bootstrap 95% interval and exact McNemar p-value."""
    return metrics.paired_accuracy_difference(y, res["raw"].argmax(1), res["refined"].argmax(1))


def external_busbra(predictor: Predictor, root: str | Path, subset: str = "test") -> dict:
    """Score the models on BUS-BRA's held-out fold (other country, other scanners; no normal class).

    Classes are BUSI's three: predicting "normal" for a BUS-BRA lesion counts as wrong. Also reported:
    malignant-vs-benign AUC from P(malignant), lesion Dice, and accuracy per scanner.
    """
    from pipeline.data import busbra
    from pipeline.data.items import load_busbra_items

    items = load_busbra_items(root, subset)
    index = busbra.read_index(root).set_index("image")
    print(f"external check: BUS-BRA {subset} fold, {len(items)} images", flush=True)
    res = infer(predictor, items)
    y = labels(items)
    seg = segmentation_report(items, res["masks"])
    seg.pop("per_image")
    out = {"dataset": "BUS-BRA", "subset": subset, "fold": busbra.HELD_OUT_FOLD, "images": len(items),
           "patients": int(index.loc[[it.image for it in items], "case"].nunique()),
           "segmentation": seg, "classifiers": {}, "comparison": compare(res, y), "per_scanner": {}}
    malignant = predictor.classes.index("malignant")
    scanners = np.array([busbra.scanner(index.at[it.image, "device"]) for it in items])
    for key, name in (("baseline", "raw"), ("refined", "refined")):
        rep = metrics.classification_report(res[name], y, predictor.classes)
        fpr, tpr = metrics.roc_curve(y == malignant, res[name][:, malignant])
        rep["malignant_vs_benign_auc"] = metrics.auc(fpr, tpr)
        rep["predicted_normal"] = int((res[name].argmax(1) == predictor.classes.index("normal")).sum())
        out["classifiers"][key] = rep
        for s in sorted(set(scanners)):
            sel = scanners == s
            out["per_scanner"].setdefault(s, {"images": int(sel.sum())})[key] = float(
                (res[name][sel].argmax(1) == y[sel]).mean())
    print(f"BUS-BRA {subset}: Dice {seg['dice_mean']:.3f}, baseline acc {out['classifiers']['baseline']['accuracy']:.3f}, "
          f"refined acc {out['classifiers']['refined']['accuracy']:.3f}", flush=True)
    return out


def _busbra_choice_items(predictor: Predictor, busbra_root: str | Path | None) -> list:
    """BUS-BRA's validation fold when the classifiers trained on BUS-BRA (their early stopping used it too), so the
    classifier choices (flip averaging, fusion weight, temperatures) suit both hospitals; [] otherwise."""
    trained = any(predictor.configs[n].trained_on_busbra for n in ("raw", "refined"))
    if not trained or busbra_root is None or not paths.busbra_available(busbra_root):
        return []
    from pipeline.data.items import load_busbra_items

    return load_busbra_items(busbra_root, "val")


def _choice_set_name(n_busi: int, n_all: int) -> str:
    return f"BUSI val ({n_busi})" + (f" + BUS-BRA fold 4 ({n_all - n_busi})" if n_all > n_busi else "")


def choose_seg(predictor: Predictor, val: list) -> dict:
    """The UNet's choices on validation images ``val`` (BUSI val): flip averaging and mask threshold by lesion Dice,
    then the lesion-presence gate (``decisions``), as settings for ``Predictor.with_settings({"seg": ...})``."""
    truths, grays = [it.mask for it in val], [it.gray for it in val]
    dice_by = {}
    for flip in (False, True):
        maps = predictor.with_settings({"seg": {"flip_tta": flip}}).segment_probabilities(grays)
        dice_by.update({(flip, t): d for t, d in decisions.lesion_dice_by_threshold(maps, truths).items()})
    seg_flip, threshold = decisions.choose_threshold(dice_by)
    maps = predictor.with_settings({"seg": {"flip_tta": seg_flip}}).segment_probabilities(grays)
    presence_threshold, presence = decisions.choose_presence(maps, truths, threshold)
    return {"flip_tta": seg_flip, "threshold": threshold, "presence_threshold": presence_threshold,
            "notes": {"val_dice_by_threshold": {f"{t}{' flip' if f else ''}": v for (f, t), v in dice_by.items()},
                      "val_dice_and_normal_fp_by_presence_threshold": {str(c): v for c, v in presence.items()}}}


def choose_on_val(predictor: Predictor, val: list, choice_items: list) -> dict[str, dict]:
    """The test-time choices made on validation images (see the module docstring), as settings for
    ``Predictor.with_settings``: model name -> {config field: value, "notes": {...}}. ``val``: BUSI val (mask
    choices); ``choice_items``: the images the classifier choices are made on. ``predictor`` is not changed."""
    seg = choose_seg(predictor, val)
    y_val = labels(choice_items)
    # refined inputs follow the chosen mask settings
    val_masks = predictor.with_settings({"seg": seg}).segment_batch([it.gray for it in choice_items])
    nll_by_flip, res_by_flip = {}, {}
    for flip in (False, True):  # flip test-time augmentation: keep it only if val log-loss drops
        trial = predictor.with_settings({n: {"flip_tta": flip} for n in ("raw", "refined")})
        res_by_flip[flip] = infer(trial, choice_items, temper=False, masks=val_masks)
        nll_by_flip[flip] = (metrics.log_loss(res_by_flip[flip]["raw"], y_val)
                             + metrics.log_loss(res_by_flip[flip]["crop"], y_val))
    flip = bool(nll_by_flip[True] < nll_by_flip[False])
    res = res_by_flip[flip]
    weight, nll_by_weight = decisions.choose_fusion_weight(res["raw"], res["crop"], y_val)
    return {
        "seg": seg,
        "raw": {"flip_tta": flip, "temperature": metrics.fit_temperature(res["raw"], y_val),
                "notes": {"val_nll_by_flip_tta": {str(k): v for k, v in nll_by_flip.items()}}},
        "refined": {"flip_tta": flip, "fusion_weight": weight,
                    "temperature": metrics.fit_temperature(decisions.fuse(res["raw"], res["crop"], weight), y_val),
                    "notes": {"val_nll_by_fusion_weight": nll_by_weight,
                              "classifier_choices_on": _choice_set_name(len(val), len(choice_items))}},
    }


def evaluate(root: str | Path, models_dir: str | Path = MODELS_DIR, split_csv: str | Path = SPLIT_CSV,
             out: str | Path | None = None, choose: bool = True, busbra_root: str | Path | None = None) -> dict:
    """Choose thresholds/temperatures on val (if ``choose``), score val and test, write metrics JSON.

    With ``busbra_root`` (BUS-BRA present), also the external check on BUS-BRA's held-out fold.
    """
    models_dir = Path(models_dir)
    predictor = Predictor(models_dir)
    val = load_items(root, "val", split_csv)
    test = load_items(root, "test", split_csv)
    print(f"evaluating on {len(val)} validation and {len(test)} test images", flush=True)
    if choose:
        choices = choose_on_val(predictor, val, val + _busbra_choice_items(predictor, busbra_root))
        predictor = predictor.with_settings(choices)
        for name, cfg in predictor.configs.items():
            cfg.save(config_path(name, models_dir))
        record_files(models_dir, [config_path(name).name for name in predictor.configs])
        seg_cfg = predictor.configs["seg"]
        print(f"chosen on val: mask threshold {seg_cfg.threshold} (flip {seg_cfg.flip_tta}, presence gate "
              f"{seg_cfg.presence_threshold}), classifier flip TTA {predictor.configs['raw'].flip_tta}, "
              f"fusion weight {predictor.configs['refined'].fusion_weight}, temperatures "
              f"raw {predictor.configs['raw'].temperature:.3f}, refined {predictor.configs['refined'].temperature:.3f}",
              flush=True)
    result = {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m pipeline evaluate",
        "environment": {"python": platform.python_version(), "machine": platform.machine(),
                        "runtime": predictor.runtime},
        "split_file": _relative(split_csv),
        "split_sha256": file_sha256(split_csv),
        "models": {n: {"file": model_path(n, models_dir).name, "sha256": file_sha256(model_path(n, models_dir)),
                       "backbone": c.backbone, "initialisation": c.initialisation, "best_epoch": c.best_epoch,
                       "datasets": c.notes.get("datasets", "BUSI train")}
                   for n, c in predictor.configs.items()},
        "choices": {"made_on": "val", "mask_threshold": predictor.configs["seg"].threshold,
                    "presence_threshold": predictor.configs["seg"].presence_threshold,
                    "val_dice_and_normal_fp_by_presence_threshold":
                        predictor.configs["seg"].notes.get("val_dice_and_normal_fp_by_presence_threshold"),
                    "val_dice_by_threshold": predictor.configs["seg"].notes.get("val_dice_by_threshold"),
                    "temperature": {n: predictor.configs[n].temperature for n in ("raw", "refined")},
                    "flip_tta": {n: c.flip_tta for n, c in predictor.configs.items()},
                    "fusion_weight": predictor.configs["refined"].fusion_weight,
                    "classifier_choices_on": predictor.configs["refined"].notes.get("classifier_choices_on", "BUSI val"),
                    "val_nll_by_fusion_weight": predictor.configs["refined"].notes.get("val_nll_by_fusion_weight")},
        "segmentation": {}, "classifiers": {"baseline": {}, "refined": {}}, "comparison": {}, "external": {},
        "per_image": {},
    }
    for subset, items in (("val", val), ("test", test)):
        res = infer(predictor, items)
        seg = segmentation_report(items, res["masks"])
        result["segmentation"][subset] = seg
        for key, name in (("baseline", "raw"), ("refined", "refined")):
            result["classifiers"][key][subset] = metrics.classification_report(res[name], labels(items), predictor.classes)
        result["per_image"][subset] = [
            {"image": it.image, "label": predictor.classes[it.label],
             "dice": seg["per_image"].get(it.image, {}).get("dice"),
             "iou": seg["per_image"].get(it.image, {}).get("iou"),
             "predicted_lesion_fraction": float(m.mean()),
             "baseline": {c: round(float(v), 6) for c, v in zip(predictor.classes, pb)},
             "refined": {c: round(float(v), 6) for c, v in zip(predictor.classes, pr)}}
            for it, m, pb, pr in zip(items, res["masks"], res["raw"], res["refined"])
        ]
        seg.pop("per_image")
        result["comparison"][subset] = compare(res, labels(items))
        print(f"{subset}: Dice {seg['dice_mean']:.3f}, normal FP rate {seg['normal_false_positive_rate']:.3f}, "
              f"baseline acc {result['classifiers']['baseline'][subset]['accuracy']:.3f}, "
              f"refined acc {result['classifiers']['refined'][subset]['accuracy']:.3f}", flush=True)
    if busbra_root is not None and paths.busbra_available(busbra_root):
        result["external"]["busbra_test"] = external_busbra(predictor, busbra_root)
    out = Path(out) if out else models_dir / "metrics.json"
    out.write_text(json.dumps(json_safe(result), indent=1, allow_nan=False) + "\n")  # strict JSON: NaN -> null
    print(f"wrote {out}", flush=True)
    if out == models_dir / "metrics.json":
        from pipeline.training.model_card import write_card

        print(f"wrote {write_card(models_dir)}", flush=True)
    return result
