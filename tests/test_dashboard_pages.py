"""Streamlit AppTest of every dashboard page: with and without the dataset, and without models.

Models: ``BUSI_MODELS_DIR`` when set, else the committed ``models/``; parts needing them skip
with a reason when ``unet.keras`` is absent. The dataset comes from ``BUSI_DIR`` (skips without).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from bad_inputs import EXPECTED_KEYWORDS, bad_input_corpus, encode, speckle
from streamlit.testing.v1 import AppTest

from pipeline.inference.bundle import record_files
from pipeline.paths import MODELS_DIR

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
PAGES = {name: str(ROOT / "dashboard" / "views" / f"{name}.py") for name in ("diagnose", "dataset", "models")}
TIMEOUT = 180
PICK = "Pick a test image from the dataset"
ANSWER = re.compile(r"(Prediction|Research-only answer): (benign|malignant|normal)")


def _models_dir() -> Path:
    env = os.environ.get("BUSI_MODELS_DIR")
    return Path(env) if env else MODELS_DIR


@pytest.fixture(scope="module")
def models_dir() -> Path:
    folder = _models_dir()
    if not (folder / "unet.keras").is_file():
        pytest.skip(f"no trained models in {folder} (unet.keras absent): train them or set BUSI_MODELS_DIR")
    return folder


@pytest.fixture
def with_dataset(busi_dir, monkeypatch):
    """The real dataset; the models folder as found (tests needing models also ask for models_dir)."""
    monkeypatch.setenv("BUSI_DIR", str(busi_dir))
    monkeypatch.setenv("BUSI_MODELS_DIR", str(_models_dir()))
    return busi_dir


@pytest.fixture
def without_dataset(tmp_path, monkeypatch):
    empty = tmp_path / "no_dataset"
    empty.mkdir()
    monkeypatch.setenv("BUSI_DIR", str(empty))
    monkeypatch.setenv("BUSI_MODELS_DIR", str(_models_dir()))
    return empty


def run(path: str) -> AppTest:
    at = AppTest.from_file(path, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def all_text(at: AppTest) -> str:
    return " ".join(texts(getattr(at, kind)) for kind in
                    ("title", "subheader", "markdown", "caption", "info", "warning", "error", "success"))


def disclaimer_shown(at: AppTest) -> bool:
    return "not a medical device" in texts(at.caption)


# --- with the dataset --------------------------------------------------------------------------
@pytest.mark.parametrize("page", ["app", "diagnose", "dataset", "models"])
def test_pages_render_with_dataset(with_dataset, page):
    at = run(APP if page == "app" else PAGES[page])
    assert disclaimer_shown(at)
    if page == "dataset" or (_models_dir() / "unet.keras").is_file():
        assert not at.error, texts(at.error)
    else:
        assert "models could not be loaded" in texts(at.error) or page == "models"
    if page == "dataset":
        assert "breast-ultrasound images" in texts(at.markdown)
        assert at.metric, "duplicate counts"
    if page == "models" and (_models_dir() / "metrics.json").is_file():
        assert "Baseline vs refined" in texts(at.subheader)


def test_app_navigates_to_every_page(with_dataset):
    at = run(APP)
    assert "Diagnose" in texts(at.title)
    for page, title in (("views/dataset.py", "dataset"), ("views/models.py", "models")):
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        assert title in texts(at.title).lower()


def test_diagnose_dataset_image_shows_label_and_ground_truth(with_dataset, models_dir):
    at = run(PAGES["diagnose"])
    at.radio(key="source").set_value(PICK).run()
    assert not at.exception, [e.value for e in at.exception]
    options = at.selectbox(key="dataset_image").options
    assert len(options) > 50
    at.selectbox(key="dataset_image").select_index(3).run()
    subheaders = texts(at.subheader)
    zoom = [c for c in at.get("plotly_chart") if '"type":"image"' in c.proto.spec.replace(" ", "")]
    assert len(zoom) == 1, "the zoomable overlay (a plotly image)"
    assert any(f"Prediction: {c}" in subheaders for c in ("benign", "malignant", "normal"))
    assert "Against the ground truth" in subheaders
    assert {m.label for m in at.metric} >= {"Dice", "IoU"}
    assert "True class" in texts(at.markdown)
    assert not at.error
    # both outlines are drawn, with a legend, and switches for each inside the figure (kept in the browser)
    assert "Pink: predicted lesion; cyan: ground truth" in texts(at.caption)
    spec = zoom[0].proto.spec
    assert spec.count('"type":"image"') == 4 and "Ground truth" in spec and "Outline only" in spec


@pytest.mark.full  # many page runs: make test-all only (keeps make test within 6 min)
def test_models_page_error_browser_filters(with_dataset):
    if not (_models_dir() / "metrics.json").is_file():
        pytest.skip(f"no {_models_dir() / 'metrics.json'}: run `python -m pipeline evaluate`")
    at = run(PAGES["models"])
    for option in at.selectbox(key="case_filter").options:
        at.selectbox(key="case_filter").set_value(option).run()
        assert not at.exception, (option, [e.value for e in at.exception])


def test_models_page_presentation_view(with_dataset):
    if not (_models_dir() / "metrics.json").is_file():
        pytest.skip(f"no {_models_dir() / 'metrics.json'}: run `python -m pipeline evaluate`")
    at = run(PAGES["models"])
    assert "Refined vs baseline on the same images" in texts(at.subheader)
    assert "Scope gate" in texts(at.subheader)
    assert "Is the accuracy difference real?" in texts(at.markdown)
    assert all("…" not in m.label for m in at.metric)
    at.toggle(key="presentation").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "BUSI test split" in texts(at.subheader)
    assert not at.dataframe and not at.expander, "the presentation view hides the detail tables"
    assert len(at.metric) >= 6  # three scores, baseline and refined
    shown = texts(at.info)
    assert "refined − baseline accuracy" in shown.lower() or "not evaluated" in shown.lower()
    at.toggle(key="presentation").set_value(False).run()
    assert "Per-class precision, recall and F1" in texts(at.subheader)


def test_models_page_with_an_older_metrics_file(tmp_path, monkeypatch):
    """A metrics file without comparison/external and no scope_metrics.json: 'not evaluated', no crash."""
    import json

    src = _models_dir() / "metrics.json"
    if not src.is_file():
        pytest.skip(f"no {src}: run `python -m pipeline evaluate`")
    m = json.loads(src.read_text())
    m.pop("comparison", None)
    m.pop("external", None)
    folder = tmp_path / "old_models"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(m))
    monkeypatch.setenv("BUSI_MODELS_DIR", str(folder))
    monkeypatch.setenv("BUSI_DIR", str(tmp_path / "no_dataset"))
    at = run(PAGES["models"])
    assert "not evaluated" in all_text(at).lower()
    at.toggle(key="presentation").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "not evaluated" in texts(at.info).lower()


@pytest.mark.full  # many page runs: make test-all only (keeps make test within 6 min)
def test_dataset_gallery_filters_and_paging(with_dataset):
    at = run(PAGES["dataset"])
    at.multiselect(key="g_class").set_value(["malignant"]).run()
    at.selectbox(key="g_dups").set_value("only images with near-duplicates").run()
    assert not at.exception
    at.number_input(key="g_page").set_value(2).run()
    assert not at.exception
    at.button(key="g_next_top").click().run()
    assert at.number_input(key="g_page").value == 3 and not at.exception
    at.button(key="g_prev_bottom").click().run()
    assert at.number_input(key="g_page").value == 2
    assert "Page 2 of" in texts(at.markdown)
    assert at.multiselect(key="g_class").value == ["malignant"]  # paging keeps the filters
    at.button(key="g_prev_top").click().run()
    assert at.number_input(key="g_page").value == 1 and at.button(key="g_prev_top").disabled
    at.multiselect(key="g_subset").set_value(["test"]).run()
    at.multiselect(key="g_size").set_value(["no lesion"]).run()  # malignant test images without lesion: none
    assert not at.exception
    assert "No image matches" in texts(at.info)


# --- without the dataset ------------------------------------------------------------------------
@pytest.mark.parametrize("page", ["app", "diagnose", "dataset", "models"])
def test_pages_render_without_dataset(without_dataset, page):
    at = run(APP if page == "app" else PAGES[page])
    assert disclaimer_shown(at)
    if page == "dataset":
        panel = texts(at.info)
        assert "make data" in panel and "BUSI_DIR" in panel
    if page == "diagnose" and (_models_dir() / "unet.keras").is_file():
        assert at.radio(key="source").options == ["Upload an image"]


# --- without the models ---------------------------------------------------------------------------
@pytest.mark.full  # a worker process of its own
def test_missing_models_give_a_clear_error_and_other_pages_work(tmp_path, monkeypatch):
    empty = tmp_path / "no_models"
    empty.mkdir()
    monkeypatch.setenv("BUSI_MODELS_DIR", str(empty))
    monkeypatch.setenv("BUSI_DIR", str(tmp_path / "no_dataset"))
    at = run(PAGES["diagnose"])
    assert "models could not be loaded" in texts(at.error)
    assert "model file missing" in texts(at.error)
    for page in ("dataset", "models"):
        other = run(PAGES[page])
        assert disclaimer_shown(other)
    assert "No evaluation results" in texts(run(PAGES["models"]).warning)


@pytest.mark.full  # worker processes of their own
def test_swapped_or_corrupt_model_files_give_a_clear_error(tmp_path, monkeypatch):
    folder = tmp_path / "corrupt"
    folder.mkdir()
    for name in ("unet", "classifier_baseline", "classifier_refined"):
        (folder / f"{name}.keras").write_bytes(b"not a keras zip")
        shutil.copy(_models_dir() / f"{name}.json", folder)
    shutil.copy(_models_dir() / "manifest.json", folder)
    monkeypatch.setenv("BUSI_MODELS_DIR", str(folder))
    monkeypatch.setenv("BUSI_DIR", str(tmp_path / "no_dataset"))
    at = run(PAGES["diagnose"])  # not the files the manifest lists: refused by name before loading
    assert "models could not be loaded" in texts(at.error)
    assert "unet.keras does not match the bundle manifest" in texts(at.error)
    record_files(folder, ["unet.keras", "classifier_baseline.keras", "classifier_refined.keras"])
    at = run(PAGES["diagnose"])  # listed as they are: the load itself fails
    assert "unet.keras is truncated or corrupt" in texts(at.error)


# --- uploads ------------------------------------------------------------------------------------
def _upload_corpus_then_a_good_image(corpus) -> None:
    """Each corpus file uploaded on the Diagnose page gets its message (or a prediction), then a good image works."""
    at = run(PAGES["diagnose"])
    for name, data, expect in corpus:
        at.file_uploader(key="upload").set_value((name, data, "application/octet-stream")).run()
        assert not at.exception, (name, [e.value for e in at.exception])
        shown = texts(at.subheader)
        if expect == "error":
            message = texts(at.error).lower()
            assert "cannot be analysed" in message, name
            for word in EXPECTED_KEYWORDS[name]:
                assert word.lower() in message, (name, word)
            assert "Prediction:" not in shown
        else:
            analyse_anyway_if_refused(at, name)
            if expect == "warning":
                assert at.warning, name
    at.file_uploader(key="upload").set_value(("good.png", encode(speckle(), "PNG"), "image/png")).run()
    analyse_anyway_if_refused(at, "good.png")
    assert ANSWER.search(texts(at.subheader)) and "cannot be analysed" not in texts(at.error).lower()


@pytest.mark.full  # the whole corpus through the page; the fast tier uploads a sample below
def test_upload_bad_input_corpus_then_a_good_image(without_dataset, models_dir):
    _upload_corpus_then_a_good_image(bad_input_corpus())


@pytest.mark.full  # many page runs: make test-all only (keeps make test within 6 min)
def test_upload_a_sample_of_the_bad_input_corpus_then_a_good_image(without_dataset, models_dir):
    """Two files of each outcome (error, warning, ok) from the corpus."""
    corpus = bad_input_corpus()
    sample = [c for kind in ("error", "warning", "ok") for c in [c for c in corpus if c[2] == kind][:2]]
    assert {c[2] for c in sample} == {"error", "warning", "ok"}
    _upload_corpus_then_a_good_image(sample)


def analyse_anyway_if_refused(at, name: str) -> None:
    """A generated picture may be refused by the scope gate: then the refusal panel shows and one
    "analyse anyway" toggle brings the models' answer, headed as research-only."""
    if "Prediction:" in texts(at.subheader):
        return
    assert "does not look like a breast ultrasound image" in texts(at.error), (name, texts(at.error))
    toggles = [t for t in at.toggle if t.key.startswith("analyse_anyway:")]
    assert len(toggles) == 1, name
    toggles[0].set_value(True).run()
    assert "Research-only answer:" in texts(at.subheader) and "Prediction:" not in texts(at.subheader), name


def test_upload_with_ground_truth_mask_gives_dice(without_dataset, models_dir):
    at = run(PAGES["diagnose"])
    img = speckle()
    at.file_uploader(key="upload").set_value(("scan.png", encode(img, "PNG"), "image/png")).run()
    analyse_anyway_if_refused(at, "scan.png")
    mask = np.zeros(img.shape, np.uint8)
    mask[40:100, 60:140] = 255
    at.file_uploader(key="truth_upload").set_value(("scan_mask.png", encode(mask, "PNG"), "image/png")).run()
    assert not at.exception
    assert {m.label for m in at.metric} >= {"Dice", "IoU"}
    wrong = np.zeros((40, 40), np.uint8)
    at.file_uploader(key="truth_upload").set_value(("small_mask.png", encode(wrong, "PNG"), "image/png")).run()
    assert "cannot be used" in texts(at.error)
    assert ANSWER.search(texts(at.subheader))


def test_an_unexpected_page_error_is_a_message_not_a_traceback():
    def app():
        import streamlit as st

        from dashboard.common import guarded

        def page():
            st.write("before")
            raise RuntimeError("boom")

        guarded(page)
        guarded(st.stop)  # st.stop is not an error: it passes through the guard
        st.write("never shown")

    at = AppTest.from_function(app).run()
    assert not at.exception
    assert "Something went wrong on this page" in at.error[0].value and "boom" in at.error[0].value
    assert [m.value for m in at.markdown] == ["before"]
