"""``python -m pipeline experiment refined-candidates``: refined-classifier candidates compared on validation only.

Each candidate is a model folder (UNet, baseline, refined). On BUSI val + BUS-BRA fold 4 (the set the classifier
choices are made on), every folder's refined model is scored alone and averaged with its baseline at each fusion
weight, untempered, with flip averaging on, on the same predicted masks (the first folder's UNet). The test
splits are not read: this is how a candidate is chosen, or dropped, before ``python -m pipeline evaluate``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from pipeline import metrics
from pipeline.config import CLASS_NAMES, ModelConfig, config_path, model_path
from pipeline.data.items import labels, load_busbra_items, load_items
from pipeline.inference import decisions
from pipeline.inference.bundle import file_sha256
from pipeline.paths import MODELS_DIR, SPLIT_CSV

DEFAULT_OUT = MODELS_DIR / "experiments" / "refined_candidates.json"
WEIGHTS = decisions.FUSION_WEIGHTS  # weight of the refined model; the rest is the baseline (0: baseline alone)


def scores(probs: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy, macro-F1 and log-loss of untempered probabilities."""
    report = metrics.classification_report(probs, y, CLASS_NAMES)
    return {"accuracy": round(report["accuracy"], 4), "macro_f1": round(report["macro_f1"], 4),
            "nll": round(metrics.log_loss(probs, y), 4)}


def compare(models_dirs: list[str | Path], busi_root: str | Path, busbra_root: str | Path,
            split_csv: str | Path = SPLIT_CSV) -> dict:
    """Validation scores of each folder's refined model, alone and fused with its baseline (see module docstring)."""
    from pipeline.experiments.two_branch import predictor_for

    busi = load_items(busi_root, "val", split_csv)
    items = busi + load_busbra_items(busbra_root, "val")
    y, n_busi = labels(items), len(busi)
    grays = [it.gray for it in items]
    masks, table = None, {}
    for folder in models_dirs:
        predictor = predictor_for(folder).with_settings({n: {"flip_tta": True} for n in ("raw", "refined")})
        if masks is None:
            masks = predictor.segment_batch(grays)
        out = predictor.classify_batch(grays, masks, temper=False)
        cfg = ModelConfig.load(config_path("refined", folder))
        rows = {}
        for w in WEIGHTS:
            p = decisions.fuse(out.baseline, out.crop, w)
            rows[str(w)] = {"all": scores(p, y), "busi_val": scores(p[:n_busi], y[:n_busi]),
                            "busbra_fold4": scores(p[n_busi:], y[n_busi:])}
        table[str(folder)] = {"refined_backbone": cfg.backbone, "refined_initialisation": cfg.initialisation,
                              "refined_sha256": file_sha256(model_path("refined", folder)),
                              "best_epoch": cfg.best_epoch, "by_fusion_weight": rows}
        print(f"{folder}: refined alone {rows['1.0']['all']}, with its baseline at 0.5 {rows['0.5']['all']}",
              flush=True)
    return {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": "python -m pipeline experiment refined-candidates " + " ".join(map(str, models_dirs)),
            "validation": f"BUSI val ({n_busi}) + BUS-BRA fold 4 ({len(items) - n_busi})",
            "masks": f"predicted by {Path(models_dirs[0]) / 'unet.keras'}, flip averaging on, untempered",
            "candidates": table}


def run(models_dirs: list[str | Path], busi_root: str | Path, busbra_root: str | Path,
        out: str | Path | None = None) -> Path:
    """``compare`` and write the JSON (default ``models/experiments/refined_candidates.json``)."""
    path = Path(out) if out else DEFAULT_OUT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(compare(models_dirs, busi_root, busbra_root), indent=1) + "\n")
    return path
