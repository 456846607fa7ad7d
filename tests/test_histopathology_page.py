"""Streamlit AppTest of the Histopathology (IDC) page: with and without the pack, with and without the model,
uploads (H&E, an ultrasound frame, junk), the test gallery and the metrics beside the published ones.

The IDC model is the known-answer one (``idc_factory``) so the page runs its real path fast; the page over the
trained model is covered by the browser test once ``models/idc/`` is committed.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from idc_factory import he_like
from PIL import Image
from streamlit.testing.v1 import AppTest

from pipeline.views.histopathology import PACK_HELP

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "dashboard" / "views" / "histopathology.py")
APP = str(ROOT / "dashboard" / "app.py")
PICK = "Pick a test patch"


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def _run(path: str = PAGE) -> AppTest:
    at = AppTest.from_file(path, default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")
    return " ".join(str(e.value) for kind in kinds for e in getattr(at, kind))


@pytest.fixture
def with_pack(known_idc_models, idc_dir, monkeypatch):
    monkeypatch.setenv("BUSI_MODELS_DIR", str(known_idc_models))
    monkeypatch.setenv("IDC_DIR", str(idc_dir))
    return known_idc_models


@pytest.fixture
def without_pack(known_idc_models, tmp_path, monkeypatch):
    monkeypatch.setenv("BUSI_MODELS_DIR", str(known_idc_models))
    monkeypatch.setenv("IDC_DIR", str(tmp_path / "no_pack"))
    return known_idc_models


def test_page_with_the_pack_picks_test_patches_and_shows_the_gallery(with_pack, idc_test_pack):
    at = _run()
    text = _text(at)
    assert "not a medical device" in text and "Test patches by patient" in text
    assert "patches (" in text and "the model calls" in text  # the gallery of the first test patient
    at.radio(key="idc_source").set_value(PICK).run()
    assert not at.exception
    assert any(s.value.startswith("Prediction:") for s in at.subheader)
    patient = int(np.unique(idc_test_pack.patients)[3])
    n = int((idc_test_pack.patients == patient).sum())
    at.selectbox(key="idc_patient").set_value(patient).run()
    assert not at.exception
    assert f"{n} patches (" in _text(at)


def test_page_is_in_the_app_navigation(with_pack):
    at = AppTest.from_file(APP, default_timeout=240)
    at.switch_page("views/histopathology.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Histopathology: invasive ductal carcinoma (IDC)"]


def test_page_without_the_pack_still_classifies_uploads(without_pack, busi_dir):
    at = _run()
    assert PACK_HELP in _text(at) and at.radio(key="idc_source").options == ["Upload a patch or tile"]
    tile = he_like(np.random.default_rng(0), (120, 160), 200, 100)
    at.file_uploader(key="idc_upload").set_value(("tile.png", _png(tile), "image/png")).run()
    assert not at.exception
    assert any("cells" in s.value for s in at.subheader if s.value.startswith("Prediction:"))
    at.slider(key="idc_alpha").set_value(0.9).run()
    assert not at.exception
    frame = (busi_dir / "benign" / "benign (1).png").read_bytes()
    at.file_uploader(key="idc_upload").set_value(("frame.png", frame, "image/png")).run()
    errors = " ".join(e.value for e in at.error)
    assert "ultrasound" in errors and "Diagnose page" in errors
    assert not any(s.value.startswith("Prediction:") for s in at.subheader)
    at.file_uploader(key="idc_upload").set_value(("notes.png", b"plain text", "image/png")).run()
    assert "cannot be analysed" in " ".join(e.value for e in at.error)


def test_page_reads_the_metrics_file(known_idc_models, tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(known_idc_models, models)
    metrics = {"test": {"network": {"balanced_accuracy": 0.8612, "f1_idc": 0.7901, "auc": 0.9333},
                        "features": {"balanced_accuracy": 0.8101, "f1_idc": 0.7, "auc": 0.89}},
               "val": {"network": {"balanced_accuracy": 0.87}}, "how": "scored once on the 49 test patients"}
    (models / "idc" / "metrics.json").write_text(json.dumps(metrics))
    monkeypatch.setenv("BUSI_MODELS_DIR", str(models))
    monkeypatch.setenv("IDC_DIR", str(tmp_path / "no_pack"))
    at = _run()
    frames = [d.value for d in at.dataframe]
    comparison = frames[0]
    assert "Cruz-Roa et al. 2014 (CNN)" in comparison.index
    assert comparison.loc["This model (network), pack test patches", "IDC F1"] == "0.790"
    assert comparison.loc["Feature baseline (this project), pack test patches", "AUC"] == "0.890"
    assert comparison.loc["Janowczyk & Madabhushi 2016 (AlexNet)", "AUC"] == "—"
    assert "scored once on the 49 test patients" in _text(at) and "not measured on the same set" in _text(at)


def test_page_without_the_model_says_why_and_keeps_the_published_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("BUSI_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("IDC_DIR", str(tmp_path / "no_pack"))
    at = _run()
    assert "IDC model could not be loaded" in " ".join(e.value for e in at.error)
    assert "Cruz-Roa et al. 2014 (CNN)" in at.dataframe[0].value.index
