"""Reading ``models/metrics.json`` for the Models page: headline, tables, curves, error browser.

Everything comes from the file written by ``python -m pipeline evaluate``; nothing is evaluated
here. No streamlit here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from pipeline.config import mentions_busbra
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


# --- paired comparison, external check and scope gate (newer metrics files) -------------------------
NOT_EVALUATED = "not evaluated"
SUBSET_TITLES = {"test": "BUSI test split", "val": "BUSI validation split"}
# Headline numbers of the presentation view: (report key, title). BUS-BRA has no normal class, so its
# AUC is malignant vs benign (from P(malignant)) rather than the three-class macro AUC.
PRESENTATION_KEYS = (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1"), ("macro_auc", "Macro AUC"))
EXTERNAL_KEYS = (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1"), ("malignant_vs_benign_auc", "Malignant-vs-benign AUC"))


def _number(v) -> float | None:
    """``v`` as a float, or None when missing or not a number (NaN included)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def signed(v: float, digits: int = 1) -> str:
    """``+0.9`` / ``−2.5`` (a true minus sign, as in print)."""
    if round(v, digits) == 0:
        return f"{0:.{digits}f}"  # no "+0.0" or "−0.0"
    return f"{v:+.{digits}f}".replace("-", "−")


def format_p(p: float | None) -> str:
    """A p-value as people write it: ``0.73``, ``0.004``, ``< 0.001``."""
    p = _number(p)
    if p is None:
        return "?"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def comparison(m: dict, subset: str = "test") -> dict | None:
    """The paired baseline-vs-refined comparison of ``subset`` ("val"/"test"), None when not evaluated."""
    comp = (m.get("comparison") or {}).get(subset)
    return comp if isinstance(comp, dict) and _number(comp.get("difference")) is not None else None


def external(m: dict) -> dict | None:
    """The external BUS-BRA held-out-fold results, None when absent (BUS-BRA was not available)."""
    ext = (m.get("external") or {}).get("busbra_test")
    return ext if isinstance(ext, dict) and isinstance(ext.get("classifiers"), dict) else None


def significance(comp: dict | None, alpha: float = 0.05) -> str:
    """``"not a significant difference"`` / ``"a significant difference"`` from McNemar's p."""
    p = _number((comp or {}).get("mcnemar_p"))
    if p is None:
        return NOT_EVALUATED
    return f"a significant difference (p < {alpha:g})" if p < alpha else "not a significant difference"


def comparison_sentence(comp: dict | None) -> str:
    """Plain words: "refined − baseline accuracy = +0.9 points, 95% CI −2.5 to +4.2; McNemar p = 0.73: not a
    significant difference". ``NOT_EVALUATED`` when the comparison is missing."""
    if not comp or _number(comp.get("difference")) is None:
        return NOT_EVALUATED
    text = f"refined − baseline accuracy = {signed(100 * comp['difference'])} points"
    ci = comp.get("ci95") or []
    if len(ci) == 2 and None not in (_number(ci[0]), _number(ci[1])):
        text += f", 95% CI {signed(100 * ci[0])} to {signed(100 * ci[1])}"
    if _number(comp.get("mcnemar_p")) is not None:
        shown = format_p(comp["mcnemar_p"])
        text += f"; McNemar p {shown if shown.startswith('<') else '= ' + shown}: {significance(comp)}"
    return text


def discordant_sentence(comp: dict | None) -> str:
    """Which images the test looks at: "On 118 images, only the refined model was right on 4, only the baseline on 3."."""
    if not comp or comp.get("only_b_correct") is None or comp.get("only_a_correct") is None:
        return ""
    n = comp.get("n")
    if comp["only_b_correct"] == comp["only_a_correct"] == 0:
        return (f"The two models were right and wrong on exactly the same {n or ''} images, so there is no "
                "difference to test.").replace("  ", " ")
    return (f"{'On ' + str(n) + ' images, o' if n else 'O'}nly the refined model was right on {comp['only_b_correct']} "
            f"and only the baseline on {comp['only_a_correct']}; McNemar's exact test compares these two counts"
            + (f", the interval comes from {comp['bootstrap_samples']:,} bootstrap resamples of the images."
               if comp.get("bootstrap_samples") else "."))


def load_crossval(path: str | os.PathLike) -> dict | None:
    """``models/experiments/crossval.json`` (``python -m pipeline crossval``) when it holds finished folds, else None."""
    data = _optional_json(path)
    return data if data and data.get("folds") and data.get("summary") else None


def crossval_comparison(cv: dict | None) -> dict | None:
    """The pooled out-of-fold refined-vs-baseline comparison of the cross-validation, if any."""
    return (cv or {}).get("summary", {}).get("pooled")


def crossval_sentence(cv: dict | None) -> str:
    """Per-fold mean ± sd of both models and of their difference, with how the folds were trained."""
    if not cv:
        return "Cross-validation: not run (`python -m pipeline crossval`)."
    s, r = cv["summary"], cv.get("recipe", {})

    def ms(entry: dict, scale: float = 1.0, sign: bool = False) -> str:
        mean = signed(scale * entry["mean"]) if sign else f"{scale * entry['mean']:.3f}"
        return mean + ("" if entry.get("sd") is None else f" ± {scale * entry['sd']:.{1 if sign else 3}f}")

    return (f"Cross-validation on BUSI train + val ({s['folds_done']} of {cv.get('k', 5)} folds done, duplicate "
            f"groups whole; each fold's UNet and classifiers trained from {r.get('initialisation', 'ImageNet')} on "
            f"{r.get('data', 'BUSI')} for {r.get('seg_epochs')} and {r.get('cls_epochs')} epochs, last epoch kept, "
            "fixed test-time settings: a shorter recipe than the shipped models'): per fold, baseline accuracy "
            f"{ms(s['baseline_accuracy'])}, refined {ms(s['refined_accuracy'])}, refined − baseline "
            f"{ms(s['refined_minus_baseline_accuracy'], 100, sign=True)} points; lesion Dice {ms(s['lesion_dice'])}.")


def comparison_table(m: dict, cv: dict | None = None) -> pd.DataFrame:
    """One row per evaluation view (BUSI test, BUSI val, BUS-BRA test, cross-validation pooled out of fold):
    accuracies, difference, CI, p, significance.

    Views never evaluated are rows saying ``NOT_EVALUATED`` (older metrics files have no comparison)."""
    views = [(SUBSET_TITLES[s], comparison(m, s)) for s in ("test", "val")]
    views.append(("BUS-BRA held-out fold (external)", external_comparison(m)))
    views.append(("BUSI cross-validation (pooled)", crossval_comparison(cv)))
    rows = []
    for title, comp in views:
        if comp is None:
            rows.append({"evaluation": title, "images": None, "baseline accuracy": None, "refined accuracy": None,
                         "difference (points)": NOT_EVALUATED, "95% CI (points)": NOT_EVALUATED,
                         "McNemar p": NOT_EVALUATED, "significant?": NOT_EVALUATED})
            continue
        ci = comp.get("ci95") or [None, None]
        rows.append({
            "evaluation": title, "images": comp.get("n"),
            "baseline accuracy": _number(comp.get("accuracy_a")), "refined accuracy": _number(comp.get("accuracy_b")),
            "difference (points)": signed(100 * comp["difference"]),
            "95% CI (points)": (f"{signed(100 * ci[0])} to {signed(100 * ci[1])}"
                                if None not in (_number(ci[0]), _number(ci[1])) else NOT_EVALUATED),
            "McNemar p": format_p(comp.get("mcnemar_p")) if _number(comp.get("mcnemar_p")) is not None else NOT_EVALUATED,
            "significant?": ("yes (p < 0.05)" if significance(comp).startswith("a significant") else
                             "no" if significance(comp) != NOT_EVALUATED else NOT_EVALUATED),
        })
    return pd.DataFrame(rows)


def presentation_numbers(m: dict, source: str = "test") -> pd.DataFrame:
    """Headline rows (metric, baseline, refined) for the presentation view.

    ``source``: "test"/"val" (BUSI) or "busbra" (the external fold; empty frame when absent)."""
    if source == "busbra":
        ext = external(m)
        if ext is None:
            return pd.DataFrame(columns=["key", "metric", "baseline", "refined"])
        reports, keys = ext["classifiers"], EXTERNAL_KEYS
    else:
        reports, keys = {k: m["classifiers"].get(k, {}).get(source, {}) for k in MODELS}, PRESENTATION_KEYS
    rows = [{"key": key, "metric": title, "baseline": _number((reports.get("baseline") or {}).get(key)),
             "refined": _number((reports.get("refined") or {}).get(key))} for key, title in keys]
    return pd.DataFrame(rows, columns=["key", "metric", "baseline", "refined"])


def external_comparison(m: dict) -> dict | None:
    """The paired comparison on BUS-BRA's held-out fold, None when absent."""
    ext = external(m)
    comp = (ext or {}).get("comparison")
    return comp if isinstance(comp, dict) and _number(comp.get("difference")) is not None else None


def busbra_in_training(m: dict) -> bool:
    """True when metrics ``m`` say a model was trained on BUS-BRA's training folds."""
    return any(mentions_busbra(v.get("datasets")) for v in (m.get("models") or {}).values())


def external_provenance(m: dict) -> str:
    """How the BUS-BRA held-out fold relates to training, in one phrase."""
    if busbra_in_training(m):
        return ("Brazil, other scanners; patients never used in training or model choices — the models trained on "
                "the other folds of BUS-BRA")
    return "Brazil, other scanners, never used in training or model choices"


def external_summary(m: dict) -> list[str]:
    """Plain sentences about the BUS-BRA check (what it is, segmentation, 'normal' answers); [] when absent."""
    ext = external(m)
    if ext is None:
        return []
    lines = [f"{ext.get('dataset', 'BUS-BRA')} ({external_provenance(m)}): "
             f"held-out fold {ext.get('fold', '?')}, {ext.get('images', '?')} images of {ext.get('patients', '?')} "
             "patients, all biopsy-proven benign or malignant — it has no normal class, so a 'normal' answer counts "
             "as wrong."]
    normal = {k: (ext["classifiers"].get(k) or {}).get("predicted_normal") for k in MODELS}
    if all(v is not None for v in normal.values()):
        lines.append(f"Lesions called 'normal': baseline {normal['baseline']}, refined {normal['refined']}.")
    seg = ext.get("segmentation") or {}
    if _number(seg.get("dice_mean")) is not None:
        lines.append(f"Segmentation on {seg.get('lesion_images', '?')} lesion images: mean Dice {seg['dice_mean']:.3f}"
                     + (f" (median {seg['dice_median']:.3f})" if _number(seg.get("dice_median")) is not None else "")
                     + (f", mean IoU {seg['iou_mean']:.3f}" if _number(seg.get("iou_mean")) is not None else "") + ".")
    return lines


def external_per_scanner(m: dict) -> pd.DataFrame:
    """Accuracy per BUS-BRA scanner (rows: scanner; columns images, baseline, refined); empty when absent."""
    per = (external(m) or {}).get("per_scanner") or {}
    rows = [{"scanner": s, "images": v.get("images"), "baseline": _number(v.get("baseline")),
             "refined": _number(v.get("refined"))} for s, v in sorted(per.items())]
    return pd.DataFrame(rows, columns=["scanner", "images", "baseline", "refined"]).set_index("scanner")


def _optional_json(path: str | os.PathLike) -> dict | None:
    """A JSON object from ``path``, None when the file is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_scope_metrics(path: str | os.PathLike) -> dict | None:
    """``models/scope_metrics.json`` (the out-of-scope gate's evaluation), None when missing or unreadable."""
    return _optional_json(path)


def _share(entry: dict | None, key: str) -> tuple[float | None, int | None, int | None]:
    entry = entry or {}
    count_key = "accepted" if key == "share_accepted" else "refused"
    return _number(entry.get(key)), entry.get(count_key), entry.get("n")


def scope_summary(s: dict | None) -> pd.DataFrame:
    """Rows (what, images, share, meaning) for the Scope-gate section; "not evaluated" rows where absent."""
    s = s or {}
    us = s.get("ultrasound") or {}
    items = [
        ("Non-ultrasound pictures refused", s.get("non_ultrasound"), "share_refused", "higher is better"),
        ("BUSI test images accepted", (us.get("busi") or {}).get("test"), "share_accepted", "higher is better"),
        ("BUS-BRA test images accepted", (us.get("busbra") or {}).get("test"), "share_accepted", "higher is better"),
    ]
    for scanner, entry in sorted(((s.get("busbra_scanners") or {}).get("test") or {}).items()):
        items.append((f"BUS-BRA test, {scanner}: accepted", entry, "share_accepted", "higher is better"))
    rows = []
    for title, entry, key, _ in items:
        share, count, n = _share(entry, key)
        rows.append({"what": title, "images": n, "count": count, "share": share,
                     "shown": NOT_EVALUATED if share is None else f"{share:.1%} ({count} of {n})"})
    return pd.DataFrame(rows, columns=["what", "images", "count", "share", "shown"])


def scope_sources(s: dict | None) -> pd.DataFrame:
    """Non-ultrasound pictures refused, per kind of picture (mammogram, CT / MRI, document, photo...) or, in files
    written before kinds were recorded, per source; empty when absent."""
    corpus = (s or {}).get("non_ultrasound") or {}
    key, by = ("kind", corpus["by_kind"]) if corpus.get("by_kind") else ("source", corpus.get("by_source") or {})
    rows = [{key: k, "pictures": v.get("n"), "refused": v.get("refused"), "share refused": _number(v.get("share_refused"))}
            for k, v in sorted(by.items())]
    return pd.DataFrame(rows, columns=[key, "pictures", "refused", "share refused"])


SCOPE_VIEWS = {"shifted": "display variations", "lesion_free_regions": "lesion-free regions"}


def scope_shifted(s: dict | None) -> pd.DataFrame:
    """Ultrasound frames under display variations (tints, pictograms, gain, padding...) and lesion-free regions of
    lesion frames (normal tissue, magnified) the gate accepts, per dataset and subset (validation views of display
    variations set the threshold); empty in files written before they were measured."""
    names = {"busi": "BUSI", "busbra": "BUS-BRA"}
    rows = [{"frames": what, "dataset": names.get(ds, ds), "subset": subset, "views": e.get("n"),
             "accepted": e.get("accepted"), "share accepted": _number(e.get("share_accepted"))}
            for key, what in SCOPE_VIEWS.items()
            for ds, subsets in ((s or {}).get(key) or {}).items() for subset, e in subsets.items()
            if subset != "train"]
    return pd.DataFrame(rows, columns=["frames", "dataset", "subset", "views", "accepted", "share accepted"])


SHIFT_COLUMNS = {"accuracy": "accuracy", "normal_recall": "normal recall", "normal_to_malignant": "normal → malignant",
                 "benign_recall": "benign recall", "malignant_recall": "malignant recall"}


def load_shift(path: str | os.PathLike) -> dict | None:
    """``models/shift_metrics.json`` (``python -m pipeline shift``), or None when absent or unreadable."""
    s = _optional_json(path)
    return s if s and isinstance(s.get("datasets"), dict) else None


def shift_table(s: dict, dataset: str) -> pd.DataFrame:
    """One row per condition (clean first): baseline and refined figures, Dice, normal outlined, scope accepted."""
    rows = []
    for condition, c in s["datasets"][dataset].items():
        variation, _, strength = condition.partition(":")
        row = {"variation": variation, "strength": strength or "—", "images": c.get("images")}
        for key, label in SHIFT_COLUMNS.items():
            for model in ("baseline", "refined"):
                row[f"{model} {label}"] = (c.get(model) or {}).get(key)
        row["refined − baseline accuracy"] = (None if row["refined accuracy"] is None or row["baseline accuracy"] is None
                                              else row["refined accuracy"] - row["baseline accuracy"])
        row.update({"lesion Dice": c.get("dice"), "normal frames outlined": c.get("normal_outlined"),
                    "scope accepted": c.get("scope_accepted")})
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.dropna(axis=1, how="all")  # e.g. no normal class in BUS-BRA
