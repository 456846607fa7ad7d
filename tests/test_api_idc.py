"""``POST /predict/idc`` and the IDC entries of ``/health`` and ``/version``; the ``predict --task idc`` CLI.

The endpoint runs the real IdcPredictor on the known-answer model (``idc_factory``: its probabilities are a formula
of the patch) in a models folder without the ultrasound models, so one app serves every test here (session scope)
without loading the ultrasound networks; the ultrasound redirect of an H&E upload and a real server process are in
the full tier.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import warnings

import httpx
import numpy as np
import pytest
from idc_factory import expected_probability, he_like
from PIL import Image

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from pipeline.api import create_app
from pipeline.cli.predict import run_idc
from pipeline.paths import MODELS_DIR, PROJECT_ROOT


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def idc_client(known_idc_models):
    app = create_app(known_idc_models)
    with TestClient(app) as c:
        assert app.state.idc_models.wait(180), "the IDC model did not load in 180 s"
        assert app.state.idc_models.status == "ok", app.state.idc_models.reason
        yield c


def _post(client, name: str, data: bytes, query: str = "") -> httpx.Response:
    return client.post(f"/predict/idc{query}", files={"file": (name, data, "application/octet-stream")})


def test_health_lists_both_model_sets(idc_client):
    r = idc_client.get("/health")
    body = r.json()
    assert r.status_code == 503 and body["status"] == "error"  # no ultrasound models in this folder
    idc = body["model_sets"]["idc"]
    assert idc["status"] == "ok" and idc["runtime"]["idc"] in ("tflite", "keras")


def test_idc_metrics_summary(known_idc_models):
    from pipeline.api.idc import idc_summary

    assert idc_summary(known_idc_models) is None  # no metrics.json in the generated model set
    metrics = {"data": {"test": {"patients": 49}}, "test": {"network": {"summary": {"auc": 0.9}}}}
    (known_idc_models / "idc" / "metrics.json").write_text(json.dumps(metrics))
    try:
        assert idc_summary(known_idc_models) == {"split": "test", "patients": 49, "network": {"auc": 0.9}}
    finally:
        (known_idc_models / "idc" / "metrics.json").unlink()


def test_patch_answer(idc_client):
    patch = he_like(np.random.default_rng(0), (50, 50), 200, 100)
    r = _post(idc_client, "patch.png", _png(patch))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == "patch.png" and body["task"] == "idc" and body["in_scope"] is True
    assert body["label"] == "IDC" and body["idc_probability"] == pytest.approx(expected_probability(patch), abs=1e-4)
    assert body["modality"]["kind"] == "histopathology" and body["warnings"] == []  # no ultrasound-only warning


def test_tile_answer_with_reflected_edges(idc_client):
    rng = np.random.default_rng(1)
    tile = np.concatenate([he_like(rng, (130, 60), 210, 90), he_like(rng, (130, 60), 120, 140)], axis=1)
    body = _post(idc_client, "tile.png", _png(tile)).json()
    assert body["grid"]["rows"] == 3 and body["grid"]["cols"] == 3
    assert body["grid"]["reflected_px"] == {"bottom": 20, "right": 30}
    cells = np.array(body["cell_probabilities"], float)
    assert cells.shape == (3, 3) and (cells[:, 0] > 0.5).all() and (cells[:, 2] < 0.5).all()
    assert body["share_idc"] == pytest.approx(body["idc_cells"] / body["tissue_cells"])


def test_ultrasound_frame_is_refused_with_the_way_to_predict(idc_client, busi_dir):
    data = (busi_dir / "benign" / "benign (1).png").read_bytes()
    body = _post(idc_client, "frame.png", data).json()
    assert body["in_scope"] is False and body["label"] is None and "POST /predict" in body["scope_reason"]
    assert "cell_probabilities" not in body


@pytest.mark.parametrize("name, data, status, words", [
    ("notes.png", b"just some text\n", 415, "text file"),
    ("empty.png", b"", 422, "empty"),
    ("broken.png", _png(np.zeros((80, 80, 3), np.uint8))[:60], 422, "truncated"),
    ("tiny.png", _png(np.full((40, 40, 3), 150, np.uint8)), 422, "at least 50 px"),
    ("huge.png", _png(np.zeros((4100, 60, 3), np.uint8)), 422, "largest tile"),
])
def test_errors_follow_the_predict_rules(idc_client, name, data, status, words):
    r = _post(idc_client, name, data)
    assert r.status_code == status, r.text
    assert words in r.json()["error"] and r.json()["image"] == name


def test_missing_file_field_is_422(idc_client):
    r = idc_client.post("/predict/idc", data={"other": "x"})
    assert r.status_code == 422 and "file" in r.json()["error"]


def test_grayscale_and_rgba_uploads(idc_client):
    rng = np.random.default_rng(2)
    he = he_like(rng, (100, 100), 190, 110)
    gray = _post(idc_client, "gray.png", _png(he.mean(axis=2).astype(np.uint8))).json()
    assert gray["in_scope"] is False and "grayscale" in gray["scope_reason"]
    alpha = np.full((100, 100), 255, np.uint8)
    alpha[:5, :5] = 0
    rgba = _post(idc_client, "rgba.png", _png(np.dstack([he, alpha]))).json()
    assert rgba["in_scope"] is True and any("transparent" in w for w in rgba["warnings"])


# --- the CLI -----------------------------------------------------------------------------------------------
def test_cli_one_json_line_per_input_and_heatmaps(tmp_path, known_idc_models):
    from pipeline.inference.idc import IdcPredictor

    rng = np.random.default_rng(3)
    good = tmp_path / "tile.png"
    good.write_bytes(_png(he_like(rng, (100, 150), 200, 100)))
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    out, lines = tmp_path / "out", io.StringIO()
    rc = run_idc([str(good), str(bad), str(tmp_path / "missing.png")], out,
                 IdcPredictor(known_idc_models), stream=lines)
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert rc == 1 and len(records) == 3
    assert records[0]["label"] == "IDC" and records[0]["grid"]["cells"] == 6
    heat = np.asarray(Image.open(records[0]["heatmap_png"]))
    assert heat.shape == (100, 150, 3)
    assert set(records[1]) == {"image", "error"} and "text file" in records[1]["error"]
    assert set(records[2]) == {"image", "error"}


@pytest.mark.full  # two CLI processes of their own: make test-all only (keeps make test within 6 min)
def test_cli_command_line(tmp_path, known_idc_models):
    tile = tmp_path / "t.png"
    tile.write_bytes(_png(he_like(np.random.default_rng(4), (60, 60), 120, 150)))
    env = {**os.environ, "BUSI_MODELS_DIR": str(known_idc_models), "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "predict", "--task", "idc", str(tile)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["label"] == "non-IDC" and "heatmap_png" not in record
    proc = subprocess.run([sys.executable, "-m", "pipeline", "predict", str(tile)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2 and "--out" in proc.stderr  # the ultrasound task still needs --out


# --- full tier: the ultrasound side and a real server --------------------------------------------------------
@pytest.mark.full
def test_he_patch_on_the_ultrasound_endpoint_points_to_the_idc_one(idc_test_pack):
    if not (MODELS_DIR / "unet.keras").is_file():
        pytest.skip("the ultrasound models are not in models/")
    app = create_app(MODELS_DIR)
    with TestClient(app) as c:
        assert app.state.models.wait(300) and app.state.models.status == "ok", app.state.models.reason
        body = c.post("/predict", files={"file": ("he.png", _png(idc_test_pack.images[0]))}).json()
    assert body["in_scope"] is False and "/predict/idc" in body["scope_reason"]


@pytest.mark.full
def test_real_server_answers_predict_idc(tmp_path, known_idc_models):
    from bench.browser import free_port, stop

    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(PROJECT_ROOT)}
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", str(port), "--models-dir",
                                 str(known_idc_models), "--log-level", "warning"], cwd=PROJECT_ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    if http.get("/health").json().get("model_sets", {}).get("idc", {}).get("status") == "ok":
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            patch = he_like(np.random.default_rng(5), (50, 50), 210, 90)
            r = http.post("/predict/idc", files={"file": ("p.png", _png(patch), "image/png")})
        assert r.status_code == 200, r.text
        assert r.json()["idc_probability"] == pytest.approx(expected_probability(patch), abs=1e-4)
    finally:
        stop(proc, grace_s=20)
