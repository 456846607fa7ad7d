"""``python -m pipeline experiment caliper-marks``: do the networks lean on caliper marks and burned-in text?

Many BUSI lesion frames carry the radiologist's calipers (white crosses, dotted lines) and text; its normal frames
rarely do, so a network can learn "marks mean a lesion". Two ways of looking, on validation only (BUSI val and
BUS-BRA fold 4; the test splits are not read), with the shipped models and their own settings:

- **marks added**: each image also under the shift benchmark's ``calipers_text`` variation (crosses at the lesion's
  extremes, or mid-frame on a normal frame, and text), mild and strong, sent through the upload loader;
- **marks removed**: every view again with its thin bright marks (the border rule's marks: a white top-hat of
  ``preprocess.MARK_SIDE`` px, at least ``MARK_CONTRAST`` above its surroundings and ``MARK_LEVEL`` bright) filled in
  from their surroundings (``cv2.inpaint``) before the Predictor sees the frame.

Per view and way: baseline and refined accuracy, macro-F1, normal recall and normal -> malignant (untempered, as
``shift-candidates`` scores them), lesion Dice per dataset, normal frames outlined, and the share of pixels marked.
Nothing here is shipped: the networks were trained with the marks in their frames.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import cv2
import numpy as np

from pipeline import preprocess
from pipeline.data.items import Item, labels, load_busbra_items, load_items
from pipeline.paths import MODELS_DIR, SPLIT_CSV
from pipeline.preprocess import thin_marks

DEFAULT_OUT = MODELS_DIR / "experiments" / "caliper_marks.json"
INPAINT_RADIUS = 3


def remove_marks(gray: np.ndarray) -> np.ndarray:
    """``gray`` with its thin bright marks filled in from their surroundings (unchanged when it has none)."""
    marks = thin_marks(gray)
    if not marks.any():
        return gray
    return cv2.inpaint(np.ascontiguousarray(gray), marks.astype(np.uint8), INPAINT_RADIUS, cv2.INPAINT_TELEA)


def caliper_views(items: list[Item]) -> dict[str, tuple[list[np.ndarray], list[np.ndarray]]]:
    """View name -> (frames as the loader reads them, ground-truth masks): clean and under ``calipers_text``."""
    from pipeline.training.shift import STRENGTHS, varied_upload

    views = {"clean": ([it.gray for it in items], [it.mask for it in items])}
    for level, strength in enumerate(STRENGTHS):
        grays, masks = [], []
        for it in items:
            loaded, mask = varied_upload(it, "calipers_text", level)
            grays.append(loaded.pixels)
            masks.append(mask)
        views[f"calipers_text:{strength}"] = (grays, masks)
    return views


def score_view(predictor, grays: list[np.ndarray], truths: list[np.ndarray], y: np.ndarray,
               sources: np.ndarray) -> dict:
    """Segmentation and classification scores of one view (``shift_candidates``' scorers, untempered)."""
    from pipeline.experiments.shift_candidates import seg_scores, shift_scores

    masks = predictor.segment_batch(grays)
    out = predictor.classify_batch(grays, masks, temper=False)
    return {"marked_pixels": round(float(np.mean([thin_marks(g).mean() for g in grays])), 5),
            **seg_scores(masks, truths, sources),
            "baseline": shift_scores(out.baseline, y), "refined": shift_scores(out.refined, y)}


def compare(models_dir: str | Path, busi_root: str | Path, busbra_root: str | Path | None = None,
            split_csv: str | Path = SPLIT_CSV, limit: int | None = None) -> dict:
    """Every view with the marks as they are and removed (module docstring). ``limit``: a few images per class."""
    from pipeline.inference.predictor import Predictor

    predictor = Predictor(models_dir)
    sets = {"BUSI val": load_items(busi_root, "val", split_csv, limit)}
    if busbra_root is not None:
        sets["BUS-BRA fold 4"] = load_busbra_items(busbra_root, "val", limit)
    table: dict = {}
    for set_name, items in sets.items():
        y, sources = labels(items), np.array(["BUS-BRA" if set_name.startswith("BUS-BRA") else "BUSI"] * len(items))
        for view, (grays, truths) in caliper_views(items).items():
            for way, frames in (("as they are", grays), ("marks removed", [remove_marks(g) for g in grays])):
                table.setdefault(set_name, {}).setdefault(view, {})[way] = score_view(predictor, frames, truths, y,
                                                                                      sources)
                print(f"{set_name} / {view} / {way}: done", flush=True)
    return {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": f"python -m pipeline experiment caliper-marks --models-dir {models_dir}",
            "images": {k: len(v) for k, v in sets.items()},
            "marks": {"rule": "white top-hat >= mark_contrast and level >= mark_level, dilated 1 px; cv2.inpaint "
                              f"(Telea, radius {INPAINT_RADIUS})", "mark_side": preprocess.MARK_SIDE,
                      "mark_contrast": preprocess.MARK_CONTRAST, "mark_level": preprocess.MARK_LEVEL},
            "scores": table}


def run(models_dir: str | Path, busi_root: str | Path, busbra_root: str | Path | None = None,
        out: str | Path | None = None) -> Path:
    """``compare`` and write the JSON (default ``models/experiments/caliper_marks.json``)."""
    path = Path(out) if out else DEFAULT_OUT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(compare(models_dir, busi_root, busbra_root), indent=1) + "\n")
    return path
