"""IDC training pieces: augmentation, features, the validation choices, the bootstrap, and a one-step training."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.idc import IdcPack
from pipeline.inference.idc import dihedral
from pipeline.training.idc import balanced_weights
from pipeline.training.idc_augment import augment_patches, stain_jitter
from pipeline.training.idc_evaluate import (
    best_threshold,
    binary_scores,
    choose_patient_rule,
    patient_bootstrap,
    patient_scores,
    patient_table,
)
from pipeline.training.idc_features import N_FEATURES, features


def _patches(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 50, 50, 3), dtype=np.uint8)


def test_stain_jitter_without_change_is_identity_and_changes_colour_otherwise():
    x = _patches(3).astype(np.float32)
    rng = np.random.default_rng(1)
    assert np.abs(stain_jitter(x, rng, sigma=0, bias=0) - x).max() < 1e-3
    assert np.abs(stain_jitter(x, rng) - x).mean() > 1.0


def test_augment_keeps_shape_range_and_is_seeded():
    x = _patches(8)
    a = augment_patches(x, np.random.default_rng(3))
    b = augment_patches(x, np.random.default_rng(3))
    assert a.shape == x.shape and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 255
    assert np.array_equal(a, b)


def test_dihedral_gives_eight_distinct_views():
    x = _patches(1)
    views = dihedral(x)
    assert len(views) == 8 and np.array_equal(views[0], x)
    assert len({v.tobytes() for v in views}) == 8


def test_features_shape_and_colour_sensitivity():
    pink = np.zeros((1, 50, 50, 3), np.uint8) + np.array([230, 150, 200], np.uint8)
    purple = np.zeros((1, 50, 50, 3), np.uint8) + np.array([90, 50, 140], np.uint8)
    f = features(np.concatenate([pink, purple]))
    assert f.shape == (2, N_FEATURES) == (2, 65)
    assert np.isfinite(f).all() and not np.allclose(f[0], f[1])


def test_balanced_weights_equalise_classes():
    y = np.array([0, 0, 0, 1], np.uint8)
    w = balanced_weights(y)
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum())


def test_binary_scores_and_threshold():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    s = binary_scores(y, p, 0.5)
    assert s["confusion_matrix"] == [[1, 1], [1, 1]] and s["balanced_accuracy"] == 0.5 and s["auc"] == 0.75
    assert binary_scores(y, p, best_threshold(y, p))["balanced_accuracy"] == 0.75


def _pack(labels, patients) -> IdcPack:
    n = len(labels)
    z = np.zeros(n, np.int32)
    return IdcPack(np.zeros((n, 50, 50, 3), np.uint8), np.asarray(labels, np.uint8), np.asarray(patients, np.int32),
                   z, z, np.array(["val"] * n))


def test_patient_rule_chosen_and_scored():
    # patient 1 has no IDC; 2 and 3 have some
    pack = _pack([0, 0, 0, 1, 0, 1], [1, 1, 2, 2, 3, 3])
    prob = np.array([0.1, 0.2, 0.3, 0.9, 0.2, 0.8])
    rows = patient_table(pack, prob, 0.5)
    assert [r["called_share"] for r in rows] == [0.0, 0.5, 0.5]
    rule = choose_patient_rule(rows)
    scores = patient_scores(rows, rule)
    assert scores["balanced_accuracy"] == 1.0 and scores["idc_free_patients"] == 1 and scores["called_idc"] == 2


def test_patient_bootstrap_intervals_contain_the_point_estimate():
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(20), 10)
    labels = rng.integers(0, 2, len(patients))
    good = np.clip(labels * 0.6 + rng.uniform(0, 0.4, len(labels)), 0, 1)
    noise = rng.uniform(0, 1, len(labels))
    out = patient_bootstrap(_pack(labels, patients), {"a": good, "b": noise}, {"a": 0.5, "b": 0.5}, n_boot=200)
    lo, hi = out["a"]["auc"]
    assert lo <= binary_scores(labels, good, 0.5)["auc"] <= hi
    assert out["a - b"]["auc"][0] > 0  # a clearly better than noise


@pytest.mark.full
def test_one_step_training_writes_a_loadable_bundle(idc_dir, tmp_path):
    from pipeline.config import IdcConfig
    from pipeline.inference.idc import IdcPredictor
    from pipeline.training.idc import train_idc

    out = train_idc(idc_dir, models_dir=tmp_path / "models", epochs=1, steps=1, limit=32,
                    work_dir=tmp_path / "work", log=lambda *_: None, run_eagerly=True)
    assert out.is_file()
    predictor = IdcPredictor(tmp_path / "models")
    assert isinstance(predictor.config, IdcConfig) and predictor.config.best_epoch == 1
    p = predictor.probabilities(_patches(3))
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all()
