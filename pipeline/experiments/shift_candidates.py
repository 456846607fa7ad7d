"""``python -m pipeline experiment shift-candidates``: model folders compared on validation, clean and under other
scanners' display variations.

Each folder is a bundle (UNet, baseline, refined). On BUSI val + BUS-BRA fold 4 (the set the classifier choices are
made on), as they are and under ``per_image`` display variations of each image (``shift.shifted_views``, the views the
scope gate's threshold is set on), every folder's baseline and refined answers are scored untempered, with flip
averaging on, on the same predicted masks (the first folder's UNet), the refined answer at each fusion weight:
accuracy, macro-F1, log-loss, normal recall and normal -> malignant. The test splits are not read: this is how a
retrained pair of classifiers is kept, or dropped, before ``python -m pipeline evaluate``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from pipeline.config import CLASS_NAMES, model_path
from pipeline.data.items import labels, load_busbra_items, load_items
from pipeline.experiments.candidates import WEIGHTS, scores
from pipeline.inference import decisions
from pipeline.inference.bundle import file_sha256
from pipeline.paths import MODELS_DIR, SPLIT_CSV
from pipeline.training.shift import shifted_views

DEFAULT_OUT = MODELS_DIR / "experiments" / "shift_candidates.json"
NORMAL, MALIGNANT = CLASS_NAMES.index("normal"), CLASS_NAMES.index("malignant")


def shift_scores(probs: np.ndarray, y: np.ndarray) -> dict:
    """``candidates.scores`` plus normal recall and the share of normal images called malignant."""
    pred, normal = probs.argmax(1), y == NORMAL
    return {**scores(probs, y), "normal_recall": round(float((pred[normal] == NORMAL).mean()), 4),
            "normal_to_malignant": round(float((pred[normal] == MALIGNANT).mean()), 4)}


def compare(models_dirs: list[str | Path], busi_root: str | Path, busbra_root: str | Path,
            per_image: int = 2, split_csv: str | Path = SPLIT_CSV) -> dict:
    """Validation scores of each folder's classifiers, clean and shifted (see the module docstring)."""
    from pipeline.experiments.two_branch import predictor_for

    items = load_items(busi_root, "val", split_csv) + load_busbra_items(busbra_root, "val")
    y = labels(items)
    shifted = shifted_views(items, per_image)
    views = {"clean": ([it.gray for it in items], y), "shifted": (shifted[0], np.repeat(y, per_image))}
    masks: dict[str, list[np.ndarray]] = {}
    table = {}
    for folder in models_dirs:
        predictor = predictor_for(folder).with_settings({n: {"flip_tta": True} for n in ("raw", "refined")})
        rows = {}
        for view, (grays, truth) in views.items():
            if view not in masks:
                masks[view] = predictor.segment_batch(grays)
            out = predictor.classify_batch(grays, masks[view], temper=False)
            rows[view] = {"baseline": shift_scores(out.baseline, truth),
                          **{f"refined at {w}": shift_scores(decisions.fuse(out.baseline, out.crop, w), truth)
                             for w in WEIGHTS if w > 0}}
            print(f"{folder} {view}: baseline {rows[view]['baseline']}, refined at 0.5 {rows[view]['refined at 0.5']}",
                  flush=True)
        table[str(folder)] = {"sha256": {n: file_sha256(model_path(n, folder)) for n in ("raw", "refined")},
                              "scores": rows}
    return {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": "python -m pipeline experiment shift-candidates " + " ".join(map(str, models_dirs)),
            "validation": f"BUSI val + BUS-BRA fold 4 ({len(items)} images), clean and {per_image} display "
                          f"variations of each ({len(shifted[0])} views)",
            "masks": f"predicted by {Path(models_dirs[0]) / 'unet.keras'} with its saved settings",
            "settings": "untempered, flip averaging on", "candidates": table}


def run(models_dirs: list[str | Path], busi_root: str | Path, busbra_root: str | Path,
        out: str | Path | None = None, per_image: int = 2) -> Path:
    """``compare`` and write the JSON (default ``models/experiments/shift_candidates.json``)."""
    path = Path(out) if out else DEFAULT_OUT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(compare(models_dirs, busi_root, busbra_root, per_image), indent=1) + "\n")
    return path
