"""The committed IDC model set: it loads, answers like its recorded evaluation, and beats the feature baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline import paths
from pipeline.config import IDC_METRICS_FILE, idc_dir_in
from pipeline.errors import ImageLoadError, ModelLoadError
from pipeline.inference.idc import IdcPredictor

METRICS = idc_dir_in(paths.MODELS_DIR) / IDC_METRICS_FILE


@pytest.fixture(scope="module")
def predictor() -> IdcPredictor:
    return IdcPredictor(paths.MODELS_DIR)


@pytest.fixture(scope="module")
def metrics() -> dict:
    return json.loads(METRICS.read_text())


def test_recorded_test_figures_beat_the_feature_baseline(metrics):
    net, feat = metrics["test"]["network"]["summary"], metrics["test"]["features"]["summary"]
    for k in ("balanced_accuracy", "f1_idc", "auc"):
        assert net[k] > feat[k], k
    assert metrics["data"]["test"]["patients"] == 49


def test_patch_probabilities_are_valid(predictor):
    rng = np.random.default_rng(0)
    p = predictor.probabilities(rng.integers(0, 256, (5, 50, 50, 3), dtype=np.uint8))
    assert p.shape == (5,) and np.all((p >= 0) & (p <= 1))
    assert predictor.labels(np.array([predictor.config.threshold, 0.0])).tolist() == [1, 0]


def test_wrong_patch_shape_is_a_clear_error(predictor):
    with pytest.raises(ImageLoadError, match="50x50"):
        predictor.probabilities(np.zeros((2, 64, 64, 3), np.uint8))


def test_missing_model_names_the_file(tmp_path):
    with pytest.raises(ModelLoadError, match="idc_classifier"):
        IdcPredictor(tmp_path)


@pytest.mark.full
def test_committed_model_reproduces_its_test_figures(predictor, metrics, idc_dir):
    from pipeline.data.idc import load_idc
    from pipeline.training.idc_evaluate import binary_scores

    test = load_idc(idc_dir).subset("test")
    s = binary_scores(test.labels, predictor.probabilities(test.images), predictor.config.threshold)
    for k in ("balanced_accuracy", "f1_idc", "auc"):
        assert s[k] == pytest.approx(metrics["test"]["network"]["summary"][k], abs=2e-3), k


def test_a_changed_idc_file_is_refused_by_name(tmp_path):
    from idc_factory import save_known_answer_model

    folder = save_known_answer_model(tmp_path) / "idc"
    IdcPredictor(tmp_path)  # as written: accepted
    config = json.loads((folder / "idc_classifier.json").read_text())
    (folder / "idc_classifier.json").write_text(json.dumps({**config, "threshold": 0.01}))
    with pytest.raises(ModelLoadError, match="idc_classifier.json does not match the bundle manifest"):
        IdcPredictor(tmp_path)
    (folder / "manifest.json").unlink()
    with pytest.raises(ModelLoadError, match="manifest missing"):
        IdcPredictor(tmp_path)


def test_bundle_verify_covers_the_idc_set():
    from pipeline.inference.bundle import verify_sets

    assert verify_sets(paths.MODELS_DIR) == {"busi-cad": [], "idc": []}


def test_the_page_shows_the_recorded_test_figures(metrics):
    from pipeline.views.histopathology import comparison_table, read_metrics

    table = comparison_table(read_metrics(paths.MODELS_DIR))
    ours = table.loc["This model (network), pack test patches"]
    summary = metrics["test"]["network"]["summary"]
    assert ours["balanced accuracy"] == summary["balanced_accuracy"] and ours["AUC"] == summary["auc"]
    assert table.loc["Feature baseline (this project), pack test patches", "IDC F1"] == metrics["test"]["features"][
        "summary"]["f1_idc"]
