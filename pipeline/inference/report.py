"""The JSON report of one diagnosis: everything the Diagnose page shows, in plain data."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict
from typing import Any

import numpy as np

DISCLAIMER = (
    "Research tool, not a medical device. Predictions are not a diagnosis and must not "
    "guide clinical decisions."
)
REPORT_VERSION = 4  # 2: the prediction section is the shared prediction record; 3: adds "scope";
# 4: a refused image's record has "status": "refused", null labels and the answer under "research_only"
NOT_ULTRASOUND = "This does not look like a breast ultrasound image"


def scope_statement(prediction: dict, analysed_anyway: bool | None = None) -> str:
    """One plain sentence on the scope check of a prediction record (``Prediction.to_record()``)."""
    in_scope = prediction.get("in_scope")
    if in_scope is None:
        return "The scope check was not run (the scope gate files are absent from the models folder)."
    score = prediction.get("scope_score")
    score_text = "" if score is None else f" (scope score {score:.2f}; at most 1 is in scope)"
    if in_scope:
        return f"The image looks like a breast-ultrasound frame{score_text}."
    reason = prediction.get("scope_reason") or "it is unlike the images the models were trained on"
    tail = (" It was analysed anyway at the user's request: the label is not meaningful."
            if analysed_anyway else " The label was computed for research only and is not meaningful.")
    return f"{NOT_ULTRASOUND}: {reason}{score_text}.{tail}"


def answer_of(prediction: dict) -> dict:
    """The label, confidence, probabilities and baseline of a prediction record: its own, or for a refused
    image the research-only answer (``research_only``), which is not meaningful."""
    refused = prediction.get("status") == "refused"
    return prediction["research_only"] if refused and prediction.get("research_only") else prediction


def json_safe(value: Any) -> Any:
    """Make numpy scalars, tuples and non-finite floats JSON-safe (recursively)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    return value


def model_versions(configs: dict) -> dict:
    """What identifies each model: backbone, initialisation, epochs, threshold/temperature, notes."""
    out = {}
    for name, cfg in configs.items():
        d = asdict(cfg) if not isinstance(cfg, dict) else dict(cfg)
        out[name] = {k: d.get(k) for k in ("name", "backbone", "initialisation", "image_size", "trained_epochs",
                                            "best_epoch", "threshold", "temperature", "split_file", "seed")}
    return out


def build_report(*, file_name: str | None, source: str, image_shape: tuple[int, int],
                 prediction: dict, measurements: dict,
                 warnings: list[str] | tuple[str, ...] = (), true_label: str | None = None,
                 dice: float | None = None, iou: float | None = None, gradcam: dict | None = None,
                 configs: dict | None = None, models_dir: str | None = None,
                 timings_ms: dict | None = None, display: dict | None = None,
                 analysed_anyway: bool | None = None,
                 disclaimer: str = DISCLAIMER, now: dt.datetime | None = None) -> dict:
    """A JSON-serialisable dict of one image's results (see README, Diagnose page).

    ``prediction`` is ``Prediction.to_record()``: the same record the CLI and the HTTP API give.
    ``analysed_anyway``: the user chose to see the result of an image the scope gate refused.
    """
    answer = answer_of(prediction)  # ground truth is compared with the research-only answer of a refused image
    label, baseline_label = answer["label"], answer["baseline"]["label"]
    report = {
        "report_version": REPORT_VERSION,
        "disclaimer": disclaimer,
        "generated": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "input": {"file_name": file_name, "source": source,
                  "height": int(image_shape[0]), "width": int(image_shape[1]), "warnings": list(warnings)},
        "prediction": prediction,
        "status": prediction.get("status", "ok"),
        "scope": {"in_scope": prediction.get("in_scope"), "score": prediction.get("scope_score"),
                  "reason": prediction.get("scope_reason"), "analysed_anyway": analysed_anyway,
                  "statement": scope_statement(prediction, analysed_anyway)},
        "measurements": measurements,
        "ground_truth": None,
        "gradcam": gradcam,
        "display": display,
        "models": {"folder": models_dir, "versions": model_versions(configs or {})},
        "timings_ms": timings_ms,
    }
    if true_label is not None or dice is not None:
        report["ground_truth"] = {
            "label": true_label, "dice": dice, "iou": iou,
            "refined_correct": None if true_label is None else label == true_label,
            "baseline_correct": None if true_label is None else baseline_label == true_label,
        }
    return json_safe(report)


def to_json(report: dict) -> str:
    """Pretty JSON text of a report (strict: no NaN)."""
    return json.dumps(report, indent=2, allow_nan=False) + "\n"
