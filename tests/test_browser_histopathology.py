"""The Histopathology (IDC) page in a real browser: reach it from the sidebar, upload a tile cut from real test
patches (a partial edge included), wait for the heat map and its opacity slider, then upload an ultrasound frame and
get the way to the Diagnose page instead of a label. No request may leave the machine.

Model: the trained ``models/idc/`` when committed, else the known-answer model (``idc_factory``). Screenshots:
test-output/screenshots/histopathology_*.png. Full tier (a Streamlit server and Chromium).
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from PIL import Image

from bench.browser import ROOT, block_outside, fit_viewport, launch, streamlit_server, wait_healthy, wait_idle, wait_title
from pipeline.config import IDC_MODEL_FILE, idc_dir_in
from pipeline.paths import MODELS_DIR

pytestmark = pytest.mark.full

SHOTS = ROOT / "test-output" / "screenshots"
TITLE = "Histopathology: invasive ductal carcinoma (IDC)"
ANSWER = re.compile(r"Prediction: (IDC|non-IDC)")


def _shot(page, name: str) -> None:
    fit_viewport(page, width=1400)
    page.screenshot(path=str(SHOTS / f"histopathology_{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_histopathology_page_in_a_browser(chromium, tmp_path, idc_test_pack, busi_dir, known_idc_models):
    from playwright.sync_api import sync_playwright

    models = MODELS_DIR if (idc_dir_in(MODELS_DIR) / IDC_MODEL_FILE).is_file() else known_idc_models
    SHOTS.mkdir(parents=True, exist_ok=True)
    patches = idc_test_pack.images[:24]
    tile = np.concatenate([np.concatenate(list(patches[r * 6:(r + 1) * 6]), axis=1) for r in range(4)])[:180, :275]
    upload = tmp_path / "tile.png"
    Image.fromarray(tile).save(upload)
    frame = busi_dir / "benign" / "benign (1).png"

    env = {"BUSI_MODELS_DIR": str(models), "BUSI_OFFLINE": "1"}
    with streamlit_server(env=env, log_path=tmp_path / "streamlit.log") as (url, proc):
        wait_healthy(url, proc)
        with sync_playwright() as p:
            browser = launch(p, chromium)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                outside, errors = [], []
                block_outside(page, lambda kind, u: outside.append((kind, u)))
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(url)
                link = page.locator('[data-testid="stSidebarNav"] a[href$="/histopathology"]')
                link.first.wait_for(timeout=120_000)
                link.first.click()
                wait_title(page, TITLE, timeout_ms=240_000)
                page.get_by_text("How good is the model?").first.wait_for(timeout=240_000)  # the whole first run
                wait_idle(page, timeout_ms=240_000)

                t0 = time.perf_counter()
                page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(upload))
                page.get_by_text(ANSWER).first.wait_for(timeout=120_000)
                print(f"tile upload to answer: {time.perf_counter() - t0:.2f} s")
                wait_idle(page)
                assert page.get_by_text(re.compile(r"of 24 cells")).count(), "a 6x4 grid of cells"
                assert page.get_by_text(re.compile(r"completed by mirroring")).count()
                assert not page.locator('[data-testid="stException"]').count()
                _shot(page, "tile")

                assert page.get_by_role("slider").count() == 1  # the heat-map opacity (moved in the AppTest)

                t0 = time.perf_counter()
                page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(frame))
                try:
                    page.get_by_text(re.compile(r"use the Diagnose page")).first.wait_for(timeout=120_000)
                except Exception:
                    _shot(page, "ultrasound_failed")
                    raise
                print(f"ultrasound upload to refusal: {time.perf_counter() - t0:.2f} s")
                wait_idle(page)
                assert not page.get_by_text(ANSWER).count()
                _shot(page, "ultrasound_refused")
            finally:
                browser.close()
    assert not outside, outside
    assert not errors, errors

