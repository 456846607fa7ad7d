"""Experiment: does the lesion help once both datasets are used?  ``python -m pipeline experiment feature-heads``.

A CPU-sized probe of the models issue (training the networks on BUSI + BUS-BRA does not fit a 2-core session).
The shipped networks stay frozen; only a linear head is trained, on BUSI train + BUS-BRA training folds:

* **baseline head** — the whole-frame classifier's pooled features (1,280 values) only;
* **refined heads** (variants in ``HEADS``, one chosen on validation) — the same features, plus what the lesion
  adds: the crop classifier's pooled features or probabilities on the lesion-centred crop of the UNet's
  *predicted* mask, and/or BI-RADS-style descriptors of that mask (size, taller-than-wide, circularity,
  irregularity, number of regions, echogenicity and posterior shadowing).

Both heads get the same care: standardisation, balanced class weights, L2 strength chosen on the validation
sets (BUSI val + BUS-BRA fold 4) by log-loss from the same grid. Scored once on BUSI test and on BUS-BRA's
held-out fold 5, with the bootstrap interval and McNemar test of the difference. Masks are predicted for every
image (training images included) by the shipped UNet, so training looks like use. Results go to
``models/experiments/feature_heads.json``; nothing shipped changes.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from pipeline import metrics, paths
from pipeline.config import CLASS_NAMES
from pipeline.data.items import Item, labels, load_busbra_items, load_items
from pipeline.inference.measure import measure
from pipeline.inference.predictor import Predictor
from pipeline.inference.report import json_safe
from pipeline.nets import POOLED_LAYER

L2_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
DESCRIPTORS = ("has_lesion", "area_fraction", "log_aspect", "taller_than_wide", "circularity", "irregularity",
               "n_components", "echo_contrast", "posterior_shadow")


def mask_descriptors(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """BI-RADS-style numbers of a predicted mask (zeros when it is empty)."""
    m = measure(mask)
    if not m.area_px:
        return np.zeros(len(DESCRIPTORS), np.float32)
    x, y, w, h = m.bbox
    inside = gray[mask > 0].mean()
    ring = gray[max(0, y - h // 2):y + h + h // 2, max(0, x - w // 2):x + w + w // 2].mean()
    below = gray[y + h:min(gray.shape[0], y + h + h), x:x + w]
    beside = np.concatenate([gray[y + h:y + 2 * h, max(0, x - w):x].ravel(), gray[y + h:y + 2 * h, x + w:x + 2 * w].ravel()])
    shadow = (below.mean() - beside.mean()) / 255 if below.size and beside.size else 0.0
    return np.array([1.0, m.area_fraction, np.log(m.aspect_ratio or 1.0), float(bool(m.taller_than_wide)),
                     m.circularity or 0.0, m.irregularity or 0.0, min(m.n_components, 5),
                     (inside - ring) / 255, shadow], np.float32)


def extract(predictor: Predictor, items: list[Item], label: str) -> dict:
    """Predicted masks' descriptors and both classifiers' pooled features for ``items`` (chunked, with progress)."""
    out = {"whole": [], "crop": [], "desc": [], "base_p": [], "crop_p": []}
    for start in range(0, len(items), 32):
        chunk = items[start:start + 32]
        grays = [it.gray for it in chunk]
        masks = predictor.segment_batch(grays)
        wf, wp = predictor.baseline_features(grays, POOLED_LAYER)
        cf, cp = predictor.crop_features(grays, masks)
        out["whole"].append(wf)
        out["crop"].append(cf)
        out["base_p"].append(wp)
        out["crop_p"].append(cp)
        out["desc"].append(np.stack([mask_descriptors(g, m) for g, m in zip(grays, masks)]))
        print(f"{label}: {min(start + 32, len(items))}/{len(items)} images", flush=True)
    res = {k: np.concatenate(v) for k, v in out.items()}
    res["y"] = labels(items)
    return res


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, n_classes: int = len(CLASS_NAMES),
                 steps: int = 600, lr: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression with L2 and balanced class weights (full-batch Adam, deterministic)."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    cw = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    sw = cw[y] / cw[y].sum()
    onehot = np.eye(n_classes)[y]
    w, b = np.zeros((x.shape[1], n_classes)), np.zeros(n_classes)
    mw, vw, mb, vb = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
    for t in range(1, steps + 1):
        z = x @ w + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) * sw[:, None]
        gw, gb = x.T @ g + l2 * w, g.sum(0)
        for param, grad, m, v in ((w, gw, mw, vw), (b, gb, mb, vb)):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad ** 2
            param -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return w, b


def predict_logistic(x: np.ndarray, wb: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Class probabilities of a fitted head."""
    z = x @ wb[0] + wb[1]
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


HEADS = {
    "baseline": "whole-frame features (1,280)",
    "refined": "whole-frame + crop features + mask descriptors (2,569)",
    "refined_compact": "whole-frame features + crop classifier's probabilities + mask descriptors (1,292)",
    "refined_descriptors": "whole-frame features + mask descriptors (1,289)",
}


def design(f: dict, kind: str) -> np.ndarray:
    """Inputs of a head (see ``HEADS``): the baseline sees the whole frame only; the refined variants add the lesion."""
    parts = {"baseline": ["whole"], "refined": ["whole", "crop", "desc"], "refined_compact": ["whole", "crop_p", "desc"],
             "refined_descriptors": ["whole", "desc"]}[kind]
    return np.concatenate([f[k] for k in parts], axis=1)


def run(busi_root: str | Path, busbra_root: str | Path, models_dir: str | Path | None = None,
        cache: str | Path | None = None, out: str | Path | None = None) -> dict:
    """Extract (or reuse cached) features, fit both heads, choose L2 on val, score the test sets, write JSON."""
    cache = Path(cache or paths.CACHE_DIR / "feature_heads.npz")
    sets = {"busi_train": ("busi", "train"), "busi_val": ("busi", "val"), "busi_test": ("busi", "test"),
            "busbra_train": ("busbra", "train"), "busbra_val": ("busbra", "val"), "busbra_test": ("busbra", "test")}
    feats: dict[str, dict] = {}
    key = _cache_key(models_dir)
    data = np.load(cache) if cache.is_file() else None
    if data is not None and "key" in data.files and str(data["key"]) == key:
        for name in sets:
            feats[name] = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(name + "/")}
        print(f"features from {cache} (same models and split)", flush=True)
    else:
        predictor = Predictor(models_dir)
        for name, (ds, subset) in sets.items():
            items = load_items(busi_root, subset) if ds == "busi" else load_busbra_items(busbra_root, subset)
            feats[name] = extract(predictor, items, name)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, key=np.array(key), **{f"{n}/{k}": v for n, f in feats.items() for k, v in f.items()})

    def stack(names: list[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate([design(feats[n], kind) for n in names]),
                np.concatenate([feats[n]["y"] for n in names]))

    result = {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "command": "python -m pipeline experiment feature-heads",
              "train": ["busi_train", "busbra_train"], "choose_on": ["busi_val", "busbra_val"],
              "descriptors": list(DESCRIPTORS), "heads": {}, "test": {}}
    probs: dict[str, dict[str, np.ndarray]] = {}
    for kind in HEADS:
        x_tr, y_tr = stack(result["train"], kind)
        mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
        x_va, y_va = stack(result["choose_on"], kind)
        by_l2 = {}
        for l2 in L2_GRID:
            wb = fit_logistic((x_tr - mu) / sd, y_tr, l2)
            by_l2[l2] = metrics.log_loss(predict_logistic((x_va - mu) / sd, wb), y_va)
        best = min(by_l2, key=by_l2.get)
        wb = fit_logistic((x_tr - mu) / sd, y_tr, best)
        result["heads"][kind] = {"inputs": int(x_tr.shape[1]), "description": HEADS[kind],
                                 "train_images": int(len(y_tr)), "l2": best,
                                 "val_nll_by_l2": {str(k): v for k, v in by_l2.items()}}
        probs[kind] = {n: predict_logistic((design(feats[n], kind) - mu) / sd, wb) for n in feats}
        print(f"{kind} head: {x_tr.shape[1]} inputs, L2 {best} (val log-loss {by_l2[best]:.3f})", flush=True)
    # the refined variant is chosen on the validation sets only (log-loss), then compared with the baseline
    val_nll = {k: result["heads"][k]["val_nll_by_l2"][str(result["heads"][k]["l2"])] for k in HEADS if k != "baseline"}
    chosen = min(val_nll, key=val_nll.get)
    result["refined_variant_chosen_on_val"] = chosen
    print(f"refined variant chosen on val: {chosen} ({HEADS[chosen]})", flush=True)
    for name in ("busi_val", "busbra_val", "busi_test", "busbra_test"):
        y = feats[name]["y"]
        rep = {k: metrics.classification_report(probs[k][name], y, CLASS_NAMES) for k in HEADS}
        if name.startswith("busbra"):
            mal = CLASS_NAMES.index("malignant")
            for k in rep:
                fpr, tpr = metrics.roc_curve(y == mal, probs[k][name][:, mal])
                rep[k]["malignant_vs_benign_auc"] = metrics.auc(fpr, tpr)
        cmp = metrics.paired_accuracy_difference(y, probs["baseline"][name].argmax(1), probs[chosen][name].argmax(1))
        bucket = result["test"] if name.endswith("test") else result.setdefault("val", {})
        bucket[name] = {"n": int(len(y)), **{k: _summary(r) for k, r in rep.items()}, "comparison": cmp,
                          "shipped_baseline_accuracy": float((feats[name]["base_p"].argmax(1) == y).mean())}
        print(f"{name}: baseline head acc {rep['baseline']['accuracy']:.3f}, "
              + ", ".join(f"{k} {rep[k]['accuracy']:.3f}" for k in HEADS if k != "baseline")
              + f"; chosen {chosen} vs baseline (difference {100 * cmp['difference']:+.1f} points, 95% CI "
              f"{100 * cmp['ci95'][0]:+.1f} to {100 * cmp['ci95'][1]:+.1f}, McNemar p {cmp['mcnemar_p']:.3f})", flush=True)
    out = Path(out or paths.MODELS_DIR / "experiments" / "feature_heads.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_safe(result), indent=1, allow_nan=False) + "\n")
    print(f"wrote {out}", flush=True)
    return result


def _cache_key(models_dir: str | Path | None) -> str:
    """What the cached features depend on: the model files and the BUSI split (sizes and times, cheap)."""
    from pipeline.config import MODEL_FILES

    folder = Path(models_dir) if models_dir else paths.models_dir()
    parts = [folder / f for f in MODEL_FILES.values()] + [paths.SPLIT_CSV]
    return "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" if p.is_file() else f"{p}:missing"
                    for p in parts)


def _summary(rep: dict) -> dict:
    keys = ("accuracy", "macro_f1", "macro_auc", "malignant_vs_benign_auc")
    return {k: rep[k] for k in keys if k in rep}
