"""``python -m pipeline experiment no-lesion-bias``: should the refined answer lean to "normal" when the UNet finds
no lesion?

The candidate rule: where the UNet's mask is empty (no pixel reaches its presence gate), the normal class's odds in
the refined answer are multiplied by ``exp(bias)`` (``with_no_lesion_bias``); elsewhere the answer is unchanged, and
the baseline never changes. It is scored on validation only, on the views of ``experiment shift-candidates`` (BUSI
val + BUS-BRA fold 4 clean, under two display variations of each image, the lesion-free regions of their lesion
frames: normal tissue of all five scanners, and their lesion frames with the lesion erased), with the models' own
settings (mask threshold, presence gate, flip averaging, fusion weight; untempered). Per bias: log-loss and its
standard error, class-balanced log-loss over the clean images and the regions together, and per view how often
normal tissue is called normal, lesions are called normal (all, and those the UNet outlined), and malignant lesions
are called normal. The test splits are not read.

Two other places to apply the same odds factor are scored beside it (``other_rules``): only where the UNet's peak
lesion probability stays below a level (graded "no lesion" evidence: does a faint peak tell a missed lesion from
normal tissue?), and on every frame (a shift of the class prior, as for a site where most frames show normal
tissue). ``unet_peak_of_empty_masks`` gives the quartiles of that peak among the frames left empty, per dataset and
class.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from pipeline import metrics
from pipeline.config import CLASS_NAMES
from pipeline.data.items import load_busbra_items, load_items
from pipeline.paths import MODELS_DIR, SPLIT_CSV

DEFAULT_OUT = MODELS_DIR / "experiments" / "no_lesion_bias.json"
BIASES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
PEAK_LEVELS = (0.5, 0.1)
NORMAL, MALIGNANT = CLASS_NAMES.index("normal"), CLASS_NAMES.index("malignant")


def with_no_lesion_bias(probs: np.ndarray, empty: np.ndarray, bias: float) -> np.ndarray:
    """``probs`` with the normal class's odds multiplied by ``exp(bias)`` where ``empty`` (no lesion outlined)."""
    out = np.array(probs, np.float64)
    out[np.asarray(empty, bool), NORMAL] *= np.exp(bias)
    return out / out.sum(1, keepdims=True)


def class_balanced_nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean over the classes present of each class's mean log-loss (each class counts the same, whatever its size)."""
    losses = metrics.per_image_log_loss(probs, y)
    return float(np.mean([losses[y == c].mean() for c in np.unique(y)]))


def call_rates(probs: np.ndarray, y: np.ndarray, sources: np.ndarray, empty: np.ndarray) -> dict:
    """Per dataset: normal images called normal, lesions called normal (all of them, and those the UNet outlined),
    malignant lesions called normal."""
    pred, out, outlined = probs.argmax(1), {}, ~np.asarray(empty, bool)
    for name in ("BUSI", "BUS-BRA"):
        sel = sources == name
        rates = {}
        for key, group in (("normal_called_normal", sel & (y == NORMAL)), ("lesions_called_normal", sel & (y != NORMAL)),
                           ("outlined_lesions_called_normal", sel & (y != NORMAL) & outlined),
                           ("malignant_called_normal", sel & (y == MALIGNANT))):
            if group.any():
                rates[key] = f"{int((pred[group] == NORMAL).sum())}/{int(group.sum())}"
        if rates:
            out[name] = rates
    return out


def score_biases(views: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                 biases: tuple[float, ...] = BIASES, where: dict[str, np.ndarray] | None = None) -> dict:
    """view name -> (refined probabilities, labels, empty-mask flags, datasets): the table for each bias.
    ``where``: view name -> the frames the bias applies to (default: those with an empty mask)."""
    table = {}
    for b in biases:
        adjusted = {v: with_no_lesion_bias(p, e if where is None else where[v], b) for v, (p, _, e, _) in views.items()}
        row = {}
        for v, (_, y, empty, src) in views.items():
            losses = metrics.per_image_log_loss(adjusted[v], y)
            row[v] = {"nll": round(float(losses.mean()), 4),
                      "nll_se": round(float(losses.std(ddof=1) / np.sqrt(len(y))), 4) if len(y) > 1 else None,
                      **call_rates(adjusted[v], y, src, empty)}
        if "clean" in views and "lesion-free regions" in views:
            both = ("clean", "lesion-free regions")
            row["class_balanced_nll_clean_and_regions"] = round(class_balanced_nll(
                np.concatenate([adjusted[v] for v in both]), np.concatenate([views[v][1] for v in both])), 4)
        table[str(b)] = row
    return table


def compare(models_dir: str | Path, busi_root: str | Path, busbra_root: str | Path, per_image: int = 2,
            split_csv: str | Path = SPLIT_CSV, limit: int | None = None, command: str | None = None) -> dict:
    """The shipped models' refined answers on the validation views, with and without the bias (module docstring).
    ``limit``: a few images per class only (smoke tests); ``command``: the command line to record."""
    from pipeline.experiments.shift_candidates import validation_views
    from pipeline.inference.decisions import lesion_mask
    from pipeline.inference.predictor import Predictor

    command = command or command_line(models_dir)
    predictor = Predictor(models_dir)
    cfg = predictor.configs
    busi_val = load_items(busi_root, "val", split_csv, limit)
    views = validation_views(busi_val, load_busbra_items(busbra_root, "val", limit), per_image)
    scored, peaks = {}, {}
    for name, (grays, y, _, sources) in views.items():
        maps = predictor.segment_probabilities(grays)
        masks = [lesion_mask(m, cfg["seg"].threshold, cfg["seg"].presence_threshold) for m in maps]
        refined = predictor.classify_batch(grays, masks, temper=False).refined
        scored[name] = (refined, np.asarray(y), np.array([not m.any() for m in masks]), np.asarray(sources))
        peaks[name] = np.array([float(m.max()) for m in maps])
        print(f"{name}: {len(grays)} images, {int(scored[name][2].sum())} with no lesion outlined", flush=True)
    rules = {f"UNet peak below {level}": {v: peaks[v] < level for v in scored} for level in PEAK_LEVELS}
    rules["every frame (class-prior shift)"] = {v: np.ones(len(s[1]), bool) for v, s in scored.items()}
    return {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": command,
            "rule": "where the UNet's mask is empty, the refined answer's normal odds times exp(bias); baseline unchanged",
            "validation": {v: len(s[1]) for v, s in scored.items()},
            "settings": {"mask_threshold": cfg["seg"].threshold, "presence_threshold": cfg["seg"].presence_threshold,
                         "flip_tta": cfg["refined"].flip_tta, "fusion_weight": cfg["refined"].fusion_weight,
                         "tempered": False},
            "no_lesion_outlined": {v: int(s[2].sum()) for v, s in scored.items()},
            "by_bias": score_biases(scored),
            "other_rules": {rule: score_biases(scored, where=where) for rule, where in rules.items()},
            "unet_peak_of_empty_masks": peak_quartiles(scored, peaks)}


def peak_quartiles(scored: dict, peaks: dict[str, np.ndarray]) -> dict:
    """Per view, dataset and class group (normal / lesion): how many frames the UNet left empty and the quartiles
    of their peak lesion probability."""
    out = {}
    for v, (_, y, empty, src) in scored.items():
        for name in ("BUSI", "BUS-BRA"):
            for group, sel in (("normal", y == NORMAL), ("lesion", y != NORMAL)):
                pick = (src == name) & sel & empty
                if ((src == name) & sel).any():
                    q = np.quantile(peaks[v][pick], [0.25, 0.5, 0.75]).round(3).tolist() if pick.any() else None
                    out.setdefault(v, {}).setdefault(name, {})[group] = {
                        "empty": f"{int(pick.sum())}/{int(((src == name) & sel).sum())}", "peak_quartiles": q}
    return out


def command_line(models_dir: str | Path, out: str | Path | None = None) -> str:
    """The CLI command that writes these results, as recorded in the JSON."""
    return f"python -m pipeline experiment no-lesion-bias --models-dir {models_dir}" + (f" --out {out}" if out else "")


def run(models_dir: str | Path, busi_root: str | Path, busbra_root: str | Path, out: str | Path | None = None,
        per_image: int = 2) -> Path:
    """``compare`` and write the JSON (default ``models/experiments/no_lesion_bias.json``)."""
    path = Path(out) if out else DEFAULT_OUT
    path.parent.mkdir(parents=True, exist_ok=True)
    results = compare(models_dir, busi_root, busbra_root, per_image, command=command_line(models_dir, out))
    path.write_text(json.dumps(results, indent=1) + "\n")
    return path
