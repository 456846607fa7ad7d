"""Every page in a real browser at two widths (1400 and 1024 px), with every non-local request blocked
and recorded: Diagnose after uploading a generated image (the zoomable overlay must zoom with the mouse
wheel), Dataset (gallery paging with the keyboard), Models (normal and presentation view), Clinics.

Screenshots: test-output/screenshots/views_<page>_<width>.png. Skips when Chromium or the playwright
package is absent (`make browser` installs Chromium).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import pytest

from bench.browser import (
    PAGE_TITLES,
    ROOT,
    block_outside,
    fit_viewport,
    launch,
    open_page,
    search_clinics,
    synthetic_ultrasound,
    wait_idle,
    wait_title,
)
from pipeline.paths import MODELS_DIR

SHOTS = ROOT / "test-output" / "screenshots"
WIDTHS = (1400, 1024)
LABEL_OR_REFUSAL = re.compile(r"Prediction: (benign|malignant|normal)|does not look like a breast ultrasound")
# The plotly graph of the zoomable overlay: the one whose first trace is an image.
ZOOM_GRAPH = "[...document.querySelectorAll('.js-plotly-plot')].find(g => g.data && g.data[0].type === 'image')"


pytestmark = pytest.mark.full  # a real browser


def _shot(page, name: str, width: int) -> None:
    fit_viewport(page, width=width)
    page.screenshot(path=str(SHOTS / f"views_{name}_{width}.png"), full_page=True)
    page.set_viewport_size({"width": width, "height": 1000})


def _diagnose(page, url: str, upload: Path, width: int) -> None:
    open_page(page, url, "diagnose")
    wait_title(page, PAGE_TITLES["diagnose"])
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(upload))
    page.get_by_text(LABEL_OR_REFUSAL).first.wait_for(timeout=120_000)
    if not page.get_by_text(re.compile(r"Prediction: ")).count():  # refused by the scope gate: look anyway
        wait_idle(page)
        _shot(page, "diagnose_refused", width)
        page.get_by_text("Analyse anyway").first.click()
        page.get_by_text(re.compile(r"Prediction: (benign|malignant|normal)")).first.wait_for(timeout=120_000)
    wait_idle(page)
    assert not page.locator('[data-testid="stException"]').count()
    # the zoomable overlay: a plotly image; the mouse wheel zooms it (scrollZoom), double-click resets
    page.wait_for_function(f"() => !!({ZOOM_GRAPH})", timeout=30_000)
    before = page.evaluate(f"() => ({ZOOM_GRAPH})._fullLayout.xaxis.range.slice()")
    graph = page.evaluate_handle(f"() => ({ZOOM_GRAPH})")
    graph.as_element().scroll_into_view_if_needed()
    b = graph.as_element().bounding_box()
    assert b and b["width"] > 150, b
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    page.mouse.wheel(0, -400)
    width_js = f"({ZOOM_GRAPH})._fullLayout.xaxis.range[1] - ({ZOOM_GRAPH})._fullLayout.xaxis.range[0]"
    page.wait_for_function(f"() => {width_js} < {before[1] - before[0]}", timeout=15_000)
    page.wait_for_timeout(800)  # plotly applies wheel zoom in steps: let it settle before the reset
    after = page.evaluate(f"() => ({ZOOM_GRAPH})._fullLayout.xaxis.range.slice()")
    assert after[1] - after[0] < before[1] - before[0], (before, after)  # zoomed in
    page.mouse.dblclick(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    lo_js = f"({ZOOM_GRAPH})._fullLayout.xaxis.range[0]"
    page.wait_for_function(f"() => Math.abs({width_js} - {before[1] - before[0]}) < 1 && Math.abs({lo_js} - {before[0]}) < 1",
                           timeout=15_000)
    reset = page.evaluate(f"() => ({ZOOM_GRAPH})._fullLayout.xaxis.range.slice()")
    assert reset == pytest.approx(before, abs=1.0), (before, reset)
    _shot(page, "diagnose_result", width)


def _dataset(page, url: str, width: int) -> None:
    open_page(page, url, "dataset")
    wait_title(page, PAGE_TITLES["dataset"])
    wait_idle(page)
    _shot(page, "dataset", width)
    page.get_by_role("tab", name=re.compile("Gallery")).click()
    page.get_by_text(re.compile(r"Page 1 of \d+")).first.wait_for(timeout=30_000)
    # keyboard only: focus "Next page" and press Enter
    page.get_by_role("button", name=re.compile("Next page")).first.focus()
    page.keyboard.press("Enter")
    page.get_by_text(re.compile(r"Page 2 of \d+")).first.wait_for(timeout=30_000)
    wait_idle(page)
    _shot(page, "dataset_gallery", width)


def _models(page, url: str, width: int) -> None:
    open_page(page, url, "models")
    wait_title(page, PAGE_TITLES["models"])
    wait_idle(page)
    if page.get_by_text("No evaluation results").count():
        _shot(page, "models", width)
        return
    labels = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    _shot(page, "models", width)
    page.get_by_text("Presentation view").first.click()
    page.get_by_role("heading", name=re.compile("BUSI test split")).first.wait_for(timeout=30_000)
    wait_idle(page)
    assert not page.locator('[data-testid="stDataFrame"]').count(), "presentation view shows no tables"
    assert page.get_by_text(re.compile(r"Refined − baseline accuracy|not evaluated", re.I)).count()
    _shot(page, "models_presentation", width)
    page.get_by_text("Presentation view").first.click()  # back to the normal view for the next width
    wait_idle(page)
    assert labels and all(lbl.strip() for lbl in labels)


def test_pages_at_two_widths_without_outside_requests(chromium, offline_app, tmp_path):
    from playwright.sync_api import sync_playwright

    models = Path(os.environ.get("BUSI_MODELS_DIR") or MODELS_DIR)
    have_models = (models / "unet.keras").is_file()
    SHOTS.mkdir(parents=True, exist_ok=True)
    upload = tmp_path / "synthetic.png"
    cv2.imwrite(str(upload), synthetic_ultrasound(seed=3))
    has_clinics = (ROOT / "dashboard" / "views" / "clinics.py").is_file()

    url = offline_app
    with sync_playwright() as p:
        browser = launch(p, chromium)
        try:
            page = browser.new_page(viewport={"width": WIDTHS[0], "height": 1000})
            outside: list[tuple[str, str, str]] = []
            errors: list[tuple[str, str]] = []
            current = {"page": "diagnose"}
            block_outside(page, lambda kind, url: outside.append((current["page"], kind, url)))
            page.on("pageerror", lambda exc: errors.append((current["page"], str(exc))))
            page.goto(url)
            wait_title(page, PAGE_TITLES["diagnose"])
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 1000})
                current["page"] = "diagnose"
                if have_models:
                    _diagnose(page, url, upload, width)
                current["page"] = "dataset"
                if os.environ.get("BUSI_DIR") and Path(os.environ["BUSI_DIR"]).is_dir():
                    _dataset(page, url, width)
                current["page"] = "models"
                _models(page, url, width)
                if has_clinics:
                    current["page"] = "clinics"
                    open_page(page, url, "clinics")
                    wait_title(page, PAGE_TITLES["clinics"])
                    search_clinics(page)
                    wait_idle(page)
                    _shot(page, "clinics", width)
                for name in ("diagnose", "dataset", "models"):
                    assert not page.locator('[data-testid="stException"]').count(), name
            # Diagnose, Dataset and Models ask nothing from outside (no favicon from fonts.gstatic.com,
            # no fonts, no scripts). The Clinics map may ask for tiles (images) and fails over offline.
            own = [o for o in outside if o[0] != "clinics"]
            assert not own, own[:10]
            assert not [o for o in outside if o[1] != "image"], outside[:10]
            unexpected = [e for e in errors if not (e[0] == "clinics" and e[1] == "Event")]
            assert not unexpected, unexpected
        finally:
            browser.close()
