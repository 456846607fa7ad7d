"""Evaluate the IDC model set: choices on the validation patients, one scoring of the test patients.

Chosen on val (43 patients, 586 patches), never on test: the softmax temperature (log-loss), the patch
threshold (best mean of balanced accuracy and IDC F1, the two figures the product is judged on) and the patient
rule (best balanced accuracy over patients). The feature baseline gets its threshold on val the same way.
Averaging the 8 flips / rotations is left off: it costs 8 passes per patch, which a 1000x1000 tile heat map
(400 patches) cannot afford on 2 cores; its validation log-loss is reported.
Test (the 49 test patients of Cruz-Roa et al. 2014, 657 patches) is scored once with those settings:
balanced accuracy, IDC F1, ROC-AUC, calibration; 95% intervals from a bootstrap over patients (patches of one
patient are not independent); network minus features, paired, with the same resamples.
Writes ``models/idc/metrics.json`` and saves the choices in ``models/idc/idc_classifier.json``.
"""

from __future__ import annotations

import json
import platform
from datetime import date
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.config import IDC_CONFIG_FILE, IDC_METRICS_FILE, idc_dir_in
from pipeline.data.idc import IDC_CLASSES, IdcPack, load_idc
from pipeline.inference.bundle import write_idc_manifest
from pipeline.inference.idc import IdcPredictor
from pipeline.inference.report import json_safe
from pipeline.metrics import apply_temperature, auc, expected_calibration_error, fit_temperature, log_loss, roc_curve
from pipeline.training.idc import IDC_BUNDLE_VERSION

N_BOOT = 2000
SEED = 0
PUBLISHED = {
    "Cruz-Roa et al. 2014 (CNN, all patches of the 49 test patients)": {"balanced_accuracy": 0.842, "f1_idc": 0.718},
    "Janowczyk & Madabhushi 2016 (AlexNet, same protocol)": {"f1_idc": 0.765},
    "pack reference: 65 colour/texture features + gradient boosting (this pack's test patients)":
        {"balanced_accuracy": 0.827, "f1_idc": 0.731, "auc": 0.904},
}


def binary_scores(y: np.ndarray, prob: np.ndarray, threshold: float) -> dict:
    """Balanced accuracy, IDC F1 / precision / recall, specificity, AUC and the confusion matrix."""
    y = np.asarray(y).astype(bool)
    pred = np.asarray(prob) >= threshold
    tp, fn = int((pred & y).sum()), int((~pred & y).sum())
    tn, fp = int((~pred & ~y).sum()), int((pred & ~y).sum())
    sens = tp / max(tp + fn, 1)
    spec = tn / max(tn + fp, 1)
    prec = tp / max(tp + fp, 1)
    fpr, tpr = roc_curve(y, prob)
    return {"n": int(len(y)), "balanced_accuracy": (sens + spec) / 2, "f1_idc": 2 * tp / max(2 * tp + fp + fn, 1),
            "precision_idc": prec, "recall_idc": sens, "specificity": spec, "accuracy": (tp + tn) / max(len(y), 1),
            "auc": auc(fpr, tpr), "confusion_matrix": [[tn, fp], [fn, tp]]}


def threshold_score(y: np.ndarray, prob: np.ndarray, threshold: float) -> float:
    """What the threshold choice maximises: the mean of balanced accuracy and IDC F1."""
    s = binary_scores(y, prob, threshold)
    return (s["balanced_accuracy"] + s["f1_idc"]) / 2


def best_threshold(y: np.ndarray, prob: np.ndarray) -> float:
    """Threshold with the best :func:`threshold_score` (grid 0.01-0.99; ties: nearest 0.5)."""
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    scores = [threshold_score(y, prob, t) for t in grid]
    best = max(scores)
    return float(min((t for t, s in zip(grid, scores) if s >= best - 1e-12), key=lambda t: abs(t - 0.5)))


def patient_table(pack: IdcPack, prob: np.ndarray, threshold: float) -> list[dict]:
    """Per patient: patches, true IDC share, share called IDC, mean IDC probability."""
    rows = []
    for p in np.unique(pack.patients):
        m = pack.patients == p
        rows.append({"patient": int(p), "patches": int(m.sum()), "true_share": float(pack.labels[m].mean()),
                     "called_share": float((prob[m] >= threshold).mean()), "mean_probability": float(prob[m].mean())})
    return rows


def patient_calls(rows: list[dict], rule: dict) -> np.ndarray:
    """1 where a patient is called IDC: ``share`` of patches called IDC, or ``mean`` probability, >= ``cut``."""
    key = {"share": "called_share", "mean": "mean_probability"}[rule["kind"]]
    return np.array([r[key] >= rule["cut"] for r in rows], np.uint8)


def patient_scores(rows: list[dict], rule: dict) -> dict:
    """Patient-level 'IDC present' (any IDC patch) scores of a rule, and how well the IDC share is estimated."""
    truth = np.array([r["true_share"] > 0 for r in rows], np.uint8)
    calls = patient_calls(rows, rule)
    key = {"share": "called_share", "mean": "mean_probability"}[rule["kind"]]
    out = binary_scores(truth, np.array([r[key] for r in rows]), rule["cut"])
    true_share = np.array([r["true_share"] for r in rows])
    called = np.array([r["called_share"] for r in rows])
    out.update(rule=rule, patients=len(rows), idc_free_patients=int((truth == 0).sum()),
               called_idc=int(calls.sum()), share_mae=float(np.abs(called - true_share).mean()),
               share_pearson_r=float(np.corrcoef(called, true_share)[0, 1]) if len(rows) > 2 else None)
    return out


def choose_patient_rule(rows: list[dict]) -> dict:
    """The rule with the best patient balanced accuracy on val (ties: the lower cut, then 'share')."""
    best, best_score = None, -1.0
    for kind in ("share", "mean"):
        for cut in np.round(np.arange(0.05, 0.96, 0.05), 2):
            rule = {"kind": kind, "cut": float(cut)}
            s = patient_scores(rows, rule)["balanced_accuracy"]
            if s > best_score + 1e-12:
                best, best_score = rule, s
    return best


def patient_bootstrap(pack: IdcPack, probs: dict[str, np.ndarray], thresholds: dict[str, float],
                      n_boot: int = N_BOOT, seed: int = SEED) -> dict:
    """95% intervals of each model's scores and of their paired differences, resampling patients."""
    rng = np.random.default_rng(seed)
    patients = np.unique(pack.patients)
    index = {p: np.flatnonzero(pack.patients == p) for p in patients}
    draws: dict[str, list[dict]] = {k: [] for k in probs}
    for _ in range(n_boot):
        idx = np.concatenate([index[p] for p in rng.choice(patients, len(patients))])
        for k, prob in probs.items():
            draws[k].append(binary_scores(pack.labels[idx], prob[idx], thresholds[k]))
    keys = ("balanced_accuracy", "f1_idc", "auc")
    out = {k: {m: _ci([d[m] for d in v]) for m in keys} for k, v in draws.items()}
    names = list(probs)
    if len(names) == 2:
        a, b = names
        out[f"{a} - {b}"] = {m: _ci([x[m] - y[m] for x, y in zip(draws[a], draws[b])]) for m in keys}
    out["how"] = f"{n_boot} resamples of the test patients with replacement (seed {seed}), percentile intervals"
    return out


def _ci(values: list[float]) -> list[float]:
    v = np.asarray(values, float)
    v = v[~np.isnan(v)]
    return [round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4)]


def _report(pack: IdcPack, prob: np.ndarray, threshold: float, rule: dict | None) -> dict:
    ece, bins = expected_calibration_error(np.stack([1 - prob, prob], 1), pack.labels)
    scores = binary_scores(pack.labels, prob, threshold)
    fpr, tpr = roc_curve(pack.labels == 1, prob)
    out = {"summary": {k: round(float(scores[k]), 4) for k in ("balanced_accuracy", "f1_idc", "auc")},
           "patch": scores, "threshold": threshold, "ece": ece, "reliability": bins,
           "log_loss": log_loss(np.stack([1 - prob, prob], 1), pack.labels),
           "brier": float(np.mean((prob - pack.labels) ** 2)),
           "roc": {"fpr": [round(float(v), 4) for v in fpr], "tpr": [round(float(v), 4) for v in tpr]}}
    if rule is not None:
        rows = patient_table(pack, prob, threshold)
        out["patient"] = patient_scores(rows, rule)
        out["patients"] = rows
    return out


def earlier_readings(metrics_file: Path) -> list[dict]:
    """Every earlier scoring of the test patients (kept, so that no look at test goes unreported)."""
    if not metrics_file.is_file():
        return []
    old = json.loads(metrics_file.read_text())
    reading = {"date": old.get("date"), "model": old.get("model"), "choices": old.get("choices"),
               "test": {k: v["summary"] for k, v in old.get("test", {}).items()}, "note": old.get("note")}
    return old.get("earlier_test_readings", []) + [reading]


def evaluate_idc(root: str | Path | None = None, *, models_dir: str | Path | None = None, note: str | None = None,
                 log=print) -> dict:
    """Choose on val, score test once; write metrics.json and the chosen settings into the config."""
    from pipeline.training.idc_features import N_FEATURES, features, fit_feature_models

    folder = idc_dir_in(models_dir or paths.models_dir())
    pack = load_idc(root)
    train, val, test = (pack.subset(s) for s in ("train", "val", "test"))
    predictor = IdcPredictor(models_dir or paths.models_dir())
    cfg = predictor.config

    log("validation: temperature, threshold, patient rule")
    raw = {tta: predictor.raw_probabilities(val.images, tta=tta) for tta in (False, True)}
    losses = {tta: log_loss(r, val.labels) for tta, r in raw.items()}
    cfg.tta = False  # see the module docstring: 8x the cost of a tile
    cfg.temperature = fit_temperature(raw[cfg.tta], val.labels)
    val_prob = apply_temperature(raw[cfg.tta], cfg.temperature)[:, 1]
    cfg.threshold = best_threshold(val.labels, val_prob)
    cfg.patient_rule = choose_patient_rule(patient_table(val, val_prob, cfg.threshold))

    log("feature baseline: fit on train, choose on val")
    f_train, f_val, f_test = features(train.images), features(val.images), features(test.images)
    fitted = fit_feature_models(f_train, train.labels)
    val_auc = {}
    for name, m in fitted.items():
        p = m.predict_proba(f_val)[:, 1]
        val_auc[name] = auc(*roc_curve(val.labels == 1, p))
    feat_name = max(val_auc, key=val_auc.get)
    feat_model = fitted[feat_name]
    feat_val = feat_model.predict_proba(f_val)[:, 1]
    feat_threshold = best_threshold(val.labels, feat_val)

    log("test: scored once with the validation choices")
    test_prob = predictor.probabilities(test.images)
    feat_test = feat_model.predict_proba(f_test)[:, 1]
    metrics = {
        "task": "IDC patch classification (1 = invasive ductal carcinoma in the patch)",
        "classes": list(IDC_CLASSES),
        "date": date.today().isoformat(),
        "data": pack.summary(),
        "choices": {"tta": cfg.tta, "val_log_loss": {"single view": losses[False], "8 views": losses[True]},
                    "temperature": cfg.temperature, "threshold": cfg.threshold, "patient_rule": cfg.patient_rule,
                    "feature_model": feat_name, "feature_val_auc": val_auc, "feature_threshold": feat_threshold},
        "val": {"network": _report(val, val_prob, cfg.threshold, cfg.patient_rule),
                "features": _report(val, feat_val, feat_threshold, None)},
        "test": {"network": _report(test, test_prob, cfg.threshold, cfg.patient_rule),
                 "features": _report(test, feat_test, feat_threshold, None)},
        "bootstrap": patient_bootstrap(test, {"network": test_prob, "features": feat_test},
                                       {"network": cfg.threshold, "features": feat_threshold}),
        "published": PUBLISHED,
        "model": {"backbone": cfg.backbone, "initialisation": cfg.initialisation, "network_size": cfg.network_size,
                  "best_epoch": cfg.best_epoch, "trained_epochs": cfg.trained_epochs,
                  "feature_count": N_FEATURES},
        "note": note,
        "how": ("Patches of the pack's 187 training patients train the network (EfficientNet-Lite2 from ImageNet, "
                f"patches up-sampled to {cfg.network_size} px, flips, 90-degree rotations, stain and colour jitter, "
                "class-balanced weights; the epoch with the best validation AUC kept) and the feature baseline "
                f"({N_FEATURES} colour/texture features; gradient boosting and logistic regression, the one with the "
                "better validation AUC kept). On the 43 validation patients: softmax temperature (log-loss), patch "
                "threshold (best mean of balanced accuracy and IDC F1) and the patient rule (best patient balanced "
                "accuracy). The 49 test patients are scored once with those "
                "settings; intervals come from a bootstrap over patients. Published figures used all patches of "
                "the test patients, this pack 14-15 per patient: compare with that caveat."),
        "environment": {"python": platform.python_version()},
    }
    metrics["earlier_test_readings"] = earlier_readings(folder / IDC_METRICS_FILE)
    cfg.save(folder / IDC_CONFIG_FILE)
    write_idc_manifest(folder, IDC_BUNDLE_VERSION)
    (folder / IDC_METRICS_FILE).write_text(json.dumps(json_safe(metrics), indent=1, allow_nan=False) + "\n")
    log(json.dumps({"network": metrics["test"]["network"]["summary"], "features": metrics["test"]["features"]["summary"]}))
    return metrics

