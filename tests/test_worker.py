"""The Predictor in its own process (what the dashboard uses): same answers, clear errors, restartable."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import paths
from pipeline.config import model_path
from pipeline.errors import ModelLoadError
from pipeline.imageio import load_image
from pipeline.inference.bundle import record_files
from pipeline.inference.worker import PredictorProcess

MODELS = paths.models_dir()
pytestmark = pytest.mark.skipif(not model_path("seg", MODELS).is_file(), reason=f"trained models not found in {MODELS}")


@pytest.mark.full  # the shared worker process: make test-all only (keeps make test within 6 min)
def test_worker_answers_exactly_like_the_in_process_predictor(worker, predictor, busi_dir):
    local = predictor
    assert worker.classes == local.classes and set(worker.configs) == {"seg", "raw", "refined"}
    assert worker.manifest == local.manifest
    for name in ("malignant/malignant (2).png", "benign/benign (5).png", "normal/normal (4).png"):
        img = load_image(busi_dir / name)
        a, b = worker.predict(img.pixels, rgb=img.rgb), local.predict(img.pixels, rgb=img.rgb)
        assert a.to_record() == b.to_record(), name
        assert np.array_equal(a.mask, b.mask)
        heat_a = worker.explain(img.pixels, a.mask, a.label)
        heat_b = local.explain(img.pixels, b.mask, b.label)
        assert heat_a.box == heat_b.box and np.allclose(heat_a.heatmap, heat_b.heatmap, atol=1e-5)


@pytest.mark.full  # the shared worker process: make test-all only (keeps make test within 6 min)
def test_worker_passes_errors_back_and_keeps_serving(worker):
    with pytest.raises(ValueError, match="grayscale"):
        worker.predict(np.zeros((4, 4, 7), np.uint8))
    assert worker.alive
    assert worker.predict(np.full((64, 80), 90, np.uint8)).mask.shape == (64, 80)


@pytest.mark.full  # a worker process of its own
def test_missing_models_give_the_predictors_message(tmp_path):
    with pytest.raises(ModelLoadError, match="model file missing"):
        PredictorProcess(tmp_path)


@pytest.mark.full  # a worker process of its own
def test_a_stopped_worker_says_so(tmp_path):
    w = PredictorProcess(MODELS)
    w._proc.kill()
    w._proc.wait(10)
    assert not w.alive
    with pytest.raises(ModelLoadError, match="not running"):
        w.predict(np.zeros((32, 32), np.uint8))
    w.close()


@pytest.mark.full  # a worker process of its own
def test_a_start_up_failure_reaches_the_caller_with_its_reason(tmp_path):
    import shutil

    for f in MODELS.iterdir():
        if f.suffix in (".keras", ".json"):
            shutil.copy(f, tmp_path)
    (tmp_path / "unet.json").write_text("{ not json")
    record_files(tmp_path, ["unet.json"])  # listed as it is, so the load itself fails
    with pytest.raises(ModelLoadError, match="JSONDecodeError"):
        PredictorProcess(tmp_path)


@pytest.mark.full  # a worker process of its own
def test_close_ends_the_worker():
    w = PredictorProcess(MODELS)
    proc = w._proc
    w.close()
    assert proc.poll() is not None and not w.alive


@pytest.mark.full  # one more worker start
def test_a_worker_started_without_waiting_reports_its_steps_then_serves():
    w = PredictorProcess(MODELS, wait=False)
    try:
        assert not w.ready() and w.progress[0] <= 1  # returns at once, before the models are loaded
        seen = []
        while not w.ready(0.2):
            if w.progress not in seen:
                seen.append(w.progress)
        steps = [s for s, _, _ in seen]
        assert steps == sorted(steps) and len(steps) >= 2 and w.progress[:2] == (3, 3), (seen, w.progress)
        assert w.predict(np.full((64, 80), 90, np.uint8)).mask.shape == (64, 80)
        assert not w.crashed
    finally:
        w.close()


def test_a_failed_background_start_is_an_error_not_a_crash(tmp_path):
    w = PredictorProcess(tmp_path, wait=False)
    with pytest.raises(ModelLoadError, match="model file missing"):
        while not w.ready(0.2):
            pass
    assert not w.crashed  # the dashboard shows the error instead of restarting the worker
    with pytest.raises(ModelLoadError, match="model file missing"):
        w.ready()  # the same answer every time
