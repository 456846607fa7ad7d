"""Helpers for the real-browser test and the app benchmark: a `streamlit run` server on
127.0.0.1 and headless Debian Chromium driven by the playwright python package.

Nothing is installed here: `make browser` installs the Debian ``chromium`` package.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
# The answer's heading: "Prediction: x", or "Research-only answer: x" for a picture the scope gate refused
# that the user chose to analyse anyway.
LABEL_RE = re.compile(r"(?:Prediction|Research-only answer): (benign|malignant|normal)")
PAGE_TITLES = {"diagnose": "Diagnose an ultrasound image", "dataset": "The BUSI dataset",
               "models": "How good are the models?", "clinics": "Clinics and cancer centres nearby"}


def search_clinics(page, timeout_ms: int = 90_000) -> None:
    """On the Clinics page: press Search for the default place and wait for the table. The page's own primary
    button: once a results table is shown, its toolbar carries a second button named "Search"."""
    page.get_by_test_id("stBaseButton-primary").filter(has_text="Search").click()
    page.get_by_text("Nearest first").first.wait_for(timeout=timeout_ms)


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> float:
    """Wait for ``/_stcore/health``; returns the time it took. Raises if the server died."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"streamlit not healthy after {timeout:.0f} s")


@contextlib.contextmanager
def streamlit_server(env: dict | None = None, log_path: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``streamlit run dashboard/app.py`` on a free 127.0.0.1 port; always terminated on exit."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop(proc)
        if log_path:
            log.close()


def stop(proc: subprocess.Popen, grace_s: float = 15) -> None:
    """Terminate a server process started by a test; killed when it does not stop within ``grace_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def synthetic_ultrasound(seed: int = 0, shape: tuple[int, int] = (420, 560)) -> np.ndarray:
    """A generated (not patient) ultrasound-like image: speckle, a fan, a dark oval 'lesion'."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    base = 70 + 60 * np.exp(-((yy - h * 0.35) / (h * 0.5)) ** 2)
    speckle = rng.gamma(2.0, 0.5, (h, w))
    img = base * speckle
    lesion = ((xx - w * 0.5) / (w * 0.16)) ** 2 + ((yy - h * 0.5) / (h * 0.14)) ** 2 < 1
    img[lesion] *= 0.25
    img = cv2.GaussianBlur(img.astype(np.float32), (3, 3), 0)
    fan = np.abs(xx - w / 2) < (yy + 40) * 0.9
    img[~fan] = 0
    return np.clip(img, 0, 255).astype(np.uint8)


def write_upload_image(path: Path, busi_dir: Path | None = None) -> Path:
    """Write a dataset test image (when the dataset is present) or a generated one to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if busi_dir is not None:
        src = Path(busi_dir) / "malignant" / "malignant (1).png"
        if src.is_file():
            shutil.copyfile(src, path)
            return path
    cv2.imwrite(str(path), synthetic_ultrasound())
    return path


def launch(playwright, chromium: str):
    return playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)


def wait_idle(page, timeout_ms: int = 120_000, settle_ms: int = 800) -> None:
    """Wait until Streamlit has finished running the script (the 'running' status is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.match(/Running|Stop/)",
        timeout=timeout_ms)
    page.wait_for_timeout(settle_ms)


def wait_title(page, title: str, timeout_ms: int = 120_000) -> None:
    page.get_by_role("heading", name=re.compile(re.escape(title))).first.wait_for(timeout=timeout_ms)


def uploader_usable(page, timeout_ms: int = 120_000) -> None:
    """Wait until the Diagnose page's file input is there and enabled (files can be chosen)."""
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=\"stFileUploader\"] input[type=\"file\"]');"
        " return !!i && !i.disabled; }", timeout=timeout_ms)


def models_loaded(page, timeout_ms: int = 180_000) -> None:
    """Wait until the Diagnose page says the models are ready (or already shows an answer or a refusal)."""
    ready = page.get_by_text("Models loaded and ready").or_(page.get_by_text(LABEL_RE)).or_(
        page.get_by_text("does not look like a breast ultrasound"))
    ready.first.wait_for(timeout=timeout_ms)
    wait_idle(page, timeout_ms=timeout_ms, settle_ms=0)


def fit_viewport(page, width: int = 1400, max_height: int = 8000) -> int:
    """Make the viewport as tall as the app's content (Streamlit scrolls inside its main area,
    so a full-page screenshot would stop at the viewport); returns the height used."""
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]') || document.body;"
        " return Math.max(m.scrollHeight, document.body.scrollHeight); }")
    height = int(min(max(height + 40, 800), max_height))
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(1200)  # charts and tables re-layout
    return height


def open_page(page, base_url: str, name: str) -> None:
    """Go to a page by clicking its sidebar link, as a user would (the session and its state stay); falls back
    to its URL (a new session) when there is no sidebar yet."""
    if name == "diagnose":  # the default page's link ends in "/": find it by its title
        link = page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Diagnose")
    else:
        link = page.locator(f'[data-testid="stSidebarNav"] a[href$="/{name}"]')
    if link.count():
        link.first.click()
    else:
        page.goto(base_url + ("/" if name == "diagnose" else f"/{name}"))


def upload_and_wait_label(page, file_path: Path, timeout_ms: int = 120_000) -> str:
    """Upload on the Diagnose page and wait for the predicted label; returns it."""
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(file_path))
    locator = page.get_by_text(LABEL_RE).first
    locator.wait_for(timeout=timeout_ms)
    return LABEL_RE.search(locator.inner_text()).group(1)


LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def block_outside(page, record: Callable[[str, str], None]) -> None:
    """Abort every request that leaves this machine, as if offline, calling ``record(resource_type, url)``."""
    from urllib.parse import urlsplit

    def handle(route):
        url = route.request.url
        if url.startswith(("data:", "blob:", "about:")) or urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            record(route.request.resource_type, url)
            route.abort("internetdisconnected")

    page.route("**/*", handle)
