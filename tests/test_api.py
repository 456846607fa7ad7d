"""The HTTP API (``pipeline.api``) in process: health, version, predictions equal to the Predictor's, error
statuses, the upload and pixel limits, refusals, access control, metrics. Uses the committed models, no mocks.
The real server (timeouts, banners, queue, docs in a browser) is in ``test_api_server.py`` (full tier)."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
import warnings
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
from pipeline.api import MAX_UPLOAD_BYTES, ApiSettings, create_app
from pipeline.api.responses import redact_paths
from pipeline.config import model_path
from pipeline.errors import BusiError, ImageLoadError, ImageTooLargeError, ModelLoadError
from pipeline.imageio import load_image
from pipeline.inference.bundle import read_manifest, record_files
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
def app(predictor):
    """The app over the run's Predictor (its loading thread, warm-up and state machine as in use; loading the
    models a second time is what ``test_an_app_loading_its_own_models_answers_alike`` checks, in the full tier)."""
    _require_models()
    return create_app(MODELS, predictor_factory=lambda models_dir: predictor)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        assert app.state.models.wait(180), "models did not load in 180 s"
        assert app.state.models.status == "ok", app.state.models.reason
        yield c


@pytest.fixture(scope="module")
def direct(predictor) -> Predictor:
    """The run's Predictor called directly: the reference answers."""
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
    assert body["model_sets"]["ultrasound"]["status"] == "ok" and body["models_dir"] == "models"
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
        assert body["reason"] == redact_paths(str(exc.value))
        assert "missing" in body["reason"] and str(tmp_path) not in r.text and body["models_dir"] == tmp_path.name
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
    idc = read_manifest(MODELS / "idc")
    assert body["model_sets"] == {"ultrasound": {"version": manifest["version"], "models": ["raw", "refined", "seg"]},
                                  "idc": {"version": idc["version"], "models": ["idc"]}}
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


@pytest.mark.full  # a second load of every model
def test_an_app_loading_its_own_models_answers_alike(direct, busi_dir):
    own = create_app(MODELS)
    path = busi_dir / "benign" / "benign (3).png"
    with TestClient(own) as c:
        assert own.state.models.wait(180) and own.state.models.status == "ok", own.state.models.reason
        assert own.state.models.predictor is not direct
        r = _upload(c, path.name, path.read_bytes())
    assert r.status_code == 200, r.text
    pred = direct.predict(load_image(path).pixels)
    _assert_same_record(r.json(), pred.to_record())


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
                load_image(data, name=name, max_pixels=client.app.state.settings.max_pixels)
            expected = 413 if isinstance(exc.value, ImageTooLargeError) else 415 if name in UNSUPPORTED else 422
            assert r.status_code == expected, (name, r.status_code, body)
            assert body["error"] == str(exc.value), name  # the same words as the CLI
            text = body["error"]
        else:
            assert r.status_code == 200, (name, body)
            assert "label" in body and body["status"] in ("ok", "refused")
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
    for kwargs, words in (({}, "not multipart"), ({"files": {"image": ("x.png", b"\x89PNG", "image/png")}}, "no file"),
                          ({"data": {"file": "not a file"}, "files": {"other": ("x", b"x")}}, "is text, not a file")):
        r = client.post("/predict", **kwargs)
        assert r.status_code == 422, (kwargs, r.text)
        assert "file" in r.json()["error"] and words in r.json()["error"], r.json()
        assert "UploadFile" not in r.text and "<class" not in r.text  # no framework words


def test_two_file_parts_are_422(client, busi_dir):
    data = (busi_dir / "benign" / "benign (1).png").read_bytes()
    r = client.post("/predict", files=[("file", ("a.png", data, "image/png")), ("file", ("b.png", data, "image/png"))])
    assert r.status_code == 422 and "2 parts named 'file'" in r.json()["error"]


def test_truncated_multipart_body_is_named(client, busi_dir):
    data = (busi_dir / "benign" / "benign (1).png").read_bytes()
    whole = b"".join(_multipart_stream("a.png", 0)).replace(b"\r\n\r\n\r\n", b"\r\n\r\n" + data + b"\r\n")
    headers = {"content-type": "multipart/form-data; boundary=limit-test"}
    assert client.post("/predict", content=whole, headers=headers).status_code == 200
    for cut in (len(whole) - 10, len(whole) // 2, 200):
        r = client.post("/predict", content=whole[:cut], headers=headers)
        assert r.status_code == 422, (cut, r.text)
        assert "truncated" in r.json()["error"] or "malformed" in r.json()["error"], (cut, r.json())
    r = client.post("/predict", content=b"garbage", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 422 and "boundary" in r.json()["error"]


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


# --- refusals ------------------------------------------------------------------------------------------
def test_an_out_of_scope_image_is_refused_without_a_label(client, direct):
    """A blank image and a thin strip must not come back called "normal" or "malignant" at the top level."""
    for name, image in (("blank.png", np.full((400, 500), 3, np.uint8)),
                        ("strip.png", np.tile(np.linspace(0, 255, 683, dtype=np.uint8), (32, 1)))):
        r = _upload(client, name, cv2.imencode(".png", image)[1].tobytes())
        assert r.status_code == 200, r.text
        body = r.json()
        expected = direct.predict(image).to_record()
        assert expected["status"] == "refused", name  # the gate refuses both
        assert body["status"] == "refused" and body["label"] is None and body["confidence"] is None
        assert body["probabilities"] is None and body["baseline"] is None and body["scope_reason"]
        assert body["research_only"]["label"] == expected["research_only"]["label"]
        assert body["research_only"]["note"]
    metrics = client.get("/metrics").text
    assert 'busi_api_refusals_total{model_set="ultrasound"}' in metrics


# --- decode budget ---------------------------------------------------------------------------------------
def _zero_png(width: int, height: int) -> bytes:
    return cv2.imencode(".png", np.zeros((height, width), np.uint8))[1].tobytes()


def test_decoded_pixels_are_capped_with_413(client):
    limit = client.app.state.settings.max_pixels
    data = _zero_png(6000, 6000)  # 35 KB of zeros that would decode to 36 MP
    assert len(data) < 100_000 and 6000 * 6000 > limit
    t0 = time.perf_counter()
    r = _upload(client, "zeros.png", data)
    assert r.status_code == 413, r.text
    assert "6000x6000" in r.json()["error"] and f"{limit / 1e6:.1f} megapixels" in r.json()["error"]
    assert time.perf_counter() - t0 < 2  # refused from the header, nothing decoded
    with pytest.raises(ImageTooLargeError):
        load_image(data, max_pixels=limit)


def test_work_gate_bounds_active_and_waiting_jobs():
    import asyncio

    from pipeline.api.guards import Busy, WorkGate

    async def scenario():
        gate = WorkGate(max_active=1, max_queue=1)
        release = asyncio.Event()
        seen = []

        async def job(k):
            async with gate.slot():
                seen.append(k)
                await release.wait()

        first = asyncio.create_task(job(1))
        await asyncio.sleep(0)
        second = asyncio.create_task(job(2))  # waits
        await asyncio.sleep(0)
        assert (gate.active, gate.waiting) == (1, 1)
        with pytest.raises(Busy) as busy:
            async with gate.slot():
                pass
        assert busy.value.retry_after >= 1
        release.set()
        await asyncio.gather(first, second)
        assert seen == [1, 2] and (gate.active, gate.waiting) == (0, 0)

    asyncio.run(scenario())


# --- access control, CORS, no paths, metrics, request ids -------------------------------------------------
@pytest.fixture(scope="module")
def keyed_client(app, client):
    loaded = app.state.models.predictor
    settings = ApiSettings(api_key="k" * 24, cors_origins=("https://pacs.example.org",))
    other = create_app(MODELS, predictor_factory=lambda d: loaded, warmup=False, settings=settings)
    with TestClient(other) as c:
        assert other.state.models.wait(30)
        yield c


def test_api_key_is_needed_except_for_health(keyed_client, busi_dir):
    data = (busi_dir / "benign" / "benign (1).png").read_bytes()
    assert keyed_client.get("/health").status_code == 200
    for path, kw in (("/version", {}), ("/metrics", {})):
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            r = keyed_client.get(path, headers=headers, **kw)
            assert r.status_code == 401 and "API key" in r.json()["error"], (path, headers)
        assert keyed_client.get(path, headers={"X-API-Key": "k" * 24}).status_code == 200
    r = _upload(keyed_client, "a.png", data)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert _upload(keyed_client, "a.png", data, headers={"Authorization": "Bearer " + "k" * 24}).status_code == 200
    assert _upload(keyed_client, "a.png", data, headers={"X-API-Key": "k" * 24}).json()["status"] == "ok"


def test_cors_only_for_configured_origins(client, keyed_client):
    origin = {"Origin": "https://pacs.example.org"}
    assert "access-control-allow-origin" not in client.get("/health", headers=origin).headers
    assert keyed_client.get("/health", headers=origin).headers["access-control-allow-origin"] == origin["Origin"]
    other = keyed_client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_settings_from_the_environment(tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret-s3cret-s3cret\n")
    env = {"BUSI_API_KEY_FILE": str(key), "BUSI_API_MAX_QUEUE": "3", "BUSI_API_CORS_ORIGINS": "https://a, https://b",
           "BUSI_API_BODY_TIMEOUT_S": "7.5"}
    settings = ApiSettings.from_env(env)
    assert settings.api_key == "s3cret-s3cret-s3cret" and settings.max_queue == 3
    assert settings.cors_origins == ("https://a", "https://b") and settings.body_timeout_s == 7.5
    assert ApiSettings.from_env(settings.to_env()) == dataclasses.replace(settings, api_key=None)
    assert ApiSettings.from_env({"BUSI_API_KEY": "x" * 20}).api_key == "x" * 20
    assert ApiSettings.from_env({}).api_key is None and ApiSettings.from_env({}).cors_origins == ()
    key.write_text("short\n")
    with pytest.raises(BusiError, match="shorter than 16"):
        ApiSettings.from_env(env)


def test_no_absolute_paths_in_any_answer(client, busi_dir):
    root = str(PROJECT_ROOT)
    answers = [client.get("/health"), client.get("/version"), _upload(client, "x.txt", b"hello"),
               _upload(client, "../../etc/passwd.png", b"\x89PNG\r\n\x1a\n broken")]
    for r in answers:
        assert root not in r.text and str(MODELS) not in r.text, r.text[:300]
    assert client.get("/health").json()["models_dir"] in ("models", MODELS.name)
    assert redact_paths("model file /srv/busi/models/unet.keras is truncated") == "model file unet.keras is truncated"
    assert redact_paths("see https://example.org/a/b and 1/2") == "see https://example.org/a/b and 1/2"


def test_metrics_and_request_ids(client, busi_dir):
    data = (busi_dir / "benign" / "benign (1).png").read_bytes()
    r = _upload(client, "a.png", data, headers={"X-Request-ID": "ris-1234"})
    assert r.headers["x-request-id"] == "ris-1234"
    fresh = client.get("/health", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert len(fresh) == 32 and fresh != client.get("/health").headers["x-request-id"]
    text = client.get("/metrics").text
    for name in ("busi_api_requests_total", "busi_api_request_duration_seconds_bucket", "busi_api_queue_depth",
                 "busi_api_refusals_total", "busi_api_predictions_in_progress"):
        assert name in text, name
    assert 'busi_api_requests_total{method="POST",route="/predict",status="200"}' in text
    client.get("/no/such/page")
    assert 'route="other"' in client.get("/metrics").text


def test_access_log_carries_the_request_id(client, caplog):
    with caplog.at_level("INFO", logger="pipeline.api.access"):
        r = client.get("/health", headers={"X-Request-ID": "trace-42"})
    assert any("request_id=trace-42" in m and '"GET /health"' in m and str(r.status_code) in m for m in caplog.messages)


def test_openapi_documents_every_response(client):
    spec = client.get("/openapi.json").json()
    predict = spec["paths"]["/predict"]["post"]
    assert "multipart/form-data" in predict["requestBody"]["content"]
    assert {"200", "401", "413", "415", "422", "503"} <= set(predict["responses"])
    for path, method in (("/health", "get"), ("/version", "get"), ("/predict", "post")):
        for code, answer in spec["paths"][path][method]["responses"].items():
            assert "$ref" in json.dumps(answer.get("content", {})), (path, code)  # a documented model
    record = spec["components"]["schemas"]["PredictionRecord"]["properties"]
    assert {"status", "label", "research_only", "scope_reason", "measurements", "warnings"} <= set(record)
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert "at most 16.8 megapixels" in spec["info"]["description"] and "40 megapixels" not in spec["info"]["description"]


def test_docs_pages_use_only_packaged_assets(client):
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)""", html) + re.findall(r"""url: ?["']([^"']+)""", html)
        assert urls, page
        assert all(u.startswith("/") for u in urls), (page, urls)  # nothing from a CDN
        for u in urls:
            assert client.get(u).status_code == 200, u
    assert "fonts.googleapis" not in client.get("/redoc").text
    policy = client.get("/redoc").headers["content-security-policy"]  # the browser fetches nothing from elsewhere
    assert "img-src 'self' data:" in policy and "default-src 'self'" in policy


def test_dicom_with_implausible_values_warns_in_the_record(client, busi_dir):
    pixels = np.asarray(load_image(busi_dir / "benign" / "benign (3).png").pixels)
    r = _upload(client, "frame", make_dicom(pixels, spacing=(0, -1), slope=1e308))
    assert r.status_code == 200, r.text
    body = r.json()
    assert any("PixelSpacing" in w for w in body["warnings"]) and any("Rescale" in w for w in body["warnings"])
    assert body["measurements"].get("pixel_spacing_mm") is None


def test_a_truncated_model_file_is_named_as_such(tmp_path):
    for f in MODELS.iterdir():
        if f.is_file():
            (tmp_path / f.name).symlink_to(f)
    unet = tmp_path / model_path("seg", MODELS).name
    unet.unlink()
    unet.write_bytes(model_path("seg", MODELS).read_bytes()[:300_000])
    with pytest.raises(ModelLoadError, match="unet.keras does not match the bundle manifest"):
        Predictor(tmp_path)  # the hash check comes first
    manifest = tmp_path / "manifest.json"
    manifest.unlink()  # a copy, not the link: recording the truncated file must not touch models/
    manifest.write_text((MODELS / "manifest.json").read_text())
    record_files(tmp_path, ["unet.keras"])
    with pytest.raises(ModelLoadError, match="is truncated or corrupt") as exc:
        Predictor(tmp_path)
    assert "File not found" not in str(exc.value)
    broken = create_app(tmp_path)
    with TestClient(broken) as c:
        assert broken.state.models.wait(60)
        body = c.get("/health").json()
    assert "unet.keras is truncated or corrupt" in body["reason"] and str(tmp_path) not in json.dumps(body)


def test_serve_refuses_to_start_without_a_readable_key(tmp_path, capsys):
    from pipeline.cli import main

    assert main(["serve", "--api-key-file", str(tmp_path / "missing")]) == 2
    assert "cannot read the API key file" in capsys.readouterr().err
