"""Metric functions on NumPy arrays: segmentation overlap and classifier quality."""

from __future__ import annotations

import numpy as np


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two binary masks; 1.0 when both are empty."""
    p, t = np.asarray(pred) > 0, np.asarray(truth) > 0
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(p, t).sum() / total)


def lesion_dice_and_normal_fp(preds, truths) -> tuple[float, float]:
    """Mean Dice over images whose true mask has a lesion, and the share of lesion-free images given any predicted
    pixel (0.0 for a part with no images)."""
    pairs = [(np.asarray(p) > 0, np.asarray(t) > 0) for p, t in zip(preds, truths)]
    dices = [dice(p, t) for p, t in pairs if t.any()]
    fps = [bool(p.any()) for p, t in pairs if not t.any()]
    return (float(np.mean(dices)) if dices else 0.0), (float(np.mean(fps)) if fps else 0.0)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two binary masks; 1.0 when both are empty."""
    p, t = np.asarray(pred) > 0, np.asarray(truth) > 0
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


def pixel_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of pixels where the binary masks agree."""
    return float(((np.asarray(pred) > 0) == (np.asarray(truth) > 0)).mean())


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 per class from a confusion matrix (0 where undefined)."""
    tp = np.diag(cm).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / cm.sum(axis=0))
        recall = np.nan_to_num(tp / cm.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return {"precision": precision, "recall": recall, "f1": f1, "support": cm.sum(axis=1)}


def roc_curve(y_true_binary: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates over all thresholds (ties handled), starting at (0, 0)."""
    y = np.asarray(y_true_binary, bool)
    s = np.asarray(scores, float)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.r_[np.where(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    pos, neg = y.sum(), (~y).sum()
    if pos == 0 or neg == 0:  # undefined: one class only
        return np.array([np.nan]), np.array([np.nan])
    return np.r_[0.0, fps / neg], np.r_[0.0, tps / pos]


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under a curve by the trapezoid rule (NaN for an undefined curve)."""
    if len(fpr) < 2:
        return float("nan")
    return float(np.trapezoid(tpr, fpr))


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 10) -> tuple[float, list[dict]]:
    """ECE of the top-class confidence over equal-width bins, and the reliability bins."""
    probs = np.asarray(probs, float)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0, 1, n_bins + 1)
    ece, bins = 0.0, []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        n = int(inside.sum())
        if n:
            acc, mean_conf = float(correct[inside].mean()), float(conf[inside].mean())
            ece += n / len(conf) * abs(acc - mean_conf)
        else:
            acc = mean_conf = None
        bins.append({"low": float(lo), "high": float(hi), "count": n, "accuracy": acc, "confidence": mean_conf})
    return float(ece), bins


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Re-scale softmax probabilities by a temperature (softmax of log p / T)."""
    logits = np.log(np.clip(np.asarray(probs, float), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def per_image_log_loss(probs: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of each image's true class (probabilities clipped at 1e-12)."""
    y = np.asarray(y_true, int)
    return -np.log(np.clip(np.asarray(probs)[np.arange(len(y)), y], 1e-12, 1))


def log_loss(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (probabilities clipped at 1e-12)."""
    return float(per_image_log_loss(probs, y_true).mean())


def fit_temperature(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood (grid search 0.25-5)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(5.0), 200))
    nll = [log_loss(apply_temperature(probs, t), y_true) for t in grid]
    return float(grid[int(np.argmin(nll))])


def classification_report(probs: np.ndarray, y_true: np.ndarray, classes: tuple[str, ...]) -> dict:
    """Accuracy, macro-F1, per-class scores, confusion matrix, one-vs-rest ROC/AUC and calibration."""
    probs = np.asarray(probs, float)
    y_true = np.asarray(y_true, int)
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, len(classes))
    scores = per_class_scores(cm)
    roc, aucs = {}, {}
    for i, name in enumerate(classes):
        fpr, tpr = roc_curve(y_true == i, probs[:, i])
        aucs[name] = auc(fpr, tpr)
        if not np.isnan(aucs[name]):
            roc[name] = {"fpr": [round(float(v), 4) for v in fpr], "tpr": [round(float(v), 4) for v in tpr]}
    present = (scores["support"] > 0) | (cm.sum(axis=0) > 0)  # classes absent from truth and predictions don't count
    ece, bins = expected_calibration_error(probs, y_true)
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": float(scores["f1"][present].mean()),
        "macro_auc": float(np.nanmean(list(aucs.values()))) if any(not np.isnan(v) for v in aucs.values()) else None,
        "per_class": {name: {k: (int(v[i]) if k == "support" else float(v[i])) for k, v in scores.items()}
                      for i, name in enumerate(classes)},
        "confusion_matrix": cm.tolist(),
        "auc": aucs,
        "roc": roc,
        "ece": ece,
        "reliability": bins,
    }


def paired_accuracy_difference(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray,
                               n_boot: int = 2000, seed: int = 0) -> dict:
    """Accuracy of B minus accuracy of A on the same images: bootstrap 95% interval and exact McNemar test.

    ``pred_a``/``pred_b`` are predicted class indices (A = baseline, B = refined). The bootstrap resamples
    images with replacement (percentile interval, fixed seed); McNemar's exact test looks only at the
    discordant images (one model right, the other wrong): two-sided binomial p-value with p = 1/2.
    """
    y, a, b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    ra, rb = a == y, b == y
    n = len(y)
    diff = float(rb.mean() - ra.mean()) if n else float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((0, 0), int)
    boots = rb[idx].mean(axis=1) - ra[idx].mean(axis=1) if n else np.array([np.nan])
    only_b = int((rb & ~ra).sum())  # refined right, baseline wrong
    only_a = int((ra & ~rb).sum())
    return {
        "n": int(n), "accuracy_a": float(ra.mean()) if n else None, "accuracy_b": float(rb.mean()) if n else None,
        "difference": diff, "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
        "bootstrap_samples": n_boot, "only_b_correct": only_b, "only_a_correct": only_a,
        "mcnemar_p": mcnemar_exact_p(only_b, only_a),
    }


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs (binomial, p = 1/2)."""
    from math import comb

    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2 ** n
    return float(min(1.0, 2 * tail))
