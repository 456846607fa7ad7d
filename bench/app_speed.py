"""Dashboard speed in a real browser: cold start and upload-to-diagnosis time.

Usage: ``python -m bench.app_speed [--runs 3] [--uploads 7] [--screenshots docs/screenshots]``
(needs Debian ``chromium``: ``make browser``). Models from BUSI_MODELS_DIR or models/; the
dataset from BUSI_DIR (optional).

* cold start: from launching ``streamlit run`` to the Diagnose page's title visible in the
  browser (what a user waits for; goal <= 5 s), to a usable uploader (the models load in their own
  process meanwhile, the page showing their steps; goal <= 10 s) and to the models loaded and warm;
  median over ``--runs`` fresh servers.
* upload-to-diagnosis: with the models loaded, from handing a new image to the file input to
  the predicted label on screen (and to the page finished, Grad-CAM included); each upload is a
  different image (BUSI test frames, else generated ones), so no cache helps. Median of ``--uploads`` (>= 5). Goal: <= 1 s.
* ``--screenshots DIR``: one screenshot per page for the README — Diagnose with a generated
  (not patient) image, Dataset cropped to the charts, Models without the image browser.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import cv2

from bench.browser import (
    LABEL_RE,
    PAGE_TITLES,
    find_chromium,
    fit_viewport,
    launch,
    models_loaded,
    open_page,
    search_clinics,
    streamlit_server,
    synthetic_ultrasound,
    uploader_usable,
    wait_healthy,
    wait_idle,
    wait_title,
)
from bench.common import test_image_paths

ROOT = Path(__file__).resolve().parent.parent
GOAL_COLD_S = 5.0
GOAL_UPLOADER_S = 10.0
GOAL_UPLOAD_S = 1.0


def cold_start(browser, log_dir: Path, run: int) -> dict:
    t0 = time.perf_counter()
    with streamlit_server(log_path=log_dir / f"streamlit_cold_{run}.log") as (url, proc):
        health = wait_healthy(url, proc)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        wait_title(page, PAGE_TITLES["diagnose"])
        title = time.perf_counter() - t0
        uploader_usable(page)
        usable = time.perf_counter() - t0
        models_loaded(page)
        ready = time.perf_counter() - t0
        page.close()
    return {"health_s": health, "title_s": title, "uploader_s": usable, "models_ready_s": ready}


def upload_images(tmp: Path, n: int) -> list[Path]:
    """``n`` different images to upload: BUSI test-split frames when the dataset is there (the scope gate accepts
    them), else generated ones (which the gate may refuse: the upload then also presses "Analyse anyway")."""
    from pipeline import paths

    sources = test_image_paths(n) if paths.dataset_available() else []
    out = []
    for k in range(n):
        path = tmp / f"bench_upload_{k}.png"
        if k < len(sources):
            shutil.copyfile(sources[k], path)
        else:
            cv2.imwrite(str(path), synthetic_ultrasound(seed=100 + k))
        out.append(path)
    return out


def upload_times(page, tmp: Path, n: int) -> list[dict]:
    out = []
    for k, path in enumerate(upload_images(tmp, n + 1)):  # the first upload warms the graph and is not counted
        t0 = time.perf_counter()
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(path))
        shown = page.get_by_text(f"For {path.name}, the refined model gives")  # the answer, beside its heading
        refused = page.get_by_text(f"{path.name} (")  # the refusal panel's caption: the scope gate said no
        shown.or_(refused).first.wait_for(timeout=120_000)
        if not shown.count():
            page.get_by_text("Analyse anyway").first.click()
            shown.first.wait_for(timeout=120_000)
        label = time.perf_counter() - t0
        assert page.get_by_role("heading", name=LABEL_RE).count()
        wait_idle(page, settle_ms=0)
        done = time.perf_counter() - t0
        if k:
            out.append({"label_s": label, "complete_s": done})
    return out


def screenshots(browser, url: str, out_dir: Path, tmp: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    saved = []
    page.goto(url)
    wait_title(page, PAGE_TITLES["diagnose"])
    wait_idle(page)
    img = tmp / "synthetic_example.png"
    cv2.imwrite(str(img), synthetic_ultrasound(seed=7))
    models_loaded(page)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(img))
    shown, refused = page.get_by_text(f"Original — {img.name}"), page.get_by_text(f"{img.name} (")
    shown.or_(refused).first.wait_for(timeout=120_000)
    if not shown.count():  # the scope gate refuses the generated picture: show its research-only answer
        page.get_by_text("Analyse anyway").first.click()
        shown.first.wait_for(timeout=120_000)
    wait_idle(page, settle_ms=1500)
    fit_viewport(page)
    saved.append(out_dir / "diagnose.png")
    page.screenshot(path=str(saved[-1]), full_page=True)

    for name, stop_text in (("dataset", None), ("models", "Where the models disagree or are wrong")):
        open_page(page, url, name)
        wait_title(page, PAGE_TITLES[name])
        page.set_viewport_size({"width": 1400, "height": 1000})
        wait_idle(page, settle_ms=2000)
        fit_viewport(page)
        clip = None
        if stop_text:  # leave out the part that shows dataset images
            box = page.get_by_text(stop_text).first.bounding_box()
            if box:
                clip = {"x": 0, "y": 0, "width": 1400, "height": box["y"] - 10}
        elif name == "dataset":  # overview tab: charts only; stop before the split table
            box = page.get_by_text("Split composition per class").first.bounding_box()
            if box:
                clip = {"x": 0, "y": 0, "width": 1400, "height": box["y"] + 420}
        saved.append(out_dir / f"{name}.png")
        page.screenshot(path=str(saved[-1]), clip=clip, full_page=clip is None)
    if (ROOT / "dashboard" / "views" / "clinics.py").is_file():
        open_page(page, url, "clinics")
        page.set_viewport_size({"width": 1400, "height": 1000})
        search_clinics(page)
        wait_idle(page, settle_ms=2500)
        fit_viewport(page)
        saved.append(out_dir / "clinics.png")
        page.screenshot(path=str(saved[-1]), full_page=True)
    page.close()
    return saved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="cold starts (fresh servers)")
    ap.add_argument("--uploads", type=int, default=7, help="timed uploads (>= 5)")
    ap.add_argument("--screenshots", type=Path, default=None, help="folder for one screenshot per page")
    ap.add_argument("--out", type=Path, default=ROOT / "test-output" / "bench_app_speed.json")
    args = ap.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print("Chromium not found: run `make browser` first.", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    tmp = ROOT / "test-output" / "bench"
    tmp.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p, chromium)
        try:
            colds = [cold_start(browser, tmp, i) for i in range(args.runs)]
            with streamlit_server(log_path=tmp / "streamlit_uploads.log") as (url, proc):
                wait_healthy(url, proc)
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                page.goto(url)
                wait_title(page, PAGE_TITLES["diagnose"])
                models_loaded(page)
                ups = upload_times(page, tmp, max(5, args.uploads))
                page.close()
                shots = screenshots(browser, url, args.screenshots, tmp) if args.screenshots else []
        finally:
            browser.close()
    def med(rows, k):
        return statistics.median(r[k] for r in rows)

    result = {
        "cold_start": {"runs": colds, "median_health_s": med(colds, "health_s"),
                       "median_first_page_s": med(colds, "title_s"), "median_uploader_s": med(colds, "uploader_s"),
                       "median_models_ready_s": med(colds, "models_ready_s"),
                       "goal_first_page_s": GOAL_COLD_S, "goal_uploader_s": GOAL_UPLOADER_S},
        "upload_to_diagnosis": {"runs": ups, "median_label_s": med(ups, "label_s"),
                                "median_complete_s": med(ups, "complete_s"), "goal_s": GOAL_UPLOAD_S},
        "screenshots": [str(s.resolve().relative_to(ROOT)) if s.resolve().is_relative_to(ROOT) else str(s) for s in shots],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    c, u = result["cold_start"], result["upload_to_diagnosis"]
    print(f"cold start (median of {len(colds)}): health {c['median_health_s']:.2f} s, first page "
          f"{c['median_first_page_s']:.2f} s (goal <= {GOAL_COLD_S:.0f} s), uploader usable "
          f"{c['median_uploader_s']:.2f} s (goal <= {GOAL_UPLOADER_S:.0f} s), models loaded and warm "
          f"{c['median_models_ready_s']:.2f} s")
    print(f"upload to diagnosis (median of {len(ups)}): label {u['median_label_s']:.2f} s "
          f"(goal <= {GOAL_UPLOAD_S:.0f} s), page complete with Grad-CAM {u['median_complete_s']:.2f} s")
    for s in result["screenshots"]:
        print(f"screenshot: {s}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
