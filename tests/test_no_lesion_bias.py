"""``experiment no-lesion-bias``: the rule and its scores on hand cases, and a small real run on the committed models
(full tier)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import CLASS_NAMES
from pipeline.experiments.no_lesion_bias import class_balanced_nll, peak_quartiles, score_biases, with_no_lesion_bias

NORMAL, MALIGNANT = CLASS_NAMES.index("normal"), CLASS_NAMES.index("malignant")
PROBS = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])


def test_bias_moves_only_images_with_no_lesion_outlined_and_only_towards_normal():
    empty = np.array([True, False, True])
    assert np.allclose(with_no_lesion_bias(PROBS, empty, 0.0), PROBS)
    out = with_no_lesion_bias(PROBS, empty, np.log(4))
    assert np.allclose(out.sum(1), 1)
    assert np.allclose(out[1], PROBS[1])  # a lesion was outlined: unchanged
    assert out[0, NORMAL] == pytest.approx(0.8 / 1.6)  # odds of normal x4: 0.2 * 4 / (0.8 + 0.8)
    assert out[0, 0] / out[0, 1] == pytest.approx(PROBS[0, 0] / PROBS[0, 1])  # the lesion classes keep their ratio
    assert np.argmax(out[2]) == 0 and out[2, NORMAL] > PROBS[2, NORMAL]


def test_class_balanced_nll_counts_each_class_the_same():
    y = np.array([0, 0, 0, NORMAL])
    probs = np.array([[1.0, 0, 0]] * 3 + [[0.5, 0, 0.5]])
    assert class_balanced_nll(probs, y) == pytest.approx(np.log(2) / 2, abs=1e-9)


def test_score_biases_reports_each_view_and_the_trade():
    y = np.array([0, MALIGNANT, NORMAL, NORMAL])
    probs = np.array([[0.6, 0.1, 0.3], [0.2, 0.5, 0.3], [0.5, 0.3, 0.2], [0.2, 0.1, 0.7]])
    empty = np.array([True, False, True, True])
    src = np.array(["BUSI"] * 4)
    views = {"clean": (probs, y, empty, src),
             "lesion-free regions": (probs[2:], y[2:], empty[2:], src[2:])}
    table = score_biases(views, biases=(0.0, 2.0))
    assert table["0.0"]["clean"]["BUSI"] == {"normal_called_normal": "1/2", "lesions_called_normal": "0/2",
                                            "outlined_lesions_called_normal": "0/1", "malignant_called_normal": "0/1"}
    assert table["2.0"]["clean"]["BUSI"]["normal_called_normal"] == "2/2"
    assert table["2.0"]["clean"]["BUSI"]["lesions_called_normal"] == "1/2"  # the benign image had no lesion outlined
    assert table["2.0"]["clean"]["BUSI"]["outlined_lesions_called_normal"] == "0/1"
    assert table["2.0"]["lesion-free regions"]["nll"] < table["0.0"]["lesion-free regions"]["nll"]
    both = (np.concatenate([probs, probs[2:]]), np.concatenate([y, y[2:]]))
    assert table["0.0"]["class_balanced_nll_clean_and_regions"] == pytest.approx(class_balanced_nll(*both), abs=1e-4)
    assert table["0.0"]["clean"]["nll_se"] > 0


def test_another_rule_moves_the_frames_it_names_and_keeps_outlined_counted_by_the_mask():
    y = np.array([0, NORMAL])
    probs = np.array([[0.6, 0.1, 0.3], [0.2, 0.1, 0.7]])
    empty = np.array([False, True])
    views = {"clean": (probs, y, empty, np.array(["BUSI"] * 2))}
    every = score_biases(views, biases=(3.0,), where={"clean": np.ones(2, bool)})["3.0"]["clean"]["BUSI"]
    assert every["lesions_called_normal"] == "1/1"  # the outlined benign frame moved too: a prior shift
    assert every["outlined_lesions_called_normal"] == "1/1"
    default = score_biases(views, biases=(3.0,))["3.0"]["clean"]["BUSI"]
    assert default["lesions_called_normal"] == "0/1" and default["normal_called_normal"] == "1/1"


def test_peak_quartiles_count_only_the_frames_left_empty():
    y = np.array([0, 0, 0, NORMAL])
    empty = np.array([True, True, False, True])
    scored = {"clean": (None, y, empty, np.array(["BUSI"] * 4))}
    out = peak_quartiles(scored, {"clean": np.array([0.2, 0.4, 0.999, 0.05])})["clean"]["BUSI"]
    assert out["lesion"] == {"empty": "2/3", "peak_quartiles": [0.25, 0.3, 0.35]}
    assert out["normal"] == {"empty": "1/1", "peak_quartiles": [0.05, 0.05, 0.05]}


@pytest.mark.full
def test_small_real_run_on_the_committed_models(busi_dir, busbra_dir):
    from pipeline import paths
    from pipeline.experiments.no_lesion_bias import compare

    models = paths.models_dir()
    if not (models / "unet.keras").is_file():
        pytest.skip("committed models absent")
    out = compare(models, busi_dir, busbra_dir, per_image=1, limit=3)
    assert set(out["validation"]) == {"clean", "shifted", "lesion-free regions", "lesion-erased frames"}
    zero = out["by_bias"]["0.0"]
    assert set(zero) >= {"clean", "shifted", "lesion-free regions", "lesion-erased frames",
                         "class_balanced_nll_clean_and_regions"}
    assert 0 <= out["no_lesion_outlined"]["clean"] <= out["validation"]["clean"]
    assert set(out["other_rules"]) == {"UNet peak below 0.5", "UNet peak below 0.1", "every frame (class-prior shift)"}
    assert out["other_rules"]["every frame (class-prior shift)"]["0.0"]["clean"] == zero["clean"]
    assert "clean" in out["unet_peak_of_empty_masks"]
