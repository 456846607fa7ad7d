"""Every page in a real browser at 1400 and 800 px, with every non-local request blocked and recorded.

- Diagnose: upload a generated image; the zoomable overlay zooms with the wheel, keeps its zoom when the mask
  style changes, resets on double-click, and is at least 60% of the main area wide; the probability chart's
  legend stays clear of its axis labels; the answer survives a trip to another page.
- Dataset: gallery paging with the keyboard, thumbnails in an even grid, charts not squeezed, filters kept.
- Models: every chart's legend inside its figure and off its plot area, no metric label cut.
- Clinics: the map shows every listed place, no request for Leaflet's marker images, the table's columns fit.

Screenshots: test-output/screenshots/views_<page>_<width>.png (look at them). Skips when Chromium or the
playwright package is absent (`make browser` installs Chromium).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import pytest

from bench.browser import (
    LABEL_RE,
    PAGE_TITLES,
    ROOT,
    block_outside,
    fit_viewport,
    launch,
    models_loaded,
    open_page,
    search_clinics,
    synthetic_ultrasound,
    wait_idle,
    wait_title,
)
from pipeline.paths import MODELS_DIR

pytestmark = pytest.mark.full  # a real browser and a server

SHOTS = ROOT / "test-output" / "screenshots"
WIDTHS = (1400, 800)
LABEL_OR_REFUSAL = re.compile(LABEL_RE.pattern + "|does not look like a breast ultrasound")
# The plotly graph of the zoomable overlay: the one whose first trace is an image.
ZOOM_GRAPH = "[...document.querySelectorAll('.js-plotly-plot')].find(g => g.data && g.data[0].type === 'image')"
MAIN = ("(e => e.clientWidth - parseFloat(getComputedStyle(e).paddingLeft) - parseFloat(getComputedStyle(e).paddingRight))"
        "(document.querySelector('[data-testid=\"stMainBlockContainer\"]'))")  # the content width
# For every plotly chart but the zoomable image: is its legend inside the figure and off the plot area
# (where it would hide curves or axis labels)? Returns the titles of the charts that fail.
LEGEND_PROBLEMS = """() => {
  const bad = [];
  const overlap = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  for (const g of document.querySelectorAll('.js-plotly-plot')) {
    if (g.data && g.data[0] && g.data[0].type === 'image') continue;
    const legend = g.querySelector('.legend');
    if (!legend) continue;
    const l = legend.getBoundingClientRect(), fig = g.getBoundingClientRect();
    const name = (g.querySelector('.gtitle') || {}).textContent || g.parentElement.className;
    if (l.left < fig.left - 1 || l.right > fig.right + 1 || l.top < fig.top - 1 || l.bottom > fig.bottom + 1)
      bad.push('legend cut: ' + name);
    for (const area of g.querySelectorAll('.nsewdrag')) if (overlap(l, area.getBoundingClientRect()))
      bad.push('legend over the plot: ' + name);
    for (const t of g.querySelectorAll('.xtick text, .ytick text')) if (overlap(l, t.getBoundingClientRect()))
      { bad.push('legend over axis labels: ' + name); break; }
  }
  return bad;
}"""
CUT_LABELS = """() => [...document.querySelectorAll('[data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] div')]
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""


pytestmark = pytest.mark.full  # a real browser


def _shot(page, name: str, width: int) -> None:
    fit_viewport(page, width=width)
    page.screenshot(path=str(SHOTS / f"views_{name}_{width}.png"), full_page=True)
    page.set_viewport_size({"width": width, "height": 1000})


def _x_range(page) -> list[float]:
    return page.evaluate(f"() => ({ZOOM_GRAPH})._fullLayout.xaxis.range.slice()")


def _diagnose(page, url: str, upload: Path, width: int) -> None:
    open_page(page, url, "diagnose")
    wait_title(page, PAGE_TITLES["diagnose"])
    models_loaded(page)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(upload))
    page.get_by_text(LABEL_OR_REFUSAL).first.wait_for(timeout=120_000)
    if not page.get_by_text(LABEL_RE).count():  # refused by the scope gate: the same words, then look anyway
        wait_idle(page)
        assert page.get_by_text("no label is shown").count()
        refusal = page.locator('[data-testid="stAlert"]').filter(has_text="does not look like").first.inner_text()
        assert "distance" not in refusal, refusal  # plain words; the gate's numbers only in the detail line
        _shot(page, "diagnose_refused", width)
        page.get_by_text("Analyse anyway").first.click()
        page.get_by_text(LABEL_RE).first.wait_for(timeout=120_000)
        assert page.get_by_text("Research-only answer").count() and not page.get_by_text("no label is shown").count()
    wait_idle(page)
    assert not page.locator('[data-testid="stException"]').count()
    page.wait_for_function(f"() => !!({ZOOM_GRAPH})", timeout=30_000)
    _shot(page, "diagnose_result", width)
    graph = page.evaluate_handle(f"() => ({ZOOM_GRAPH})").as_element()
    graph.scroll_into_view_if_needed()
    b = graph.bounding_box()
    assert b and b["width"] >= 0.55 * page.evaluate(f"() => {MAIN}"), (b, width)  # large at any width
    before = _x_range(page)
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    page.mouse.wheel(0, -400)
    width_js = f"({ZOOM_GRAPH})._fullLayout.xaxis.range[1] - ({ZOOM_GRAPH})._fullLayout.xaxis.range[0]"
    page.wait_for_function(f"() => {width_js} < {before[1] - before[0]}", timeout=15_000)
    page.wait_for_timeout(800)  # plotly applies wheel zoom in steps: let it settle
    zoomed = _x_range(page)
    assert zoomed[1] - zoomed[0] < before[1] - before[0], (before, zoomed)
    # another outline style (in the figure) and another heatmap opacity (a Streamlit rerun) keep the zoom
    page.locator(".updatemenu-button").filter(has_text="Outline only").first.click()
    page.wait_for_function(f"() => ({ZOOM_GRAPH}).data[1].visible === false", timeout=15_000)
    assert _x_range(page) == pytest.approx(zoomed, abs=1.0), "the zoom survives a change of style"
    page.get_by_role("slider", name="Heatmap opacity").first.focus()
    page.keyboard.press("ArrowRight")
    wait_idle(page)
    assert _x_range(page) == pytest.approx(zoomed, abs=1.0), "the zoom survives a rerun of the page"
    page.locator(".updatemenu-button").filter(has_text="Prediction filled").first.click()
    graph = page.evaluate_handle(f"() => ({ZOOM_GRAPH})").as_element()
    b = graph.bounding_box()
    page.mouse.dblclick(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    lo_js = f"({ZOOM_GRAPH})._fullLayout.xaxis.range[0]"
    page.wait_for_function(f"() => Math.abs({width_js} - {before[1] - before[0]}) < 1 && Math.abs({lo_js} - {before[0]}) < 1",
                           timeout=15_000)
    assert not page.evaluate(LEGEND_PROBLEMS), page.evaluate(LEGEND_PROBLEMS)  # the probability chart
    heading = page.get_by_text(LABEL_RE).first.inner_text()
    # the analysis survives a trip to another page
    open_page(page, url, "models")
    wait_title(page, PAGE_TITLES["models"])
    open_page(page, url, "diagnose")
    page.get_by_text(LABEL_RE).first.wait_for(timeout=60_000)
    assert page.get_by_text(LABEL_RE).first.inner_text() == heading
    assert page.get_by_text(f"Your last upload, {upload.name}").count()


def _dataset(page, url: str, width: int) -> None:
    open_page(page, url, "dataset")
    wait_title(page, PAGE_TITLES["dataset"])
    wait_idle(page)
    _shot(page, "dataset", width)
    wait_idle(page)
    charts = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(g => g.getBoundingClientRect().width)")
    assert len(charts) >= 5 and min(charts) >= 0.45 * page.evaluate(f"() => {MAIN}") - 2, charts  # no slivers
    assert not page.evaluate(LEGEND_PROBLEMS), page.evaluate(LEGEND_PROBLEMS)
    page.get_by_role("tab", name=re.compile("Gallery")).click()
    page.get_by_text(re.compile(r"Page \d+ of \d+")).first.wait_for(timeout=30_000)
    if page.get_by_role("button", name=re.compile("Previous page")).first.is_enabled():  # kept from the last width
        page.get_by_role("button", name=re.compile("Previous page")).first.click()
        wait_idle(page)
    # keyboard only: focus "Next page" and press Enter
    start = int(re.search(r"Page (\d+) of", page.get_by_text(re.compile(r"Page \d+ of \d+")).first.inner_text()).group(1))
    page.get_by_role("button", name=re.compile("Next page")).first.focus()
    page.keyboard.press("Enter")
    page.get_by_text(re.compile(rf"Page {start + 1} of \d+")).first.wait_for(timeout=30_000)
    wait_idle(page)
    heights = page.evaluate("() => [...document.querySelectorAll('[class*=\"st-key-grid_g_grid\"] img')]"
                            ".map(i => Math.round(i.getBoundingClientRect().height))")
    assert len(heights) == 12 and max(heights) - min(heights) <= 1, heights  # an even grid
    _shot(page, "dataset_gallery", width)
    page.get_by_role("tab", name=re.compile("Duplicates")).click()
    page.get_by_text("Cross-label conflicts").first.wait_for(timeout=30_000)
    wait_idle(page)
    assert not page.evaluate(CUT_LABELS), page.evaluate(CUT_LABELS)
    heights = page.evaluate("() => [...document.querySelectorAll('[class*=\"st-key-grid_conflict_\"] img')]"
                            ".map(i => Math.round(i.getBoundingClientRect().height)).filter(h => h > 0)")
    assert len(heights) >= 16 and max(heights) - min(heights) <= 1, heights  # conflicts side by side, even
    _shot(page, "dataset_duplicates", width)
    open_page(page, url, "models")  # the open tab survives a page switch
    wait_title(page, PAGE_TITLES["models"])
    open_page(page, url, "dataset")
    page.get_by_text("Cross-label conflicts").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name=re.compile("Overview")).click()  # back for the next width
    wait_idle(page)


def _models(page, url: str, width: int) -> None:
    open_page(page, url, "models")
    wait_title(page, PAGE_TITLES["models"])
    wait_idle(page)
    if page.get_by_text("No evaluation results").count():
        _shot(page, "models", width)
        return
    labels = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    assert labels and all(lbl.strip() for lbl in labels)
    assert not page.evaluate(CUT_LABELS), page.evaluate(CUT_LABELS)
    fit_viewport(page, width=width)  # every chart drawn
    wait_idle(page)
    assert not page.evaluate(LEGEND_PROBLEMS), page.evaluate(LEGEND_PROBLEMS)
    roc = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].filter(g => /ROC/.test("
                        "(g.querySelector('.gtitle') || {}).textContent)).map(g => g.getBoundingClientRect().width)")
    assert roc and min(roc) >= 280, roc  # one panel per class, each wide enough to read
    assert page.get_by_text(re.compile("chosen with most of these pictures in view")).count()  # the gate's caveat
    _shot(page, "models", width)
    page.get_by_text("Presentation view").first.click()
    page.get_by_role("heading", name=re.compile("BUSI test split")).first.wait_for(timeout=30_000)
    wait_idle(page)
    assert not page.locator('[data-testid="stDataFrame"]').count(), "presentation view shows no tables"
    assert page.get_by_text(re.compile(r"Refined − baseline accuracy|not evaluated", re.I)).count()
    _shot(page, "models_presentation", width)
    page.get_by_text("Presentation view").first.click()  # back to the normal view for the next width
    wait_idle(page)


def _clinics(page, url: str, width: int) -> None:
    open_page(page, url, "clinics")
    wait_title(page, PAGE_TITLES["clinics"])
    search_clinics(page)
    wait_idle(page, settle_ms=2500)
    frame = page.frame_locator('iframe[title*="folium"]').first
    frame.locator(".busi-marker").first.wait_for(timeout=30_000)
    inside = frame.locator("body").evaluate("""() => {
        const box = document.querySelector('.leaflet-container').getBoundingClientRect();
        const m = [...document.querySelectorAll('.busi-marker')].map(e => e.getBoundingClientRect());
        return [m.length, m.filter(r => r.left >= box.left && r.right <= box.right && r.top >= box.top
                                         && r.bottom <= box.bottom).length];
    }""")
    assert inside[0] >= 1 and inside[0] == inside[1], inside  # the map is fitted to every place listed
    _shot(page, "clinics", width)


def test_pages_at_two_widths_without_outside_requests(chromium, offline_app, tmp_path):
    from playwright.sync_api import sync_playwright

    models = Path(os.environ.get("BUSI_MODELS_DIR") or MODELS_DIR)
    have_models = (models / "unet.keras").is_file()
    have_data = bool(os.environ.get("BUSI_DIR")) and Path(os.environ["BUSI_DIR"]).is_dir()
    SHOTS.mkdir(parents=True, exist_ok=True)
    upload = tmp_path / "synthetic.png"
    cv2.imwrite(str(upload), synthetic_ultrasound(seed=3))

    url = offline_app
    with sync_playwright() as p:
        browser = launch(p, chromium)
        try:
            page = browser.new_page(viewport={"width": WIDTHS[0], "height": 1000})
            outside: list[tuple[str, str, str]] = []
            errors: list[tuple[str, str]] = []
            missing: list[str] = []
            current = {"page": "diagnose"}
            block_outside(page, lambda kind, url: outside.append((current["page"], kind, url)))
            page.on("pageerror", lambda exc: errors.append((current["page"], str(exc))))
            page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
            page.goto(url)
            wait_title(page, PAGE_TITLES["diagnose"])
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 1000})
                for name, visit, needed in (("diagnose", _diagnose, have_models), ("dataset", _dataset, have_data),
                                            ("models", _models, True), ("clinics", _clinics, True)):
                    if not needed:
                        continue
                    current["page"] = name
                    if name == "diagnose":
                        visit(page, url, upload, width)
                    else:
                        visit(page, url, width)
                    assert not page.locator('[data-testid="stException"]').count(), (name, width)
            # Diagnose, Dataset and Models ask nothing from outside (no favicon from fonts.gstatic.com,
            # no fonts, no scripts). The Clinics map may ask for tiles (images) and fails over offline.
            own = [o for o in outside if o[0] != "clinics"]
            assert not own, own[:10]
            assert not [o for o in outside if o[1] != "image"], outside[:10]
            # e.g. Leaflet's marker-icon.png; Streamlit's /media/ files can 404 when a rerun replaced them first
            missing = [u for u in missing if "/media/" not in u]
            assert not missing, missing[:10]
            unexpected = [e for e in errors if not (e[0] == "clinics" and e[1] == "Event")]
            assert not unexpected, unexpected
        finally:
            browser.close()
