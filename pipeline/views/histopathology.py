"""The Histopathology (IDC) page's back-end: uploads and test patches -> IDC answers, the patient gallery, the
model's metrics beside the published ones. Metrics are read from ``models/idc/metrics.json`` (written by the
IDC evaluation), never computed here. No streamlit here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import imageio
from pipeline.config import IDC_METRICS_FILE, idc_dir_in
from pipeline.inference.idc import IdcPredictor
from pipeline.inference.idc_answer import IdcAnswer, analyse
from pipeline.views.results import _number, _optional_json

# Published on the same 49 test patients, with ALL their patches (this pack holds a subset of them).
PUBLISHED = (
    {"source": "Cruz-Roa et al. 2014 (CNN)", "balanced_accuracy": 0.842, "f1_idc": 0.718, "auc": None},
    {"source": "Janowczyk & Madabhushi 2016 (AlexNet)", "balanced_accuracy": None, "f1_idc": 0.765, "auc": None},
    {"source": "Pack reference: 65 colour/texture features + gradient boosting", "balanced_accuracy": 0.827,
     "f1_idc": 0.731, "auc": 0.904},
)
PUBLISHED_CAVEAT = ("The published figures used all patches of the 49 test patients (1,935 in these sources, tens "
                    "of thousands in the original release); this model is scored on the pack's 657 test patches "
                    "of the same patients, so the numbers sit side by side but are not measured on the same set.")
METRIC_TITLES = {"balanced_accuracy": "balanced accuracy", "f1_idc": "IDC F1", "auc": "AUC", "accuracy": "accuracy",
                 "sensitivity": "sensitivity", "specificity": "specificity", "ece": "calibration error (ECE)"}
OTHER_TITLES = {"n": "patches", "precision_idc": "IDC precision", "recall_idc": "IDC recall", "threshold": "threshold",
                "log_loss": "log-loss", "brier": "Brier score"}
MODEL_TITLES = {"network": "This model (network)", "features": "Feature baseline (this project)"}
PACK_HELP = ("The IDC patch pack is not available here. It is a folder with `idc_pack.npz` (3,674 lossless 50x50 "
             "H&E patches of 279 patients, patient-level split): set the `IDC_DIR` environment variable to it "
             "(e.g. `IDC_DIR=/path/to/IDC make run`); see the pack's README for where it comes from. Uploading "
             "your own patch or tile works without it.")


def metrics_path(models_dir: str | os.PathLike) -> Path:
    return idc_dir_in(models_dir) / IDC_METRICS_FILE


def read_metrics(models_dir: str | os.PathLike) -> dict | None:
    """``models/idc/metrics.json`` as written by the IDC evaluation; None when missing or unreadable."""
    return _optional_json(metrics_path(models_dir))


def metrics_table(metrics: dict | None, subset: str = "test") -> pd.DataFrame:
    """One row per model entry of ``metrics[subset]`` (e.g. network, features) with its numeric figures; known
    figures first, in the published order. Empty when the file or the subset is absent."""
    section = (metrics or {}).get(subset)
    rows = []
    for model, figures in (section or {}).items() if isinstance(section, dict) else ():
        if not isinstance(figures, dict):
            continue
        flat = {**(figures.get("patch") or {}), **(figures.get("summary") or {}),  # as idc evaluate writes them
                **{k: v for k, v in figures.items() if not isinstance(v, dict)}}
        row = {k: _number(v) for k, v in flat.items() if _number(v) is not None}
        if row:
            rows.append({"model": MODEL_TITLES.get(model, model), **row})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).set_index("model")
    known = [k for k in METRIC_TITLES if k in df.columns]
    return df[known + [c for c in df.columns if c not in known]]


def comparison_table(metrics: dict | None) -> pd.DataFrame:
    """The published figures, then this project's test figures (balanced accuracy, IDC F1, AUC)."""
    rows = [dict(r) for r in PUBLISHED]
    ours = metrics_table(metrics, "test")
    for model, figures in ours.iterrows():
        rows.append({"source": f"{model}, pack test patches",
                     **{k: _number(figures.get(k)) for k in ("balanced_accuracy", "f1_idc", "auc")}})
    return pd.DataFrame(rows).set_index("source").astype(float).rename(columns=METRIC_TITLES)


def formatted(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Figures as text with ``digits`` decimals, "—" where absent (tables show what was published, no more)."""
    return df.map(lambda v: "—" if _number(v) is None else f"{float(v):.{digits}f}")


def how_lines(metrics: dict | None) -> list[str]:
    """What the evaluation file says about how the numbers were obtained (``how``: text, list or mapping)."""
    how = (metrics or {}).get("how")
    if how is None:
        return []
    if isinstance(how, str):
        return [how]
    if isinstance(how, dict):
        return [f"{k}: {v}" for k, v in how.items()]
    if isinstance(how, list):
        return [str(v) for v in how]
    return [str(how)]


# --- answers ---------------------------------------------------------------------------------------
def analyse_upload(predictor: IdcPredictor, data: bytes, name: str | None) -> IdcAnswer:
    """Decode uploaded bytes with the project's loader (content decides the format) and answer; raises
    ImageLoadError for a bad file or a tile of the wrong size."""
    return analyse(predictor, imageio.load_image(bytes(data), name=name), name)


def analyse_patch(predictor: IdcPredictor, patch: np.ndarray, name: str) -> IdcAnswer:
    """The answer for one pack patch (uint8 RGB)."""
    return analyse(predictor, imageio.image_from_array(patch, name=name), name)


def display_image(rgb: np.ndarray, min_side: int = 400) -> np.ndarray:
    """Enlarge a small picture by a whole factor (nearest neighbour, so each pixel stays sharp) for display."""
    factor = max(1, -(-min_side // max(1, min(rgb.shape[:2]))))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1) if factor > 1 else rgb


@dataclass(frozen=True)
class GalleryItem:
    """One test patch with its truth and the model's answer."""

    index: int  # row in the test subset
    patch: np.ndarray
    truth: str
    label: str
    probability: float

    @property
    def correct(self) -> bool:
        return self.truth == self.label

    def caption(self) -> str:
        mark = "right" if self.correct else "wrong"
        return f"true {self.truth} · model {self.label} ({self.probability:.0%} IDC) · {mark}"


def test_patients(patients: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Test patients with their patch and IDC counts (for the gallery's patient picker)."""
    df = pd.DataFrame({"patient": patients, "idc": labels.astype(int)})
    out = df.groupby("patient").agg(patches=("idc", "size"), idc_patches=("idc", "sum")).reset_index()
    return out.sort_values("patient").reset_index(drop=True)


def gallery(predictor: IdcPredictor, images: np.ndarray, labels: np.ndarray, patients: np.ndarray,
            patient: int) -> list[GalleryItem]:
    """The test patches of one patient with the model's calls (one batch through the predictor)."""
    rows = np.flatnonzero(patients == patient)
    if not len(rows):
        return []
    probs = predictor.probabilities(images[rows])
    calls = predictor.labels(probs)
    names = predictor.config.classes
    return [GalleryItem(int(i), images[i], names[int(labels[i])], names[int(c)], float(p))
            for i, p, c in zip(rows, probs, calls)]


def gallery_summary(items: list[GalleryItem]) -> str:
    """One sentence: how many of the patient's patches the model calls right."""
    if not items:
        return "No test patches for this patient."
    right = sum(i.correct for i in items)
    idc = sum(i.truth == "IDC" for i in items)
    return (f"{len(items)} patches ({idc} IDC by the pathologists' annotation); the model calls {right} of them "
            f"right ({right / len(items):.0%}).")
