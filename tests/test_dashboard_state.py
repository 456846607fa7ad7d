"""What the dashboard keeps across page switches, and results that always belong to the input on screen
(Streamlit AppTest through app.py's navigation; no browser)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from bad_inputs import encode, speckle
from streamlit.testing.v1 import AppTest

from pipeline.clinics import overpass
from pipeline.paths import MODELS_DIR

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 180


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page:
        go(at, page)
    assert not at.exception, [e.value for e in at.exception]
    return at


def go(at: AppTest, page: str) -> None:
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def dataset_env(busi_dir, monkeypatch):
    monkeypatch.setenv("BUSI_DIR", str(busi_dir))
    monkeypatch.setenv("BUSI_OFFLINE", "1")


@pytest.mark.full  # many page runs: make test-all only (keeps make test within 6 min)
def test_dataset_filters_page_and_tab_survive_navigation(dataset_env):
    at = start("dataset")
    at.multiselect(key="g_class").set_value(["benign"]).run()
    at.number_input(key="g_page").set_value(3).run()
    assert "Page 3 of" in texts(at.markdown)
    go(at, "clinics")
    go(at, "dataset")
    assert at.multiselect(key="g_class").value == ["benign"]
    assert at.number_input(key="g_page").value == 3 and "Page 3 of" in texts(at.markdown)


@pytest.mark.full  # many page runs: make test-all only (keeps make test within 6 min)
def test_dataset_paging_resets_with_filters_and_rejects_missing_pages(dataset_env):
    at = start("dataset")
    at.number_input(key="g_page").set_value(19).run()
    assert "Page 19 of" in texts(at.markdown)
    at.multiselect(key="g_class").set_value(["normal"]).run()  # 133 images: 12 pages
    assert at.number_input(key="g_page").value == 1 and "Page 1 of 12" in texts(at.markdown)
    at.number_input(key="g_page").set_value(999).run()
    assert "There is no page 999" in texts(at.warning) and "12 pages" in texts(at.warning)
    assert at.number_input(key="g_page").value == 12 and "Page 12 of 12" in texts(at.markdown)
    at.number_input(key="g_page").set_value(0).run()
    assert "There is no page 0" in texts(at.warning) and at.number_input(key="g_page").value == 1


def _no_network(url, query, timeout, headers):
    from pipeline.clinics.errors import OverpassError

    raise OverpassError(f"{url} unreachable (ConnectionError)")


@pytest.mark.full  # many page runs: make test-all only (keeps make test within 6 min)
def test_clinics_results_follow_the_query_and_survive_navigation(monkeypatch, tmp_path):
    monkeypatch.setenv("BUSI_OFFLINE", "1")
    monkeypatch.setattr(overpass, "requests_transport", _no_network)
    at = start("clinics")
    at.text_input(key="clinics_place").input("Cairo, Egypt").run()
    at.button(key="clinics_search").click().run()
    assert "Near Cairo" in texts(at.subheader)
    at.text_input(key="clinics_place").input("Lyon, France").run()  # typed + Enter: the results follow
    assert "Near Lyon" in texts(at.subheader) and "Cairo" not in texts(at.subheader)
    assert "Centre Leon Berard" in set(at.dataframe[0].value["Name"])
    go(at, "dataset")
    go(at, "clinics")
    assert at.text_input(key="clinics_place").value == "Lyon, France"
    assert "Near Lyon" in texts(at.subheader)
    at.text_input(key="clinics_place").input("Xyzzyqwv").run()  # no such place: no stale results under the error
    assert at.error and not at.dataframe and "Near" not in texts(at.subheader)


def test_clinics_coordinates_are_shown_once(monkeypatch):
    monkeypatch.setenv("BUSI_OFFLINE", "1")
    at = start("clinics")
    at.text_input(key="clinics_place").input("48.8566, 2.3522").run()
    line = [c.value for c in at.caption if c.value.startswith("Location:")]
    assert line and line[0].count("48.8566") == 1, line


# --- Diagnose (needs the models) ---------------------------------------------------------------------
def _models_dir() -> Path:
    return Path(os.environ.get("BUSI_MODELS_DIR") or MODELS_DIR)


@pytest.fixture
def models_env(tmp_path, monkeypatch):
    if not (_models_dir() / "unet.keras").is_file():
        pytest.skip(f"no trained models in {_models_dir()}")
    monkeypatch.setenv("BUSI_DIR", str(tmp_path / "no_dataset"))
    monkeypatch.setenv("BUSI_OFFLINE", "1")


def colour_picture() -> np.ndarray:
    """A saturated colour picture: the scope gate refuses it as a colour picture."""
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 6, (8, 8))
    palette = np.array([[230, 30, 30], [30, 200, 40], [40, 60, 230], [240, 200, 20], [200, 40, 200], [20, 200, 220]])
    return np.kron(palette[blocks], np.ones((32, 32, 1))).astype(np.uint8)


def test_refused_image_is_worded_alike_before_and_after_analyse_anyway(models_env):
    at = start()
    at.file_uploader(key="upload").set_value(("photo.png", encode(colour_picture(), "PNG"), "image/png")).run()
    refusal = texts(at.error)
    assert "does not look like a breast ultrasound image" in refusal and "colour photograph" in refusal
    assert "distance" not in refusal and "Prediction:" not in texts(at.subheader)
    assert "no label is shown" in texts(at.markdown)
    [toggle] = [t for t in at.toggle if t.key.startswith("analyse_anyway:")]
    toggle.set_value(True).run()
    heads = texts(at.subheader)
    assert "Research-only answer:" in heads and "Prediction:" not in heads
    assert "no label is shown" not in texts(at.markdown) and "research-only answer" in texts(at.markdown)
    assert "Both models agree." not in texts(at.success)
    assert "colour photograph" in texts(at.error) and "Out of scope" in texts(at.warning)


def test_the_last_analysis_survives_navigation(models_env):
    at = start()
    img = speckle()
    at.file_uploader(key="upload").set_value(("scan.png", encode(img, "PNG"), "image/png")).run()
    toggles = [t for t in at.toggle if t.key.startswith("analyse_anyway:")]
    if toggles:  # a generated picture may be refused: look anyway
        toggles[0].set_value(True).run()
    heads = texts(at.subheader)
    assert "Prediction:" in heads or "Research-only answer:" in heads
    at.slider(key="heat_alpha").set_value(0.8).run()
    go(at, "dataset")
    go(at, "diagnose")
    assert texts(at.subheader) == heads, "the same answer, without uploading again"
    assert "Your last upload, **scan.png**" in texts(at.caption)
    assert at.slider(key="heat_alpha").value == 0.8
