"""Render ``models/MODEL_CARD.md`` from ``metrics.json`` and the model configs, so its numbers stay true."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import ModelConfig, config_path
from pipeline.paths import MODELS_DIR

INTENDED_USE = (
    "Research and teaching only: exploring how a segmentation model can help an image classifier on "
    "breast ultrasound. Not a medical device, not validated for clinical use, and not to be used for "
    "diagnosis or patient management."
)


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _flips(flags: dict | None) -> str:
    if not flags:
        return "off"
    on = [n for n, v in flags.items() if v]
    return "on for " + ", ".join(on) if on else "off"


def _weights(nll: dict | None) -> str:
    if not nll:
        return "n/a"
    return ", ".join(f"{w}: log-loss {v:.3f}" for w, v in nll.items())


def _with_busbra(configs: dict[str, ModelConfig]) -> bool:
    """True when the models were trained on BUS-BRA's training folds as well as BUSI."""
    return any(cfg.trained_on_busbra for cfg in configs.values())


def _presence(choices: dict) -> str:
    t = choices.get("presence_threshold") or 0.0
    table = choices.get("val_dice_and_normal_fp_by_presence_threshold") or {}
    if not t:
        return "lesion-presence gate off"
    dice, fp = table.get(str(t), (None, None))
    return (f"lesion-presence gate {t} (a mask is kept only when some pixel's lesion probability reaches it; "
            f"on validation: lesion Dice {_f(dice)}, normal images outlined {_f(None if fp is None else 100 * fp, 1)}%; "
            + ("chosen as the best lesion Dice with at most 10% of normal images outlined)" if fp is not None and fp <= 0.10
               else "no candidate reached 10% of normal images outlined on validation, so the lowest rate was taken)"))


def _class_table(report: dict) -> list[str]:
    rows = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, s in report["per_class"].items():
        rows.append(f"| {name} | {_f(s['precision'])} | {_f(s['recall'])} | {_f(s['f1'])} | {s['support']} |")
    return rows


def render(metrics: dict, configs: dict[str, ModelConfig], extra: str = "") -> str:
    """Markdown model card."""
    seg_t, seg_v = metrics["segmentation"]["test"], metrics["segmentation"]["val"]
    cls = metrics["classifiers"]
    lines = [
        "# Model card: BUSI lesion segmentation and three-class classification",
        "",
        f"Generated from `models/metrics.json` ({metrics['generated']}) by `python -m pipeline evaluate`.",
        "",
        "## Intended use",
        INTENDED_USE,
        "",
        "## Data and split",
        "BUSI (Al-Dhabyani et al., Data in Brief 2020): 780 images (benign 437, malignant 210, normal 133) "
        "from Baheya Hospital, Cairo, 2018. Split `data/splits/busi.csv` "
        f"(sha256 `{metrics['split_sha256'][:12]}…`): stratified by class, 70/15/15, near-duplicate groups "
        "kept inside one subset, cross-label duplicate groups in train only, fixed seed.",
        f"Validation: {cls['refined']['val']['n']} images; test: {cls['refined']['test']['n']} images.",
        *([
            "",
            "Training also used BUS-BRA (Gómez-Flores et al., Medical Physics 2024): its authors' patient-level folds "
            "1-3 for training and fold 4 for validation (early stopping), fold 5 held out as the external test below. "
            "The mask threshold and the lesion-presence gate are chosen on BUSI's validation split (the only one "
            "with normal images); the classifier choices on "
            f"{metrics['choices'].get('classifier_choices_on', 'BUSI val')}."] if _with_busbra(configs) else []),
        "",
        "## Models",
        "| model | file | architecture | initialisation | input | best epoch / trained |",
        "|---|---|---|---|---|---|",
    ]
    names = {"seg": "segmentation", "raw": "baseline classifier", "refined": "refined classifier"}
    for key, cfg in configs.items():
        info = metrics["models"][key]
        inp = {"seg": f"grayscale {cfg.image_size}x{cfg.image_size}",
               "raw": f"whole frame {cfg.image_size}x{cfg.image_size}",
               "refined": f"lesion-centred crop of the predicted mask, {cfg.image_size}x{cfg.image_size}"}[key]
        lines.append(f"| {names[key]} | `{info['file']}` | {cfg.backbone} | {cfg.initialisation} | {inp} | "
                     f"{cfg.best_epoch} / {cfg.trained_epochs} |")
    lines += [
        "",
        "Training (all models): AdamW (weight decay 1e-4), cosine learning-rate schedule, batch 16, seed "
        f"{configs['seg'].seed}, augmentation: horizontal flips, rotations ±12°, shifts ±6%, scale 0.9-1.12, "
        "gamma/contrast/brightness, multiplicative speckle noise. Segmentation loss: BCE + Dice. "
        "Classifiers: cross-entropy with label smoothing 0.05 and class weights "
        f"{_class_weights(configs)}; the refined classifier {_refined_crops(configs['refined'])}. Early stopping on the "
        f"validation split ({_seg_monitor(configs['seg'])} for the UNet, macro-F1 for the classifiers); the best "
        "validation epoch is shipped.",
        "",
        "Choices made on the validation split only (by mean Dice for the mask, by log-loss for the rest): "
        f"mask threshold {metrics['choices']['mask_threshold']}; {_presence(metrics['choices'])}; "
        "horizontal-flip test-time averaging "
        f"{_flips(metrics['choices'].get('flip_tta'))}; weight of the crop classifier in the refined answer "
        f"{metrics['choices'].get('fusion_weight', 1.0)} (the rest is the whole-frame classifier; candidates "
        f"{_weights(metrics['choices'].get('val_nll_by_fusion_weight'))}); softmax temperatures baseline "
        f"{metrics['choices']['temperature']['raw']:.3f} and refined {metrics['choices']['temperature']['refined']:.3f}.",
        "",
        "## Results on the test split (touched once, after all choices)",
        "",
        "### Segmentation",
        f"- Lesion images ({seg_t['lesion_images']}): Dice {_f(seg_t['dice_mean'])} (median {_f(seg_t['dice_median'])}), "
        f"IoU {_f(seg_t['iou_mean'])}.",
        f"- Normal images ({seg_t['normal_images']}): any lesion predicted in "
        f"{_f(100 * seg_t['normal_false_positive_rate'], 1)}% "
        f"of them (mean predicted area {_f(100 * seg_t['normal_mean_predicted_fraction'], 2)}% of the frame).",
        f"- Pixel accuracy over all test images {_f(seg_t['pixel_accuracy_all'])} (dominated by background: "
        "reported only to compare with published 'segmentation accuracy').",
        f"- Validation: Dice {_f(seg_v['dice_mean'])}, normal false-positive rate {_f(seg_v['normal_false_positive_rate'])}.",
        "",
        "### Classification (end to end: the refined model sees the UNet's predicted mask)",
        "| model | accuracy | macro-F1 | macro AUC | ECE |",
        "|---|---|---|---|---|",
    ]
    for key in ("baseline", "refined"):
        r = cls[key]["test"]
        lines.append(f"| {key} | {_f(r['accuracy'])} | {_f(r['macro_f1'])} | {_f(r['macro_auc'])} | {_f(r['ece'])} |")
    for key in ("baseline", "refined"):
        lines += ["", f"{key.capitalize()} per class (test):", "", *_class_table(cls[key]["test"])]
        lines += ["", f"Confusion matrix (rows true, columns predicted; {', '.join(cls[key]['test']['per_class'])}): "
                  f"`{cls[key]['test']['confusion_matrix']}`"]
    lines += _comparison_section(metrics) + _external_section(metrics, _with_busbra(configs)) + [
        "",
        "## Out-of-scope gate",
        "Before a label is shown, a scope gate asks whether the input looks like a breast-ultrasound frame "
        "(BUSI or BUS-BRA-like); how it was fitted and what it accepts and refuses per dataset and scanner: "
        "`models/SCOPE_GATE.md` (numbers in `models/scope_metrics.json`).",
    ]
    lines += [
        "",
        "## Limits",
        ("- Trained on two hospitals (Cairo, Brazil); normal images come from BUSI alone (BUS-BRA has none), so "
         "\"normal\" is learnt from one hospital's 93 training images. " if _with_busbra(configs) else
         "- Trained on one dataset, one hospital, one period: on another hospital's scanners (BUS-BRA, above) "
         "accuracy drops sharply. ") + "The test split has only "
        f"{cls['refined']['test']['n']} images: a difference of one image is "
        f"{100 / cls['refined']['test']['n']:.1f} accuracy points.",
        "- BUSI images carry burned-in annotations (calipers, text) in many frames; the models may use them.",
        "- Near-duplicates were grouped by thumbnail correlation (threshold 0.92); duplicates that differ "
        "more (other crops of the same lesion) may remain across subsets.",
        "- Labels are BUSI's; some duplicate images carry conflicting labels (kept in train).",
    ]
    if extra:
        lines += ["", extra.strip()]
    return "\n".join(lines) + "\n"


def _class_weights(configs: dict[str, ModelConfig]) -> str:
    w = configs["raw"].notes.get("class_weights") or {}
    if not w:
        return "none"
    names = configs["raw"].classes
    return "(" + ", ".join(f"{names[int(k)]} {v:.2f}" for k, v in w.items()) + ")"


def _refined_crops(cfg: ModelConfig) -> str:
    """What the refined classifier's training crops were cut from."""
    if "training_crops" in cfg.notes:
        return (f"trains on crops of {cfg.notes['training_crops']}: masks of each training image by a UNet that "
                "never saw it (`python -m pipeline train oof-masks`), dilated or eroded half the time, closer to the "
                "crops of use than ground truth is")
    return ("trains on crops of jittered ground-truth masks (sometimes dropped, sometimes a random box on normal "
            "images) to learn to live with segmentation errors")


def _seg_monitor(cfg: ModelConfig) -> str:
    if cfg.notes.get("monitor") == "val_seg_score":
        return "mean lesion Dice − 0.5 × the share of normal images given a lesion"
    return "Dice"


def _difference(c: dict) -> str:
    lo, hi = c["ci95"]
    verdict = "not a significant difference" if c["mcnemar_p"] >= 0.05 else "a significant difference"
    return (f"refined − baseline accuracy {100 * c['difference']:+.1f} points (95% bootstrap interval "
            f"{100 * lo:+.1f} to {100 * hi:+.1f}, {c['bootstrap_samples']} resamples of the images); exact McNemar "
            f"test on the {c['only_b_correct'] + c['only_a_correct']} images where exactly one model is right "
            f"({c['only_b_correct']} refined only, {c['only_a_correct']} baseline only): p = {c['mcnemar_p']:.2f}, "
            f"{verdict}.")


def _comparison_section(metrics: dict) -> list[str]:
    comp = metrics.get("comparison") or {}
    if not comp:
        return []
    lines = ["", "### Refined vs baseline: a real gain or noise?"]
    for subset in ("test", "val"):
        if subset in comp:
            lines.append(f"- BUSI {subset} ({comp[subset]['n']} images): {_difference(comp[subset])}")
    return lines


def _external_section(metrics: dict, trained_on_busbra: bool = False) -> list[str]:
    ext = (metrics.get("external") or {}).get("busbra_test")
    if not ext:
        return []
    b, r = ext["classifiers"]["baseline"], ext["classifiers"]["refined"]
    lines = [
        "",
        "## External check: BUS-BRA held-out fold (another country, other scanners)",
        "BUS-BRA (Gómez-Flores et al., Medical Physics 51(4), 2024; doi:10.1002/mp.16812): 1,875 biopsy-proven "
        "images of 1,064 patients from Brazil, four scanners, benign or malignant (no normal class). The authors' "
        f"patient-level fold {ext['fold']} is held out ({ext['images']} images, {ext['patients']} patients). "
        + ("The shipped models trained on folds 1-3 and validated on fold 4; they never saw fold 5's patients. "
           if trained_on_busbra else "The shipped models were trained on BUSI only and have never seen BUS-BRA. ")
        + "Classes are BUSI's three, so a lesion called \"normal\" counts as wrong.",
        "",
        "| model | accuracy (3 classes) | malignant-vs-benign AUC | lesions called normal |",
        "|---|---|---|---|",
        f"| baseline | {_f(b['accuracy'])} | {_f(b['malignant_vs_benign_auc'])} | {b['predicted_normal']} |",
        f"| refined | {_f(r['accuracy'])} | {_f(r['malignant_vs_benign_auc'])} | {r['predicted_normal']} |",
        "",
        f"- Segmentation on BUS-BRA: Dice {_f(ext['segmentation']['dice_mean'])} "
        f"(median {_f(ext['segmentation']['dice_median'])}).",
        f"- {_difference(ext['comparison'])}",
        "- Per scanner (accuracy baseline / refined): " + "; ".join(
            f"{s} ({v['images']} images) {_f(v['baseline'])} / {_f(v['refined'])}" for s, v in ext["per_scanner"].items()),
    ]
    if not trained_on_busbra:
        lines.append("- Reading: the BUSI-only models transfer poorly to another hospital (many lesions called normal); "
                     "training on BUSI + BUS-BRA is the next step (see the open models issue).")
    return lines


def write_card(models_dir: str | Path = MODELS_DIR, extra_file: str | Path | None = None) -> Path:
    """Write MODEL_CARD.md beside the models from their metrics.json and configs."""
    models_dir = Path(models_dir)
    metrics = json.loads((models_dir / "metrics.json").read_text())
    configs = {n: ModelConfig.load(config_path(n, models_dir)) for n in ("seg", "raw", "refined")}
    extra_path = Path(extra_file) if extra_file else models_dir / "TRAINING_NOTES.md"
    extra = extra_path.read_text() if extra_path.is_file() else ""
    out = models_dir / "MODEL_CARD.md"
    out.write_text(render(metrics, configs, extra))
    return out
