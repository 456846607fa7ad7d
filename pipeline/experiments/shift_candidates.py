"""``python -m pipeline experiment shift-candidates``: model folders compared on validation, clean and under other
scanners' display variations.

Each folder is a bundle (UNet, baseline, refined). Its UNet's flip averaging, mask threshold and lesion-presence gate
are chosen on BUSI val by ``evaluate``'s rules (``evaluate.choose_seg``), so a freshly trained UNet is judged with the
settings it would ship with. On BUSI val + BUS-BRA fold 4 (the set the classifier choices are made on) three views
are scored: the images as they are; ``per_image`` display variations of each (``shift.shifted_views``, the views the
scope gate's threshold is set on), their masks moved with the pixels; and lesion-free regions cut from their lesion
frames well away from the lesion (``regions.lesion_free_items``, one per frame where there is room), normal tissue from
all five scanners (BUS-BRA has no normal frames), the nearest stand-in here for a normal frame from another scanner;
and whole lesion frames with the lesion erased (``regions.lesion_erased_items``), normal tissue at the frame's own
scale (in-distribution for a candidate trained with ``--lesion-erased``: read it as a check, not as a win).
Per view: lesion Dice (BUSI, BUS-BRA), the share of lesion-free images outlined, and the baseline's and the refined
answer's (at each fusion weight, on the folder's own masks) accuracy, macro-F1, log-loss, normal recall and
normal -> malignant, untempered, with flip averaging on. The test splits are not read: this is how a retrained model
is kept, or dropped, before ``python -m pipeline evaluate``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from pipeline import metrics
from pipeline.config import CLASS_NAMES, model_path
from pipeline.data.items import labels, load_busbra_items, load_items
from pipeline.experiments.candidates import WEIGHTS, scores
from pipeline.inference import decisions
from pipeline.inference.bundle import file_sha256
from pipeline.paths import MODELS_DIR, SPLIT_CSV
from pipeline.training.evaluate import choose_seg
from pipeline.training.regions import lesion_erased_items, lesion_free_items
from pipeline.training.shift import REGION_SEED, shifted_views

DEFAULT_OUT = MODELS_DIR / "experiments" / "shift_candidates.json"
NORMAL, MALIGNANT = CLASS_NAMES.index("normal"), CLASS_NAMES.index("malignant")


def shift_scores(probs: np.ndarray, y: np.ndarray) -> dict:
    """``candidates.scores`` plus normal recall and the share of normal images called malignant."""
    pred, normal = probs.argmax(1), y == NORMAL
    out = ({"normal_recall": round(float((pred[normal] == NORMAL).mean()), 4),
            "normal_to_malignant": round(float((pred[normal] == MALIGNANT).mean()), 4)} if normal.any()
           else {"normal_recall": None, "normal_to_malignant": None})  # (BUS-BRA alone has no normal frame)
    if normal.all():  # lesion-free regions: accuracy is normal recall, macro-F1 means nothing
        return {"nll": round(metrics.log_loss(probs, y), 4), **out}
    return {**scores(probs, y), **out}


def seg_scores(preds: list[np.ndarray], truths: list[np.ndarray], sources: np.ndarray) -> dict:
    """Lesion Dice per dataset and the share of lesion-free images given a lesion."""
    out = {}
    for name in ("BUSI", "BUS-BRA"):
        sel = [i for i in np.flatnonzero(sources == name) if truths[i].any()]
        if sel:
            out[f"dice_{name}"] = round(float(np.mean([metrics.dice(preds[i], truths[i]) for i in sel])), 4)
    empty = [i for i, t in enumerate(truths) if not t.any()]
    if empty:
        out["lesion_free_outlined"] = round(float(np.mean([preds[i].any() for i in empty])), 4)
        out["lesion_free_images"] = len(empty)
    return out


def validation_views(busi_val: list, busbra_val: list, per_image: int) -> dict[str, tuple]:
    """view name -> (grays, class labels, ground-truth masks, dataset of each image)."""
    items = busi_val + busbra_val
    y = labels(items)
    sources = np.array(["BUSI"] * len(busi_val) + ["BUS-BRA"] * len(busbra_val))
    shifted = shifted_views(items, per_image)
    regions = lesion_free_items(items, 1, REGION_SEED)
    busi_names = {it.image for it in busi_val}
    erased = lesion_erased_items(items, REGION_SEED)

    def origin(extra: list) -> np.ndarray:
        return np.array(["BUSI" if it.image.split("#")[0] in busi_names else "BUS-BRA" for it in extra])

    return {"clean": ([it.gray for it in items], y, [it.mask for it in items], sources),
            "shifted": (shifted.grays, np.repeat(y, per_image), shifted.masks, np.repeat(sources, per_image)),
            "lesion-free regions": ([it.gray for it in regions], labels(regions), [it.mask for it in regions],
                                    origin(regions)),
            "lesion-erased frames": ([it.gray for it in erased], labels(erased), [it.mask for it in erased],
                                     origin(erased))}


def compare(models_dirs: list[str | Path], busi_root: str | Path, busbra_root: str | Path,
            per_image: int = 2, split_csv: str | Path = SPLIT_CSV, limit: int | None = None) -> dict:
    """Validation scores of each folder's UNet and classifiers, clean, shifted and on lesion-free regions (see the
    module docstring). ``limit``: a few images per class only (smoke tests)."""
    from pipeline.experiments.two_branch import predictor_for

    busi_val = load_items(busi_root, "val", split_csv, limit)
    busbra_val = load_busbra_items(busbra_root, "val", limit)
    views = validation_views(busi_val, busbra_val, per_image)
    masks: dict[tuple, list[np.ndarray]] = {}
    table = {}
    for folder in models_dirs:
        base = predictor_for(folder)
        seg = choose_seg(base, busi_val)
        predictor = base.with_settings({"seg": seg, **{n: {"flip_tta": True} for n in ("raw", "refined")}})
        seg_key = (file_sha256(model_path("seg", folder)), seg["flip_tta"], seg["threshold"], seg["presence_threshold"])
        rows = {}
        for view, (grays, truth, true_masks, sources) in views.items():
            if (seg_key, view) not in masks:
                masks[seg_key, view] = predictor.segment_batch(grays)
            pred_masks = masks[seg_key, view]
            out = predictor.classify_batch(grays, pred_masks, temper=False)
            rows[view] = {"images": len(grays), "segmentation": seg_scores(pred_masks, true_masks, sources),
                          "baseline": shift_scores(out.baseline, truth),
                          **{f"refined at {w}": shift_scores(decisions.fuse(out.baseline, out.crop, w), truth)
                             for w in WEIGHTS if w > 0}}
            print(f"{folder} {view}: {rows[view]['segmentation']}, baseline {rows[view]['baseline']}, "
                  f"refined at 0.5 {rows[view]['refined at 0.5']}", flush=True)
        table[str(folder)] = {"sha256": {n: file_sha256(model_path(n, folder)) for n in ("seg", "raw", "refined")},
                              "seg_settings_chosen_on_busi_val": {k: seg[k] for k in
                                                                  ("flip_tta", "threshold", "presence_threshold")},
                              "scores": rows}
    return {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": "python -m pipeline experiment shift-candidates " + " ".join(map(str, models_dirs)),
            "validation": f"BUSI val + BUS-BRA fold 4 ({len(views['clean'][0])} images), clean and {per_image} "
                          f"display variations of each ({len(views['shifted'][0])} views), and "
                          f"{len(views['lesion-free regions'][0])} lesion-free regions of their lesion frames and "
                          f"{len(views['lesion-erased frames'][0])} of those frames with the lesion erased",
            "masks": "each folder's own UNet, its flip averaging, threshold and presence gate chosen on BUSI val",
            "settings": "untempered, flip averaging on", "candidates": table}


def run(models_dirs: list[str | Path], busi_root: str | Path, busbra_root: str | Path,
        out: str | Path | None = None, per_image: int = 2) -> Path:
    """``compare`` and write the JSON (default ``models/experiments/shift_candidates.json``)."""
    path = Path(out) if out else DEFAULT_OUT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(compare(models_dirs, busi_root, busbra_root, per_image), indent=1) + "\n")
    return path
