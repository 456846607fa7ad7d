"""Reading ``models/metrics.json`` for the Models page: headline, tables, curves, error browser.

Everything comes from the file written by ``python -m pipeline evaluate``; nothing is evaluated
here. No streamlit here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from pipeline.errors import BusiError

MODELS = ("baseline", "refined")
MODEL_TITLES = {"baseline": "Baseline (whole image)", "refined": "Refined (lesion crop + whole image)"}
CASE_FILTERS = ("models disagree", "either model wrong", "both models wrong", "refined wrong", "baseline wrong")


class MetricsError(BusiError):
    """metrics.json is missing or unreadable."""


def load_metrics(path: str | os.PathLike) -> dict:
    """Parse metrics.json, raising MetricsError with what to do when it is missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"{path} not found: run `python -m pipeline evaluate` to score the models.")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MetricsError(f"{path} cannot be read ({exc}); re-run `python -m pipeline evaluate`.") from exc
    if "classifiers" not in data or "segmentation" not in data:
        raise MetricsError(f"{path} is not a metrics file of `python -m pipeline evaluate`.")
    return data


def classes(m: dict) -> list[str]:
    return list(m["classifiers"]["refined"]["test"]["per_class"])


def headline(m: dict, subset: str = "test") -> pd.DataFrame:
    """Rows accuracy / macro-F1 / macro-AUC / ECE with baseline, refined and change."""
    rows = []
    for key, title in (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1"), ("macro_auc", "Macro AUC (one-vs-rest)"),
                       ("ece", "Calibration error (ECE)")):
        b = m["classifiers"]["baseline"][subset].get(key)
        r = m["classifiers"]["refined"][subset].get(key)
        rows.append({"metric": title, "key": key, "baseline": b, "refined": r,
                     "change": None if b is None or r is None else r - b})
    return pd.DataFrame(rows)


def segmentation_summary(m: dict, subset: str = "test") -> dict:
    """Segmentation figures of ``subset`` (Dice, IoU, normal false-positive rate, counts)."""
    return dict(m["segmentation"].get(subset, {}))


def per_class_table(m: dict, model: str, subset: str = "test") -> pd.DataFrame:
    """The classification-report layout: rows per class, then accuracy, macro avg, weighted avg."""
    rep = m["classifiers"][model][subset]
    rows = {}
    for name, s in rep["per_class"].items():
        rows[name] = {"precision": s["precision"], "recall": s["recall"], "f1-score": s["f1"],
                      "support": int(s["support"])}
    df = pd.DataFrame.from_dict(rows, orient="index")
    total = int(df["support"].sum())
    weights = df["support"] / max(total, 1)
    df.loc["accuracy"] = [float("nan"), float("nan"), rep["accuracy"], total]
    macro = {c: float(df.loc[list(rows), c].mean()) for c in ("precision", "recall", "f1-score")}
    weighted = {c: float((df.loc[list(rows), c] * weights).sum()) for c in ("precision", "recall", "f1-score")}
    df.loc["macro avg"] = [macro["precision"], macro["recall"], macro["f1-score"], total]
    df.loc["weighted avg"] = [weighted["precision"], weighted["recall"], weighted["f1-score"], total]
    df["support"] = df["support"].astype(int)
    return df


def confusion(m: dict, model: str, subset: str = "test") -> pd.DataFrame:
    """Confusion matrix (rows: true class, columns: predicted class)."""
    cls = classes(m)
    return pd.DataFrame(m["classifiers"][model][subset]["confusion_matrix"], index=cls, columns=cls)


def roc_points(m: dict, model: str, subset: str = "test") -> dict[str, tuple[list[float], list[float], float]]:
    """Per class: (false-positive rates, true-positive rates, AUC)."""
    rep = m["classifiers"][model][subset]
    return {c: (rep["roc"][c]["fpr"], rep["roc"][c]["tpr"], rep["auc"][c]) for c in rep["roc"]}


def reliability(m: dict, model: str, subset: str = "test") -> pd.DataFrame:
    """Reliability bins with images (confidence, accuracy, count)."""
    bins = pd.DataFrame(m["classifiers"][model][subset]["reliability"])
    return bins[bins["count"] > 0].reset_index(drop=True)


def per_image(m: dict, subset: str = "test") -> pd.DataFrame:
    """One row per image: true label, both models' labels/confidences/correctness, Dice."""
    rows = []
    for r in m.get("per_image", {}).get(subset, []):
        b, f = r["baseline"], r["refined"]
        bl, rl = max(b, key=b.get), max(f, key=f.get)
        row = {"image": r["image"], "label": r["label"], "refined": rl, "refined_confidence": f[rl],
               "baseline": bl, "baseline_confidence": b[bl], "refined_correct": rl == r["label"],
               "baseline_correct": bl == r["label"], "agree": rl == bl, "dice": r.get("dice"),
               "predicted_lesion_fraction": r.get("predicted_lesion_fraction")}
        row.update({f"refined:{c}": v for c, v in f.items()})
        row.update({f"baseline:{c}": v for c, v in b.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def cases(df: pd.DataFrame, which: str) -> pd.DataFrame:
    """Rows of ``per_image`` matching one of CASE_FILTERS."""
    if df.empty:
        return df
    select = {
        "models disagree": ~df["agree"],
        "either model wrong": ~df["refined_correct"] | ~df["baseline_correct"],
        "both models wrong": ~df["refined_correct"] & ~df["baseline_correct"],
        "refined wrong": ~df["refined_correct"],
        "baseline wrong": ~df["baseline_correct"],
    }[which]
    return df[select].sort_values(["label", "image"]).reset_index(drop=True)


def dice_values(m: dict, subset: str = "test") -> pd.DataFrame:
    """Dice per lesion image with its class."""
    rows = [{"image": r["image"], "label": r["label"], "dice": r["dice"]}
            for r in m.get("per_image", {}).get(subset, []) if r.get("dice") is not None]
    return pd.DataFrame(rows, columns=["image", "label", "dice"])


def provenance(m: dict) -> list[str]:
    """Plain sentences saying how the numbers were obtained."""
    seg = m["segmentation"]
    cls = m["classifiers"]
    choices = m.get("choices", {})
    n_test = cls["refined"].get("test", {}).get("n")
    n_val = cls["refined"].get("val", {}).get("n")
    lines = [
        f"Scored by `{m.get('command', 'python -m pipeline evaluate')}` on {m.get('generated', 'an unknown date')} "
        f"with the split file `{m.get('split_file', '?')}` (SHA-256 {str(m.get('split_sha256', '?'))[:12]}…).",
        f"Test split: {n_test} images ({seg.get('test', {}).get('lesion_images', '?')} with a lesion, "
        f"{seg.get('test', {}).get('normal_images', '?')} normal); validation split: {n_val} images. "
        "Near-duplicate images never straddle subsets, so test images were never seen in training.",
        "End to end: the refined classifier is scored on the crop around the segmentation model's *predicted* "
        "mask, never the ground truth — as in real use.",
    ]
    if choices:
        temps = choices.get("temperature", {})
        lines.append(
            f"Choices made on the {choices.get('made_on', 'val')} split only: mask threshold "
            f"{choices.get('mask_threshold')}, softmax temperatures baseline {temps.get('raw', float('nan')):.2f} "
            f"and refined {temps.get('refined', float('nan')):.2f}, mirrored-input averaging "
            f"{'on' if any((choices.get('flip_tta') or {}).values()) else 'off'}, lesion-crop weight in the refined "
            f"answer {choices.get('fusion_weight', 1.0):g}. The test split was used once, to report."
        )
    models = m.get("models", {})
    if models:
        parts = [f"{name}: {info.get('backbone')} ({info.get('initialisation')}), best epoch {info.get('best_epoch')}"
                 for name, info in models.items()]
        lines.append("Models — " + "; ".join(parts) + ".")
    return lines
