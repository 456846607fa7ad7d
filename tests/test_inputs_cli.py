"""Bad and unusual inputs through the predict CLI, and DICOM inputs predicting like their PNG."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from bad_inputs import EXPECTED_KEYWORDS, bad_input_corpus
from dicom_factory import make_dicom

from pipeline import paths
from pipeline.cli.predict import run
from pipeline.imageio import load_image
from pipeline.inference.report import answer_of

MODELS = paths.models_dir()


def _ultrasound_like(h: int = 300, w: int = 360) -> np.ndarray:
    """A speckled frame with a dark oval 'lesion', full 0-255 range."""
    rng = np.random.default_rng(3)
    img = (rng.gamma(2.0, 40.0, (h, w))).clip(0, 255)
    yy, xx = np.mgrid[:h, :w]
    img[((yy - h * 0.45) / (h * 0.15)) ** 2 + ((xx - w * 0.5) / (w * 0.2)) ** 2 < 1] *= 0.25
    img = cv2.GaussianBlur(img.astype(np.float32), (5, 5), 0)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.round().astype(np.uint8)


def test_corpus_through_cli(tmp_path, predictor):
    corpus = bad_input_corpus()
    assert len(corpus) >= 25
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), _ultrasound_like())
    files = []
    for i, (name, data, _) in enumerate(corpus):
        path = tmp_path / "in" / f"{i:02d}" / name  # keep each corpus name, even duplicate stems
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        files.append(path)
    out = io.StringIO()
    status = run([str(f) for f in files] + [str(good)], tmp_path / "out", predictor, stream=out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 1
    assert len(records) == len(corpus) + 1
    for (name, _, expectation), record in zip(corpus, records):
        text = record.get("error", "") if expectation == "error" else " ".join(record.get("warnings", []))
        if expectation == "error":
            assert set(record) == {"image", "error"}, name
        else:
            assert "label" in record, (name, record)
        for word in EXPECTED_KEYWORDS.get(name, ()):
            assert word.lower() in text.lower(), (name, word, text)
    assert records[-1]["status"] in ("ok", "refused")  # a generated frame: the scope gate may refuse it
    assert answer_of(records[-1])["label"] in ("benign", "malignant", "normal")


@pytest.mark.parametrize("variant", ["8bit-mono2", "16bit-mono2", "8bit-mono1", "no-spacing"])
def test_dicom_predicts_like_png(tmp_path, predictor, variant):
    img = _ultrasound_like()
    png = tmp_path / "frame.png"
    cv2.imwrite(str(png), img)
    if variant == "16bit-mono2":
        data = make_dicom(img.astype(np.uint16) * 257, bits=16)
    elif variant == "8bit-mono1":
        data = make_dicom(255 - img, photometric="MONOCHROME1")
    else:
        data = make_dicom(img, spacing=None if variant == "no-spacing" else (0.1, 0.12))
    dcm = tmp_path / "frame"  # DICOM files often have no extension
    dcm.write_bytes(data)
    loaded = load_image(dcm)
    assert loaded.format == "DICOM"
    assert np.array_equal(loaded.pixels, load_image(png).pixels)
    if variant == "8bit-mono2":
        assert loaded.pixel_spacing_mm == pytest.approx((0.1, 0.12))
    a, b = predictor.predict(load_image(png).pixels), predictor.predict(loaded.pixels)
    assert a.probabilities == b.probabilities and np.array_equal(a.mask, b.mask)
