"""The HTTP API (``pipeline.api``): health, version, predictions equal to the Predictor's, error statuses,
the upload limit, and the real server under concurrent requests. Uses the committed models, no mocks."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from bad_inputs import EXPECTED_KEYWORDS, bad_input_corpus
from dicom_factory import make_dicom

with warnings.catch_warnings():  # starlette asks for httpx2; httpx (pinned in requirements.txt) still works
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

import pipeline
from pipeline import paths
from pipeline.api import MAX_UPLOAD_BYTES, create_app
from pipeline.config import model_path
from pipeline.errors import ImageLoadError, ModelLoadError
from pipeline.imageio import load_image
from pipeline.inference.bundle import read_manifest
from pipeline.inference.measure import measure
from pipeline.inference.predictor import Predictor

MODELS = paths.models_dir()
PROJECT_ROOT = Path(__file__).resolve().parent.parent
UNSUPPORTED = {"random.bin", "notes.png", "report.pdf", "images.zip", "page.html.jpg", "animation.gif", "fake.webp"}
IMAGES = [f"{cls}/{cls} ({n}).png" for cls, ns in (("benign", (1, 2, 3)), ("malignant", (1, 2, 3)), ("normal", (1, 2)))
          for n in ns]


def _require_models() -> None:
    if not model_path("seg", MODELS).is_file():
        pytest.skip(f"trained models not found in {MODELS}")


@pytest.fixture(scope="module")
def app():
    _require_models()
    return create_app(MODELS)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        assert app.state.models.wait(180), "models did not load in 180 s"
        assert app.state.models.status == "ok", app.state.models.reason
        yield c


@pytest.fixture(scope="module")
def direct(predictor) -> Predictor:
    """The run's Predictor, independent of the one the app loads: the reference answers."""
    return predictor


def _upload(client, name: str, data: bytes, query: str = "", **kw) -> httpx.Response:
    return client.post(f"/predict{query}", files={"file": (name, data, "application/octet-stream")}, **kw)


def _assert_same_record(got: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-6), key
        elif isinstance(value, dict):
            assert set(got[key]) == set(value), key
            _assert_same_record(got[key], value)
        else:
            assert got[key] == value, key


def _multipart_stream(name: str, size: int, boundary: str = "limit-test"):
    """A multipart body with a ``size``-byte file, as a generator (so no Content-Length is sent)."""
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    chunk = b"\0" * 2**20
    for _ in range(size // len(chunk)):
        yield chunk
    yield b"\0" * (size % len(chunk))
    yield f"\r\n--{boundary}--\r\n".encode()


# --- health and version -----------------------------------------------------------------------------------
def test_health_ok_after_load(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["models_loaded"] is True
    assert body["package_version"] == pipeline.__version__
    assert isinstance(body["runtime"], dict) and set(body["runtime"].values()) <= {"tflite", "keras"}


def test_health_503_while_loading(client, app):
    gate = threading.Event()
    loaded = app.state.models.predictor

    def slow_factory(models_dir):
        assert gate.wait(60)
        return loaded  # the real Predictor, handed over once the test lets it

    slow = create_app(MODELS, predictor_factory=slow_factory, warmup=False)
    with TestClient(slow) as c:
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "loading" and r.json()["reason"]
        r = c.post("/predict", files={"file": ("x.png", b"\x89PNG", "image/png")})
        assert r.status_code == 503 and "loading" in r.json()["error"]
        gate.set()
        assert slow.state.models.wait(30)
        assert c.get("/health").status_code == 200


def test_health_503_with_reason_when_models_missing(tmp_path):
    empty = create_app(tmp_path)
    with TestClient(empty) as c:
        assert empty.state.models.wait(120)
        r = c.get("/health")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "error" and body["models_loaded"] is False
        with pytest.raises(ModelLoadError) as exc:  # the Predictor's own ModelLoadError message is the reason
            Predictor(tmp_path)
        assert body["reason"] == str(exc.value)
        assert "missing" in body["reason"]
        r = c.post("/predict", files={"file": ("x.png", b"\x89PNG", "image/png")})
        assert r.status_code == 503 and "error" in r.json()
        r = c.get("/version")
        assert r.status_code == 503 and "manifest missing" in r.json()["error"]  # read once at startup


def test_version_has_manifest_and_metrics(client):
    r = client.get("/version")
    assert r.status_code == 200
    body = r.json()
    manifest = read_manifest(MODELS)
    assert body["package_version"] == pipeline.__version__
    assert body["version"] == manifest["version"] and body["models"] == manifest["models"]
    assert set(body["models"]) == {"seg", "raw", "refined"}
    for entry in body["models"].values():
        assert {"input", "output", "sha256", "role"} <= set(entry)
    metrics = json.loads((MODELS / "metrics.json").read_text())
    for name in ("baseline", "refined"):
        for key in ("accuracy", "macro_f1"):
            assert body["metrics"][name][key] == metrics["classifiers"][name]["test"][key]
    assert body["metrics"]["segmentation"]["dice_mean"] == metrics["segmentation"]["test"]["dice_mean"]


def test_version_without_metrics_file(tmp_path):
    (tmp_path / "manifest.json").write_text((MODELS / "manifest.json").read_text())
    app = create_app(tmp_path)  # the models cannot load from here; /version still answers
    with TestClient(app) as c:
        assert app.state.models.wait(60)
        r = c.get("/version")
    assert r.status_code == 200 and r.json()["metrics"] is None and "models" in r.json()


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert spec["info"]["version"] == pipeline.__version__
    assert {"/health", "/version", "/predict"} <= set(spec["paths"])


# --- predictions ---------------------------------------------------------------------------------------
def test_predict_equals_predictor(client, direct, busi_dir):
    path = busi_dir / "malignant" / "malignant (1).png"
    loaded = load_image(path)
    pred = direct.predict(loaded.pixels)
    r = _upload(client, path.name, path.read_bytes())
    assert r.status_code == 200, r.text
    body = r.json()
    _assert_same_record(body, pred.to_record())
    assert body["image"] == path.name
    assert body["label"] == pred.label and body["probabilities"] == pytest.approx(pred.probabilities, abs=1e-6)
    assert body["measurements"] == json.loads(json.dumps(measure(pred.mask, loaded.pixel_spacing_mm).to_dict()))
    assert body["warnings"] == list(loaded.warnings)
    assert body["ms"] > 0 and "mask_png_base64" not in body


def test_predict_mask_png(client, direct, busi_dir):
    path = busi_dir / "benign" / "benign (2).png"
    loaded = load_image(path)
    r = _upload(client, path.name, path.read_bytes(), query="?mask=true")
    assert r.status_code == 200, r.text
    png = base64.b64decode(r.json()["mask_png_base64"])
    assert png.startswith(b"\x89PNG")
    mask = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert mask.shape == loaded.shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    assert np.array_equal(mask, direct.predict(loaded.pixels).mask * 255)


def test_dicom_upload(client, busi_dir):
    path = busi_dir / "benign" / "benign (3).png"
    pixels = np.asarray(load_image(path).pixels)
    as_png = _upload(client, path.name, path.read_bytes()).json()
    r = _upload(client, "frame", make_dicom(pixels, spacing=(0.1, 0.12)))  # no extension: the content decides
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["probabilities"] == as_png["probabilities"] and body["label"] == as_png["label"]
    assert body["measurements"]["pixel_spacing_mm"] == pytest.approx([0.1, 0.12])
    if body["measurements"]["area_px"]:
        assert body["measurements"]["area_mm2"] == pytest.approx(body["measurements"]["area_px"] * 0.1 * 0.12)


def test_bad_inputs_give_415_or_422_with_the_cli_words(client):
    for name, data, expectation in bad_input_corpus():
        r = _upload(client, name, data)
        assert r.status_code < 500, (name, r.status_code, r.text)
        body = r.json()
        if expectation == "error":
            with pytest.raises(ImageLoadError) as exc:
                load_image(data, name=name)
            assert r.status_code == (415 if name in UNSUPPORTED else 422), (name, r.status_code, body)
            assert body["error"] == str(exc.value), name  # the same words as the CLI
            text = body["error"]
        else:
            assert r.status_code == 200, (name, body)
            assert "label" in body
            text = " ".join(body["warnings"])
            if expectation == "ok":
                assert body["warnings"] == [], name
        for word in EXPECTED_KEYWORDS.get(name, ()):
            assert word.lower() in text.lower(), (name, word, text)


def test_text_file_is_415(client):
    r = _upload(client, "notes.txt", b"lesion at 3 o'clock\n")
    assert r.status_code == 415
    assert r.json()["error"] == "notes.txt: this is a text file, not an image. Supported formats: PNG, JPEG, BMP, TIFF, DICOM."


def test_missing_file_field_is_422(client):
    for kwargs in ({}, {"files": {"image": ("x.png", b"\x89PNG", "image/png")}}, {"data": {"file": "not a file"}}):
        r = client.post("/predict", **kwargs)
        assert r.status_code == 422, (kwargs, r.text)
        assert "file" in r.json()["error"]


# --- size limit and internal errors ------------------------------------------------------------------
def test_413_with_a_lowered_limit(client, app):
    loaded = app.state.models.predictor
    small = create_app(MODELS, predictor_factory=lambda d: loaded, max_upload_bytes=100_000, warmup=False)
    with TestClient(small) as c:
        assert small.state.models.wait(30)
        r = _upload(c, "big.png", b"\0" * 200_000)  # Content-Length over the limit
        assert r.status_code == 413 and "too large" in r.json()["error"]
        r = c.post("/predict", content=_multipart_stream("big.png", 200_000),
                   headers={"content-type": "multipart/form-data; boundary=limit-test"})  # no Content-Length
        assert r.status_code == 413 and "too large" in r.json()["error"]
        ok = np.full((64, 64), 100, np.uint8)
        ok[20:40, 20:40] = 30
        r = _upload(c, "small.png", cv2.imencode(".png", ok)[1].tobytes())
        assert r.status_code == 200, r.text


def test_413_real_limit_streamed_and_declared(client):
    assert MAX_UPLOAD_BYTES == 50 * 2**20  # the dashboard's server.maxUploadSize
    r = client.post("/predict", content=_multipart_stream("big.png", MAX_UPLOAD_BYTES + 1),
                    headers={"content-type": "multipart/form-data; boundary=limit-test"})
    assert r.status_code == 413 and "50 MiB" in r.json()["error"]
    r = client.post("/predict", content=b"--x--\r\n",
                    headers={"content-type": "multipart/form-data; boundary=x", "content-length": str(60 * 2**20)})
    assert r.status_code == 413


def test_unexpected_error_is_500_without_traceback(client, app):
    loaded = app.state.models.predictor
    other = create_app(MODELS, predictor_factory=lambda d: loaded, warmup=False)

    def boom():
        raise RuntimeError("boom")

    other.add_api_route("/boom", boom)
    with TestClient(other, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500
    assert r.json() == {"error": "internal error: RuntimeError: boom"}
    assert "Traceback" not in r.text


# --- the real server ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.full
def test_real_server_concurrent_equals_serial(busi_dir, tmp_path):
    _require_models()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", str(port), "--log-level", "warning"],
                                cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.monotonic() + 120, None
        with httpx.Client(base_url=base, timeout=60) as http:
            while time.monotonic() < deadline:
                assert proc.poll() is None, f"server exited: {log.read_text()[-3000:]}"
                try:
                    status = http.get("/health").status_code
                except httpx.TransportError:
                    status = None
                if status == 200:
                    break
                time.sleep(0.5)
            assert status == 200, f"/health never answered 200: {log.read_text()[-3000:]}"

            files = [busi_dir / rel for rel in IMAGES]

            def ask(path: Path) -> dict:
                r = http.post("/predict", files={"file": (path.name, path.read_bytes(), "image/png")})
                assert r.status_code == 200, r.text
                return {k: v for k, v in r.json().items() if k != "ms"}

            serial = [ask(p) for p in files]
            with ThreadPoolExecutor(len(files)) as pool:
                concurrent = list(pool.map(ask, files))
        assert len({s["image"] for s in serial}) == len(files)
        assert concurrent == serial
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
