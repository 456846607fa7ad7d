"""The scope gate: non-ultrasound pictures are refused with a reason, ultrasound frames are accepted.

Needs the committed models (``models/*.keras`` and ``models/scope_gate.*``); the acceptance checks on
real frames need BUSI_DIR / BUSBRA_DIR and skip with a reason without them. The non-ultrasound corpus
is generated (noise, gradients, flat fields, patterns, text pages, shapes, smooth "photos",
screenshots) plus the sample pictures shipped by scikit-image and streamlit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import preprocess
from pipeline.inference import scope
from pipeline.inference.predictor import Prediction
from pipeline.inference.report import NOT_ULTRASOUND, build_report
from pipeline.paths import MODELS_DIR
from pipeline.training.scope_fit import generated_corpus, non_ultrasound_corpus

ROOT = Path(__file__).resolve().parent.parent
MIN_REFUSED = 0.95
MIN_BUSI_TEST = 0.98
MIN_BUSBRA_TEST = 0.95


@pytest.fixture(scope="module")
def predictor(predictor):
    """The run's Predictor (conftest), which must have the scope gate."""
    if predictor.scope is None:
        pytest.skip("scope gate files absent in models/ (run `python -m pipeline scope fit`)")
    return predictor


@pytest.fixture(scope="module")
def corpus():
    return non_ultrasound_corpus()


def _grainy(seed: int = 0, shape=(300, 400)) -> np.ndarray:
    """Speckle-like texture (correlated grain), only to exercise the statistics."""
    import cv2

    rng = np.random.default_rng(seed)
    grain = cv2.GaussianBlur(rng.rayleigh(40, shape).astype(np.float32), (0, 0), 1.5)
    return np.clip(grain * np.linspace(1.4, 0.6, shape[0])[:, None], 0, 255).astype(np.uint8)


# --- statistics (no models) ------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "image", "words"), [
    ("black", np.zeros((200, 300), np.uint8), ("uniform",)),
    ("white", np.full((200, 300), 255, np.uint8), ("uniform",)),
    ("noise", np.random.default_rng(0).integers(0, 256, (200, 300), dtype=np.uint8), ("speckle", "noise")),
    ("colour", np.dstack([np.full((200, 300), v, np.uint8) for v in (200, 40, 40)]), ("colour", "100%")),
])
def test_statistics_refuse_with_a_readable_reason(name, image, words):
    gray = preprocess.to_gray(image)
    reason = scope.refusal(scope.image_stats(gray, image if image.ndim == 3 else None))
    assert reason is not None, name
    for w in words:
        assert w in reason, (name, reason)


def test_statistics_let_grainy_gray_frames_through():
    stats = scope.image_stats(_grainy())
    assert scope.refusal(stats) is None, stats
    assert stats.colour_share is None and stats.neighbour_corr > 0.8


def test_burned_in_annotations_give_a_warning():
    import cv2

    img = _grainy(1)
    for y in range(20, 290, 18):
        cv2.putText(img, "L BREAST 12 O'CLOCK 3CM FN 4.2 x 3.1", (5, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 255, 1)
    warnings = scope.content_warnings(scope.image_stats(img))
    assert any("burned-in annotations" in w for w in warnings)
    assert not scope.content_warnings(scope.image_stats(_grainy(2)))


# --- the record and the report (no models) ----------------------------------------------------------
def _prediction(**scope_fields) -> Prediction:
    probs = {"benign": 0.7, "malignant": 0.2, "normal": 0.1}
    return Prediction("benign", probs, "benign", probs, np.zeros((4, 4), np.uint8), 0.0, **scope_fields)


def test_record_carries_the_scope_fields():
    assert _prediction().to_record()["in_scope"] is None
    ok = _prediction(in_scope=True, scope_score=0.4).to_record()
    assert ok["in_scope"] is True and ok["scope_score"] == 0.4 and "scope_reason" not in ok
    assert ok["status"] == "ok" and ok["label"] == "benign" and "research_only" not in ok
    out = _prediction(in_scope=False, scope_score=3.0, scope_reason="colour picture").to_record()
    assert out["in_scope"] is False and out["scope_reason"] == "colour picture"


def test_a_refused_record_has_no_label_at_the_top_level():
    """A client reading ``label`` must never take a refused image's research answer for a diagnosis."""
    plain = _prediction(in_scope=True, scope_score=0.4).to_record()
    out = _prediction(in_scope=False, scope_score=3.0, scope_reason="colour picture").to_record()
    assert out["status"] == "refused"
    assert out["label"] is None and out["confidence"] is None
    assert out["probabilities"] is None and out["baseline"] is None
    research = out["research_only"]
    assert {k: research[k] for k in ("label", "confidence", "probabilities", "baseline")} == \
        {k: plain[k] for k in ("label", "confidence", "probabilities", "baseline")}
    assert "not meaningful" in research["note"]
    same = {k for k in plain if k not in ("status", "label", "confidence", "probabilities", "baseline")}
    assert {k: out[k] for k in same - {"in_scope", "scope_score"}} == {k: plain[k] for k in same - {"in_scope", "scope_score"}}


def test_report_says_it_in_a_sentence():
    rec = _prediction(in_scope=False, scope_score=3.0, scope_reason="colour picture").to_record()
    report = build_report(file_name="cat.jpg", source="upload", image_shape=(10, 10), prediction=rec,
                          measurements={}, analysed_anyway=True)
    assert report["scope"]["in_scope"] is False and report["scope"]["analysed_anyway"] is True
    assert report["scope"]["statement"].startswith(NOT_ULTRASOUND + ": colour picture")
    assert report["prediction"]["in_scope"] is False
    assert report["status"] == "refused" and report["prediction"]["label"] is None
    json.dumps(report, allow_nan=False)


def test_gate_files_are_small_and_described():
    npz, meta = MODELS_DIR / scope.GATE_NPZ, MODELS_DIR / scope.GATE_JSON
    if not npz.is_file():
        pytest.skip("no scope gate in models/ (run `python -m pipeline scope fit`)")
    assert npz.stat().st_size + meta.stat().st_size < 2 * 2**20
    info = json.loads(meta.read_text())
    assert info["feature_layer"] == scope.FEATURE_LAYER and info["threshold"] > 0
    assert info["fitted_on"]["busi_train"] > 0 and info["fitted_on"]["busbra_train"] > 0
    metrics = json.loads((MODELS_DIR / scope.METRICS_JSON).read_text())
    assert metrics["non_ultrasound"]["share_refused"] >= MIN_REFUSED


# --- with the models ----------------------------------------------------------------------------------
def _refused_share(predictor, corpus) -> float:
    """Share of ``corpus`` the gate refuses (each picture still gets a label and, when refused, a reason)."""
    accepted = []
    for name, image in corpus:
        p = predictor.predict(image)
        assert p.in_scope is not None and p.label in predictor.classes  # the label is still computed
        if p.in_scope:
            accepted.append(name)
        else:
            assert p.scope_reason and p.scope_score > 1, name
    share = 1 - len(accepted) / len(corpus)
    assert share >= MIN_REFUSED, f"refused {share:.1%}; accepted: {accepted}"
    return share


@pytest.mark.full  # the whole corpus (111 pictures); the fast tier checks a sample below
def test_non_ultrasound_pictures_are_refused(predictor, corpus):
    _refused_share(predictor, corpus)


def test_a_sample_of_the_non_ultrasound_corpus_is_refused_as_scope_fit_recorded(predictor, corpus):
    """Every 7th picture (generated and packaged alike): refused, as ``scope fit`` recorded for the whole corpus."""
    recorded = json.loads((MODELS_DIR / scope.METRICS_JSON).read_text())["non_ultrasound"]
    sample = corpus[::7]
    assert len(sample) >= 15 and {n.split(":")[0] for n, _ in sample if ":" in n}
    assert _refused_share(predictor, sample) >= (1.0 if not recorded["accepted"] else MIN_REFUSED)


def test_grayscale_and_colour_inputs_get_the_same_features(predictor, corpus):
    """The CLI passes grayscale pixels; the dashboard passes them plus the RGB: same distance."""
    name, image = next((n, a) for n, a in corpus if n.startswith("smooth_colour_photo"))
    a = predictor.predict(preprocess.to_gray(image))
    b = predictor.predict(preprocess.to_gray(image), rgb=image)
    assert a.probabilities == b.probabilities
    assert not b.in_scope and "colour" in b.scope_reason, (name, b.scope_reason)


def test_cli_and_dashboard_give_the_same_scope_answer_for_a_colour_picture(predictor, corpus, tmp_path):
    """Every entry point hands the gate the colour version of a colour file: one answer for one image."""
    import io
    import json

    from PIL import Image

    from pipeline.cli.predict import run
    from pipeline.views import diagnosis

    name, image = next((n, a) for n, a in corpus if n.startswith("smooth_colour_photo"))
    path = tmp_path / "photo.png"
    Image.fromarray(image[:, :, :3]).save(path)
    out = io.StringIO()
    run([str(path)], tmp_path / "out", predictor, stream=out)
    record = json.loads(out.getvalue())
    dash = diagnosis.analyse_upload(predictor, path.read_bytes(), "photo.png").prediction.to_record()
    assert record["in_scope"] is False and "colour" in record["scope_reason"]
    assert record["status"] == "refused" and record["label"] is None
    assert {k: record[k] for k in ("status", "in_scope", "scope_score", "scope_reason", "research_only")} == \
        {k: dash[k] for k in ("status", "in_scope", "scope_score", "scope_reason", "research_only")}


def test_predict_keeps_the_classifier_probabilities(predictor, busi_dir):
    """predict() takes features and probabilities from one graph: same answer as classify_batch."""
    from pipeline.data.items import load_items

    items = load_items(busi_dir, "test", limit=3)
    for it in items:
        p = predictor.predict(it.gray)
        out = predictor.classify_batch([it.gray], [p.mask])
        assert np.allclose(list(p.baseline_probabilities.values()), out.baseline[0], atol=1e-6)
        assert np.allclose(list(p.probabilities.values()), out.refined[0], atol=1e-6)


def _accepted_share(predictor, grays) -> float:
    feats, _ = predictor.baseline_features(grays)
    return float(np.mean([predictor.scope.check(g, f[None]).in_scope for g, f in zip(grays, feats)]))


@pytest.mark.full
def test_busi_test_images_are_accepted(predictor, busi_dir):
    from pipeline.data.items import load_items

    share = _accepted_share(predictor, [it.gray for it in load_items(busi_dir, "test")])
    assert share >= MIN_BUSI_TEST, share


def test_a_sample_of_both_test_sets_gets_the_answers_scope_fit_recorded(predictor, busi_dir, busbra_dir):
    """The fast tier's check of the two whole-test-set tests: 17 BUSI and 24 BUS-BRA test images (a fixed sample:
    8 per BUS-BRA scanner) plus the BUSI images ``scope fit`` recorded as refused get the recorded answers."""
    from pipeline.data import busbra
    from pipeline.data.items import load_items

    recorded = json.loads((MODELS_DIR / scope.METRICS_JSON).read_text())["ultrasound"]
    refused = {ds: set(recorded[ds]["test"]["refused_examples"]) for ds in ("busi", "busbra")}
    items = load_items(busi_dir, "test")
    busi = [it for it in items if it.image in refused["busi"]] + [it for it in items if it.image not in refused["busi"]][::7]
    rows = busbra.read_index(busbra_dir)
    rows = rows[rows["subset"] == "test"].groupby("device").head(8)
    grays = [it.gray for it in busi] + [busbra.load_sample(r)[0] for _, r in rows.iterrows()]
    names = [("busi", it.image) for it in busi] + [("busbra", n) for n in rows["image"]]
    feats, _ = predictor.baseline_features(grays)
    for (ds, name), g, f in zip(names, grays, feats):
        assert predictor.scope.check(g, f[None]).in_scope == (name not in refused[ds]), (ds, name)
    assert len(busi) >= 16 and len(rows) == 24 and rows["device"].nunique() == 3


@pytest.mark.full
def test_busbra_test_images_are_accepted(predictor, busbra_dir):
    from pipeline.data import busbra

    index = busbra.read_index(busbra_dir)
    rows = index[index["subset"] == "test"]
    share = _accepted_share(predictor, [busbra.load_sample(r)[0] for _, r in rows.iterrows()])
    assert share >= MIN_BUSBRA_TEST, share


def test_cli_writes_an_out_of_scope_record_and_keeps_the_exit_code(predictor, tmp_path, busi_dir):
    import io

    from pipeline.cli.predict import run
    from pipeline.data.split import read_split

    page = dict(generated_corpus())["text_page_0"]
    Image.fromarray(page).save(tmp_path / "page.png")
    first = read_split(ROOT / "data" / "splits" / "busi.csv").query("subset == 'test'")["image"].iloc[0]
    stream = io.StringIO()
    code = run([str(tmp_path / "page.png"), str(busi_dir / first)], tmp_path / "out", predictor, stream)
    assert code == 0
    refused, scan = (json.loads(line) for line in stream.getvalue().splitlines())
    assert refused["in_scope"] is False and refused["scope_reason"] and refused["status"] == "refused"
    assert refused["label"] is None and refused["research_only"]["label"] in predictor.classes
    assert scan["in_scope"] is True and "scope_reason" not in scan and scan["status"] == "ok" and scan["label"]


def test_missing_gate_files_leave_predictions_working(tmp_path):
    from pipeline.inference.predictor import Predictor

    if not (MODELS_DIR / "unet.keras").is_file():
        pytest.skip("no models in models/")
    for f in MODELS_DIR.iterdir():
        if f.is_file() and not f.name.startswith("scope_") and f.name != "manifest.json":
            (tmp_path / f.name).symlink_to(f)
    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())  # a bundle shipped without the gate
    manifest["files"] = [e for e in manifest["files"] if not e["path"].startswith("scope_")]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    p = Predictor(tmp_path).predict(_grainy())
    assert p.in_scope is None and p.scope_score is None
    assert p.to_record()["in_scope"] is None


# --- the Diagnose page ---------------------------------------------------------------------------------
def test_diagnose_page_refuses_then_analyses_anyway(predictor, tmp_path, monkeypatch):
    from bad_inputs import encode
    from streamlit.testing.v1 import AppTest

    empty = tmp_path / "no_dataset"
    empty.mkdir()
    monkeypatch.setenv("BUSI_DIR", str(empty))
    monkeypatch.setenv("BUSI_MODELS_DIR", str(MODELS_DIR))
    at = AppTest.from_file(str(ROOT / "dashboard" / "views" / "diagnose.py"), default_timeout=180)
    at.run()
    photo = dict(generated_corpus())["smooth_colour_photo_0"]
    at.file_uploader(key="upload").set_value(("holiday.png", encode(photo, "PNG"), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(str(e.value) for e in at.error)
    assert "does not look like a breast ultrasound image" in errors
    assert not any("Prediction:" in str(s.value) for s in at.subheader)
    toggle = next(t for t in at.toggle if t.label == "Analyse anyway")
    toggle.set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Research-only answer:" in str(s.value) for s in at.subheader)  # never a plain "Prediction:"
    assert not any("Prediction:" in str(s.value) for s in at.subheader)
    assert "out of scope" in " ".join(str(w.value) for w in at.warning).lower()
