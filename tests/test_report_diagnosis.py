"""The JSON report and the upload handling of the Diagnose page (with a stand-in predictor)."""

from __future__ import annotations

import dataclasses
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


def _refused(reason: str | None) -> Prediction:
    mask = np.zeros((60, 80), np.uint8)
    return Prediction("benign", {"benign": 0.89, "malignant": 0.1, "normal": 0.01}, "benign",
                      {"benign": 0.7, "malignant": 0.2, "normal": 0.1}, mask, 0.0, in_scope=False, scope_score=2.0,
                      scope_reason=reason)


def test_refusal_reasons_in_plain_words():
    from pipeline.inference import scope

    def stats(**kw):
        base = dict(colour_share=None, std=50.0, peak_share=0.1, white_share=0.05, black_share=0.1,
                    annotation_share=0.0, neighbour_corr=0.95)
        return scope.ImageStats(**{**base, **kw})

    cases = {  # the gate's own sentences (scope.refusal) -> the plain words the page shows
        scope.refusal(stats(colour_share=0.6)): "colour photograph",
        scope.refusal(stats(std=1.0)): "almost uniform image",
        scope.refusal(stats(neighbour_corr=0.1)): "not an ultrasound texture",
        scope.refusal(stats(white_share=0.8)): "screen capture",
        "unlike the breast-ultrasound frames the models were trained on (distance 1.7x the acceptance limit set on "
        "validation images)": "not an ultrasound texture",
        None: "unlike the images the models were trained on",
    }
    for reason, words in cases.items():
        message = diagnosis.refusal_message(_refused(reason))
        assert message.startswith("This does not look like a breast ultrasound image: ") and words in message, reason
        assert "distance" not in message and "%" not in message, message
    detail = diagnosis.refusal_detail(_refused("unlike the breast-ultrasound frames (distance 1.7x the limit)"))
    assert "distance 1.7x" in detail and "scope score 2.00" in detail
    assert diagnosis.answer_heading(_refused(None), out_of_scope=True) == "Research-only answer: benign"


def test_overlay_draws_prediction_and_truth_and_the_download_png_says_what_it_shows():
    from PIL import Image

    from pipeline.inference.overlay import LESION_COLOUR, TRUTH_COLOUR

    diag = diagnosis.analyse_upload(FakePredictor(), encode(speckle(), "PNG"), "scan.png")
    truth = np.zeros(diag.image.shape, np.uint8)
    truth[10:40, 10:40] = 1
    diag = diag.with_truth_mask(truth)

    def has(rgb, colour) -> bool:
        return bool(np.all(rgb.reshape(-1, 3) == colour, axis=1).any())

    both = diagnosis.overlay_image(diag, 0.4, "contour")
    assert has(both, LESION_COLOUR) and has(both, TRUTH_COLOUR)
    only_truth = diagnosis.overlay_image(diag, 0.4, "contour", show_prediction=False)
    assert not has(only_truth, LESION_COLOUR) and has(only_truth, TRUTH_COLOUR)
    assert not has(diagnosis.overlay_image(diag, 0.4, "filled", show_truth=False), TRUTH_COLOUR)
    assert [n for n, _ in diagnosis.legend(diag)] == ["predicted lesion", "ground truth"]

    import io

    png = np.asarray(Image.open(io.BytesIO(diagnosis.download_overlay(diag))).convert("RGB"))
    h, w = diag.image.shape
    assert png.shape[1] == w and png.shape[0] > h + 60, "a text band under the image"
    assert np.array_equal(png[:h], diagnosis.overlay_image(diag)), "the image is not covered"
    band = png[h:]
    assert (band < 128).any(), "text in the band"
    assert has(band, LESION_COLOUR) and has(band, TRUTH_COLOUR), "the legend's colour swatches"


def test_black_borders_set_aside_are_told_with_the_warnings_and_in_the_report():
    class BorderPredictor(FakePredictor):
        def predict(self, image, rgb=None):
            p = super().predict(image, rgb)
            h, w = p.mask.shape
            return dataclasses.replace(p, analysed_region=(10, 0, w - 10, h - 20))

    d = diagnosis.analyse_upload(BorderPredictor(), encode(speckle(), "PNG"), "scan.png")
    h, w = d.image.shape
    warnings = diagnosis.all_warnings(d)
    assert warnings[-1].startswith("black borders set aside") and f"{w - 20}x{h - 20} px" in warnings[-1]
    rep = json.loads(to_json(diagnosis.report_for(d, BorderPredictor())))
    assert rep["prediction"]["analysed_region"] == [10, 0, w - 10, h - 20]
    assert rep["input"]["warnings"][-1] == warnings[-1]
    plain = diagnosis.analyse_upload(FakePredictor(), encode(speckle(), "PNG"), "scan.png")
    assert not any("black borders" in x for x in diagnosis.all_warnings(plain))
