"""The feature-heads experiment's pieces: the logistic head and the mask descriptors, on hand-made cases."""

from __future__ import annotations

import numpy as np

from pipeline.experiments.feature_heads import DESCRIPTORS, fit_logistic, mask_descriptors, predict_logistic


def test_logistic_head_separates_separable_classes_and_l2_shrinks():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 60)
    x = rng.normal(0, 1, (180, 5)) + np.eye(3, 5)[y] * 4
    wb = fit_logistic(x, y, l2=1e-4)
    p = predict_logistic(x, wb)
    assert np.allclose(p.sum(1), 1) and (p.argmax(1) == y).mean() > 0.95
    strong = fit_logistic(x, y, l2=10.0)
    assert np.abs(strong[0]).sum() < np.abs(wb[0]).sum()
    assert np.array_equal(fit_logistic(x, y, 1e-3)[0], fit_logistic(x, y, 1e-3)[0])  # deterministic


def test_logistic_head_handles_an_absent_class():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 40)  # BUS-BRA-like: no "normal"
    x = rng.normal(0, 1, (80, 3)) + y[:, None] * 3
    p = predict_logistic(x, fit_logistic(x, y, 1e-3))
    assert p.shape == (80, 3) and (p.argmax(1) == y).mean() > 0.9


def test_descriptors_of_tall_and_wide_lesions():
    gray = np.full((200, 200), 120, np.uint8)
    tall = np.zeros_like(gray)
    tall[40:140, 90:110] = 1
    gray[40:140, 90:110] = 30  # dark lesion
    gray[140:200, 90:110] = 40  # posterior shadow
    d = dict(zip(DESCRIPTORS, mask_descriptors(gray, tall)))
    assert d["has_lesion"] == 1 and d["taller_than_wide"] == 1 and d["log_aspect"] > 1
    assert d["echo_contrast"] < 0 and d["posterior_shadow"] < 0
    wide = np.zeros_like(gray)
    wide[90:110, 40:140] = 1
    assert dict(zip(DESCRIPTORS, mask_descriptors(gray, wide)))["taller_than_wide"] == 0
    assert not mask_descriptors(gray, np.zeros_like(gray)).any()
