"""The JSON report and the upload handling of the Diagnose page (with a stand-in predictor)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from bad_inputs import EXPECTED_KEYWORDS, bad_input_corpus, encode, speckle

from pipeline.config import ModelConfig
from pipeline.errors import ImageLoadError
from pipeline.inference.predictor import Prediction
from pipeline.inference.report import DISCLAIMER, build_report, to_json
from pipeline.views import diagnosis

CLASSES = ("benign", "malignant", "normal")


class FakePredictor:
    """Predicts a centred box as the lesion and fixed probabilities."""

    classes = CLASSES
    models_dir = "fake"
    configs = {n: ModelConfig(name=n, image_size=224) for n in ("seg", "raw", "refined")}

    def predict(self, image, rgb=None):
        gray = np.asarray(image)
        mask = np.zeros(gray.shape, np.uint8)
        h, w = gray.shape
        mask[h // 4: h // 2, w // 4: w // 2] = 1
        return Prediction("malignant", {"benign": 0.2, "malignant": 0.7, "normal": 0.1}, "benign",
                          {"benign": 0.6, "malignant": 0.3, "normal": 0.1}, mask, float(mask.mean()),
                          {"total": 1.0})


def test_report_is_strict_json_with_everything():
    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    pred = Prediction("benign", {"benign": np.float32(0.8), "malignant": 0.1, "normal": 0.1},
                      "normal", {"benign": 0.3, "malignant": 0.1, "normal": 0.6}, np.zeros((10, 20), np.uint8), 0.0)
    rep = build_report(file_name="a.png", source="upload", image_shape=(10, 20), prediction=pred.to_record(),
                       measurements={"area_px": np.int64(5), "circularity": float("nan")}, warnings=("w",),
                       true_label="benign", dice=0.5, iou=1 / 3, configs=FakePredictor.configs, now=now)
    text = to_json(rep)
    back = json.loads(text)
    assert back["disclaimer"] == DISCLAIMER
    assert back["generated"] == "2025-01-02T03:04:05+00:00"
    assert back["prediction"]["models_agree"] is False
    assert back["prediction"]["confidence"] == pytest.approx(0.8)
    assert back["prediction"] == json.loads(json.dumps(pred.to_record()))  # the one prediction record
    assert back["measurements"] == {"area_px": 5, "circularity": None}
    assert back["ground_truth"] == {"label": "benign", "dice": 0.5, "iou": pytest.approx(1 / 3),
                                    "refined_correct": True, "baseline_correct": False}
    assert set(back["models"]["versions"]) == {"seg", "raw", "refined"}
    assert back["input"] == {"file_name": "a.png", "source": "upload", "height": 10, "width": 20, "warnings": ["w"]}


def test_upload_round_trip_and_report():
    data = encode(speckle(), "PNG")
    d = diagnosis.analyse_upload(FakePredictor(), data, "scan.png")
    assert d.name == "scan.png" and d.source == "upload"
    assert d.measurements.area_px == int(d.prediction.mask.sum())
    assert d.dice is None
    truth = d.prediction.mask.copy()
    d2 = d.with_truth_mask(truth)
    assert d2.dice == 1.0 and d2.iou == 1.0
    rep = json.loads(to_json(diagnosis.report_for(d2, FakePredictor())))
    assert rep["ground_truth"]["dice"] == 1.0
    assert rep["prediction"]["label"] == "malignant"
    assert "disagree" in diagnosis.agreement_sentence(d.prediction)
    png = diagnosis.png_bytes(diagnosis.overlay_image(d, 0.5, "contour"))
    assert png.startswith(b"\x89PNG")


def test_truth_mask_upload_checks_size():
    d = diagnosis.analyse_upload(FakePredictor(), encode(speckle(), "PNG"), "scan.png")
    mask = (d.prediction.mask * 255).astype(np.uint8)
    got = diagnosis.load_truth_mask(encode(mask, "PNG"), "m.png", d.image.shape)
    np.testing.assert_array_equal(got, d.prediction.mask)
    with pytest.raises(ImageLoadError, match="same size|image is"):
        diagnosis.load_truth_mask(encode(np.zeros((50, 60), np.uint8), "PNG"), "m.png", d.image.shape)


def test_bad_input_corpus_through_upload_handling():
    """Every corpus entry either loads (warnings kept) or raises ImageLoadError with its message."""
    fake = FakePredictor()
    for name, data, expect in bad_input_corpus():
        if expect == "error":
            with pytest.raises(ImageLoadError) as info:
                diagnosis.analyse_upload(fake, data, name)
            for word in EXPECTED_KEYWORDS[name]:
                assert word.lower() in str(info.value).lower(), (name, word)
        else:
            d = diagnosis.analyse_upload(fake, data, name)
            if expect == "warning":
                assert d.image.warnings, name
            json.dumps(diagnosis.report_for(d, fake))
    # and a good image still works afterwards
    assert diagnosis.analyse_upload(fake, encode(speckle(), "JPEG"), "ok.jpg").prediction.label == "malignant"
