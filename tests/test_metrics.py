"""Metric functions checked on hand-made cases."""

import numpy as np
import pytest

from pipeline import metrics


def test_dice_iou_identical_disjoint_and_half():
    a = np.zeros((10, 10), np.uint8)
    a[:5] = 1
    b = np.zeros_like(a)
    b[5:] = 1
    assert metrics.dice(a, a) == 1.0 and metrics.iou(a, a) == 1.0
    assert metrics.dice(a, b) == 0.0 and metrics.iou(a, b) == 0.0
    c = np.zeros_like(a)
    c[:5, :5] = 1  # half of a
    assert metrics.dice(c, a) == pytest.approx(2 * 25 / 75)
    assert metrics.iou(c, a) == pytest.approx(0.5)
    assert metrics.dice(np.zeros_like(a), np.zeros_like(a)) == 1.0
    assert metrics.pixel_accuracy(a, b) == 0.0


def test_known_confusion_matrix_and_scores():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    cm = metrics.confusion_matrix(np.array(y_true), np.array(y_pred), 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    s = metrics.per_class_scores(cm)
    assert s["precision"].tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert s["recall"].tolist() == pytest.approx([2 / 3, 0.5, 1.0])
    assert s["f1"][0] == pytest.approx(0.8)


def test_roc_auc_perfect_random_and_ties():
    y = np.array([0, 0, 1, 1])
    assert metrics.auc(*metrics.roc_curve(y, np.array([0.1, 0.2, 0.8, 0.9]))) == 1.0
    assert metrics.auc(*metrics.roc_curve(y, np.array([0.9, 0.8, 0.2, 0.1]))) == 0.0
    assert metrics.auc(*metrics.roc_curve(y, np.array([0.5, 0.5, 0.5, 0.5]))) == pytest.approx(0.5)
    # one inversion among 4 positive/negative pairs -> AUC 0.75
    assert metrics.auc(*metrics.roc_curve(y, np.array([0.1, 0.6, 0.5, 0.9]))) == pytest.approx(0.75)


def test_ece_and_temperature():
    probs = np.array([[0.9, 0.05, 0.05]] * 10)
    y = np.array([0] * 9 + [1])
    ece, bins = metrics.expected_calibration_error(probs, y)
    assert ece == pytest.approx(0.0, abs=1e-9)
    assert sum(b["count"] for b in bins) == 10
    hot = metrics.apply_temperature(probs, 0.5)
    assert hot[0, 0] > 0.9 and np.allclose(hot.sum(axis=1), 1)
    overconfident = np.array([[0.99, 0.005, 0.005]] * 10)
    assert metrics.fit_temperature(overconfident, y) > 1.0


def test_classification_report_keys():
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    rep = metrics.classification_report(probs, np.array([0, 1, 2, 1]), ("benign", "malignant", "normal"))
    assert rep["accuracy"] == 0.75 and rep["n"] == 4
    assert rep["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert set(rep["per_class"]) == {"benign", "malignant", "normal"}


def test_absent_class_does_not_count_as_zero():
    probs = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.1, 0.9, 0.0], [0.2, 0.8, 0.0]])
    rep = metrics.classification_report(probs, np.array([0, 0, 1, 1]), ("a", "b", "c"))
    assert rep["macro_f1"] == pytest.approx(1.0)
    assert np.isnan(rep["auc"]["c"]) and rep["macro_auc"] == pytest.approx(1.0)


def test_mcnemar_exact_matches_hand_computed_binomial():
    # 1 vs 6 discordant: two-sided p = 2 * (C(7,0) + C(7,1)) / 2^7 = 16/128
    assert metrics.mcnemar_exact_p(1, 6) == pytest.approx(16 / 128)
    assert metrics.mcnemar_exact_p(6, 1) == pytest.approx(16 / 128)
    assert metrics.mcnemar_exact_p(0, 0) == 1.0
    assert metrics.mcnemar_exact_p(5, 5) == 1.0


def test_paired_difference_interval_contains_the_difference_and_counts_discordant():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    a = y.copy()
    a[:40] = (a[:40] + 1) % 3  # baseline wrong on 40
    b = y.copy()
    b[30:50] = (b[30:50] + 1) % 3  # refined wrong on 20 (10 shared with the baseline)
    r = metrics.paired_accuracy_difference(y, a, b)
    assert r["difference"] == pytest.approx(0.1)
    assert r["only_b_correct"] == 30 and r["only_a_correct"] == 10
    assert r["ci95"][0] < 0.1 < r["ci95"][1] and r["ci95"][0] > 0
    assert r["mcnemar_p"] == pytest.approx(metrics.mcnemar_exact_p(30, 10)) and r["mcnemar_p"] < 0.01
    same = metrics.paired_accuracy_difference(y, a, a)
    assert same["difference"] == 0 and same["ci95"] == [0.0, 0.0] and same["mcnemar_p"] == 1.0


def test_lesion_dice_and_normal_fp():
    lesion = np.zeros((4, 4), np.uint8)
    lesion[:2, :2] = 1
    empty = np.zeros((4, 4), np.uint8)
    speck = empty.copy()
    speck[3, 3] = 1
    # lesion found exactly, lesion missed, one normal clean, one normal with a speck
    dice, fp = metrics.lesion_dice_and_normal_fp([lesion, empty, empty, speck], [lesion, lesion, empty, empty])
    assert dice == 0.5 and fp == 0.5
    assert metrics.lesion_dice_and_normal_fp([], []) == (0.0, 0.0)
