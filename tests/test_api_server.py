"""The real server (``python -m pipeline serve`` in its own process, one for this module): answers under
concurrency equal serial ones, connection timeouts, JSON for malformed HTTP, no banner, the queue's 503 +
Retry-After, and /docs rendering in a browser with every outside request blocked. Full tier."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from pipeline import paths
from pipeline.config import model_path

pytestmark = pytest.mark.full

PROJECT_ROOT = Path(__file__).resolve().parent.parent
IMAGES = [f"{cls}/{cls} ({n}).png" for cls, ns in (("benign", (1, 2, 3)), ("malignant", (1, 2, 3)), ("normal", (1, 2)))
          for n in ns]
TIMEOUT_S = 2  # header and body timeouts of the test server
MAX_QUEUE = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    """Base URL of a real server with short timeouts (the models from models/)."""
    if not model_path("seg", paths.models_dir()).is_file():
        pytest.skip("trained models not found")
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("BUSI_API_KEY", None)
    cmd = [sys.executable, "-m", "pipeline", "serve", "--port", str(port), "--header-timeout", str(TIMEOUT_S),
           "--body-timeout", str(TIMEOUT_S), "--keep-alive", "3", "--max-queue", str(MAX_QUEUE)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, status = time.monotonic() + 180, None
        while time.monotonic() < deadline and status != 200:
            assert proc.poll() is None, f"server exited: {log.read_text()[-3000:]}"
            try:
                status = httpx.get(f"{base}/health", timeout=5).status_code
            except httpx.TransportError:
                time.sleep(0.5)
        assert status == 200, f"/health never answered 200: {log.read_text()[-3000:]}"
        yield base
        assert "request_id=" in log.read_text()  # the access log names every request
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _connect(base: str) -> socket.socket:
    host, port = base.rsplit("//", 1)[1].split(":")
    return socket.create_connection((host, int(port)), timeout=TIMEOUT_S + 8)


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails when it keeps it open)."""
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_concurrent_answers_equal_serial_ones(server, busi_dir):
    files = [busi_dir / rel for rel in IMAGES]
    with httpx.Client(base_url=server, timeout=60) as http:
        def ask(path: Path) -> dict:
            r = http.post("/predict", files={"file": (path.name, path.read_bytes(), "image/png")})
            assert r.status_code == 200, r.text
            return {k: v for k, v in r.json().items() if k != "ms"}

        serial = [ask(p) for p in files]
        with ThreadPoolExecutor(len(files)) as pool:
            concurrent = list(pool.map(ask, files))
    assert len({s["image"] for s in serial}) == len(files)
    assert concurrent == serial


def test_no_server_banner(server):
    r = httpx.get(f"{server}/health")
    assert "server" not in r.headers and r.headers["x-request-id"]


def test_stalled_headers_are_closed_with_408(server):
    t0 = time.monotonic()
    with _connect(server) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b'"error"' in answer
    assert TIMEOUT_S - 0.5 < time.monotonic() - t0 < TIMEOUT_S + 5
    with _connect(server) as sock:  # a connection that sends nothing at all is closed too
        assert _read_all(sock).startswith(b"HTTP/1.1 408")


def test_stalled_body_is_408_and_closed(server):
    with _connect(server) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; "
                     b"filename=\"a.png\"\r\n\r\n\x89PNG")  # half a body, then silence
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"stopped arriving" in answer and b"x-request-id" in answer.lower()


def test_idle_keep_alive_connection_is_closed(server):
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        answer = _read_all(sock)  # the answer, then the server closes the idle connection
    assert answer.startswith(b"HTTP/1.1 200") and time.monotonic() - t0 < TIMEOUT_S + 5


def test_malformed_http_is_a_json_400(server):
    for request in (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                    b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n"):
        with _connect(server) as sock:
            sock.sendall(request)
            answer = _read_all(sock)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head, answer
        assert b"not valid HTTP" in body and b"uvicorn" not in answer.lower()


def test_a_full_queue_answers_503_with_retry_after(server, busi_dir):
    data = (busi_dir / "benign" / "benign (1).png").read_bytes()
    n = MAX_QUEUE + 2 + 12  # more than the slots and the queue hold
    with httpx.Client(base_url=server, timeout=120, limits=httpx.Limits(max_connections=n)) as http:
        def ask(_):
            return http.post("/predict", files={"file": ("a.png", data, "image/png")})

        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(ask, range(n)))
        metrics = http.get("/metrics").text
    codes = sorted(r.status_code for r in answers)
    assert set(codes) == {200, 503} and codes.count(200) >= MAX_QUEUE + 2, codes
    busy = [r for r in answers if r.status_code == 503]
    assert all(int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["error"] for r in busy)
    assert "busi_api_busy_rejections_total" in metrics and "busi_api_queue_depth 0.0" in metrics


def test_docs_render_offline_in_a_browser(server, chromium):
    """Swagger UI and ReDoc draw the API from the packaged assets with every outside request aborted."""
    from playwright.sync_api import sync_playwright

    from bench.browser import block_outside, launch

    blocked: list[str] = []
    with sync_playwright() as pw:
        browser = launch(pw, chromium)
        try:
            page = browser.new_page()
            block_outside(page, lambda kind, url: blocked.append(url))
            page.goto(f"{server}/docs")
            page.locator(".opblock-summary-path", has_text="/predict").first.wait_for(timeout=60_000)
            assert page.locator(".opblock").count() >= 4
            page.goto(f"{server}/redoc")
            page.get_by_text("Segment and classify one ultrasound image").first.wait_for(timeout=60_000)
        finally:
            browser.close()
    assert blocked == [], blocked
