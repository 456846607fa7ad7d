"""Dataset-explorer helpers (on the tiny generated dataset) and metrics.json readers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline import metrics
from pipeline.views import explore, results

CLASSES = ("benign", "malignant", "normal")


def test_cached_index_is_written_once_and_reused(tiny_dataset, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = explore.cached_grouped_index(tiny_dataset, cache)
    files = list(cache.glob("index-*.pkl"))
    assert len(files) == 1
    from pipeline.data import catalog

    monkeypatch.setattr(catalog, "grouped_index", lambda root: pytest.fail("should come from the cache"))
    pd.testing.assert_frame_equal(explore.cached_grouped_index(tiny_dataset, cache), first)
    # a changed dataset gets a new key
    from conftest import write_png

    write_png(tiny_dataset / "normal" / "normal (3).png", np.full((64, 80), 90, np.uint8))
    assert explore.dataset_fingerprint(tiny_dataset) != files[0].stem.split("-", 1)[1]


def test_explorer_index_filters_and_paging(tiny_dataset, tmp_path):
    df = explore.explorer_index(tiny_dataset, tmp_path / "no_split.csv", cache_dir=None)
    assert len(df) == 6
    assert set(df["subset"]) == {"unassigned"}
    assert (df.loc[df["label"] == "normal", "size_class"] == "no lesion").all()
    benign1 = df[df["image"] == "benign/benign (1).png"].iloc[0]
    assert benign1["lesion_area_px"] == 400  # two 10x20 masks merged
    assert len(explore.filter_gallery(df, classes=["benign"])) == 2
    assert len(explore.filter_gallery(df, sizes=["no lesion"])) == 2
    assert len(explore.filter_gallery(df, subsets=["test"])) == 0
    rows, page, n_pages = explore.page_of(df, 9, per_page=4)
    assert (page, n_pages, len(rows)) == (2, 2, 2)
    assert explore.page_count(0) == 1 and explore.page_count(13, 12) == 2 and explore.page_count(24, 12) == 2
    assert explore.clamp_page(0, 5) == 1 and explore.clamp_page(9, 5) == 5 and explore.clamp_page("x", 5) == 1
    assert explore.clamp_page(3.0, 5) == 3 and explore.clamp_page(None, 0) == 1
    thumb = explore.thumbnail(benign1["path"], benign1["mask_paths"], width=40, height=None)
    assert thumb.shape == (32, 40, 3)
    boxed = explore.thumbnail(benign1["path"], benign1["mask_paths"], width=40, height=40)  # even grid rows
    assert boxed.shape == (40, 40, 3) and not boxed[:4].any() and not boxed[-4:].any()  # black bars
    assert np.array_equal(boxed[4:36], thumb)
    assert explore.page_message(2, 3) is None
    assert explore.page_message(999, 12) == "There is no page 999: the gallery has 12 pages. Showing page 12."
    assert "Showing page 1" in explore.page_message(0, 1) and "1 page." in explore.page_message(0, 1)
    comp = explore.split_composition(df)
    assert comp.loc["benign", "unassigned"] == 2


def test_duplicate_groups_and_split_check():
    df = pd.DataFrame({
        "image": ["benign/a.png", "benign/b.png", "malignant/c.png", "normal/d.png"],
        "label": ["benign", "benign", "malignant", "normal"],
        "group": ["g0", "g0", "g0", "g1"], "group_size": [3, 3, 3, 1],
        "subset": ["train", "train", "test", "val"],
    })
    groups = explore.duplicate_groups(df)
    assert len(groups) == 1 and bool(groups.iloc[0]["cross_label"])
    assert groups.iloc[0]["images"] == "a.png, b.png, c.png"
    assert explore.groups_split_across_subsets(df) == 1
    assert explore.size_class(0.0) == "no lesion" and explore.size_class(0.5).startswith("large")


def fake_metrics() -> dict:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [10, 6, 4])
    out = {"generated": "2025-01-01T00:00:00+00:00", "command": "python -m pipeline evaluate",
           "split_file": "data/splits/busi.csv", "split_sha256": "ab" * 32,
           "models": {"seg": {"backbone": "unet", "initialisation": "random", "best_epoch": 3}},
           "choices": {"made_on": "val", "mask_threshold": 0.5, "temperature": {"raw": 1.2, "refined": 0.9}},
           "segmentation": {}, "classifiers": {"baseline": {}, "refined": {}}, "per_image": {}}
    for subset in ("val", "test"):
        probs = {k: rng.dirichlet([1, 1, 1], len(y)) for k in ("baseline", "refined")}
        probs["refined"][np.arange(len(y)), y] += 1  # refined is better
        probs["refined"] /= probs["refined"].sum(1, keepdims=True)
        for k in probs:
            out["classifiers"][k][subset] = metrics.classification_report(probs[k], y, CLASSES)
        out["segmentation"][subset] = {"lesion_images": 16, "normal_images": 4, "dice_mean": 0.7, "dice_median": 0.75,
                                       "iou_mean": 0.6, "normal_false_positive_rate": 0.25}
        out["per_image"][subset] = [
            {"image": f"{CLASSES[t]}/{CLASSES[t]} ({i}).png", "label": CLASSES[t], "dice": None if t == 2 else 0.7,
             "iou": None, "predicted_lesion_fraction": 0.1,
             "baseline": dict(zip(CLASSES, map(float, probs["baseline"][i]))),
             "refined": dict(zip(CLASSES, map(float, probs["refined"][i])))}
            for i, t in enumerate(y)]
    return json.loads(json.dumps(out))


def test_results_readers(tmp_path):
    m = fake_metrics()
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(m))
    assert results.load_metrics(path) == m
    with pytest.raises(results.MetricsError, match="pipeline evaluate"):
        results.load_metrics(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(results.MetricsError):
        results.load_metrics(tmp_path / "bad.json")

    head = results.headline(m).set_index("key")
    assert head.loc["accuracy", "change"] == pytest.approx(head.loc["accuracy", "refined"] - head.loc["accuracy", "baseline"])
    table = results.per_class_table(m, "refined")
    assert list(table.index) == [*CLASSES, "accuracy", "macro avg", "weighted avg"]
    assert table.loc["macro avg", "f1-score"] == pytest.approx(m["classifiers"]["refined"]["test"]["macro_f1"])
    assert table.loc["accuracy", "support"] == 20
    cm = results.confusion(m, "baseline")
    assert cm.values.sum() == 20 and list(cm.index) == list(CLASSES)
    assert set(results.roc_points(m, "refined")) == set(CLASSES)
    assert results.reliability(m, "refined")["count"].sum() == 20
    per = results.per_image(m)
    assert len(per) == 20
    for which in results.CASE_FILTERS:
        sub = results.cases(per, which)
        assert len(sub) <= 20
    assert (results.cases(per, "both models wrong")["refined_correct"] == False).all()  # noqa: E712 - pandas element-wise
    assert len(results.dice_values(m)) == 16
    text = " ".join(results.provenance(m))
    assert "data/splits/busi.csv" in text and "20 images" in text and "val" in text and "predicted" in text


def with_comparison_and_external(m: dict) -> dict:
    """``fake_metrics`` plus the paired comparison and a BUS-BRA external block (the newer file layout)."""
    m = json.loads(json.dumps(m))
    m["comparison"] = {
        "test": {"n": 118, "accuracy_a": 0.8390, "accuracy_b": 0.8475, "difference": 0.00847, "ci95": [-0.0254, 0.0424],
                 "bootstrap_samples": 2000, "only_b_correct": 5, "only_a_correct": 4, "mcnemar_p": 0.7267},
        "val": {"n": 118, "accuracy_a": 0.80, "accuracy_b": 0.86, "difference": 0.06, "ci95": [0.01, 0.11],
                "bootstrap_samples": 2000, "only_b_correct": 9, "only_a_correct": 2, "mcnemar_p": 0.0327},
    }
    rep = {k: dict(m["classifiers"][k]["test"], malignant_vs_benign_auc=0.81 + 0.02 * i, predicted_normal=7 - i)
           for i, k in enumerate(("baseline", "refined"))}
    m["external"] = {"busbra_test": {
        "dataset": "BUS-BRA", "subset": "test", "fold": 5, "images": 383, "patients": 214,
        "segmentation": {"dice_mean": 0.71, "dice_median": 0.80, "iou_mean": 0.6, "lesion_images": 383},
        "classifiers": rep,
        "comparison": {"n": 383, "accuracy_a": 0.70, "accuracy_b": 0.68, "difference": -0.0209, "ci95": [-0.05, 0.01],
                       "bootstrap_samples": 2000, "only_b_correct": 10, "only_a_correct": 18, "mcnemar_p": 0.0002},
        "per_scanner": {"GE Logiq 7": {"images": 182, "baseline": 0.7, "refined": 0.69},
                        "GE Logiq 5": {"images": 179, "baseline": 0.71, "refined": 0.68}},
    }}
    return m


def test_comparison_in_plain_words():
    m = with_comparison_and_external(fake_metrics())
    text = results.comparison_sentence(results.comparison(m, "test"))
    assert text == ("refined − baseline accuracy = +0.8 points, 95% CI −2.5 to +4.2; McNemar p = 0.73: "
                    "not a significant difference")
    assert "a significant difference (p < 0.05)" in results.comparison_sentence(results.comparison(m, "val"))
    ext = results.comparison_sentence(results.external_comparison(m))
    assert ext == ("refined − baseline accuracy = −2.1 points, 95% CI −5.0 to +1.0; McNemar p < 0.001: "
                   "a significant difference (p < 0.05)")
    assert results.format_p(0.0002) == "< 0.001" and results.format_p(0.0042) == "0.004" and results.format_p(1.0) == "1.00"
    assert "only the refined model was right on 5 and only the baseline on 4" in \
        results.discordant_sentence(results.comparison(m, "test"))
    assert "2,000 bootstrap" in results.discordant_sentence(results.comparison(m, "test"))
    same = {"n": 118, "difference": 0.0, "ci95": [0.0, 0.0], "only_b_correct": 0, "only_a_correct": 0, "mcnemar_p": 1.0}
    assert results.comparison_sentence(same).startswith("refined − baseline accuracy = 0.0 points, 95% CI 0.0 to 0.0")
    assert "exactly the same 118 images" in results.discordant_sentence(same)
    assert results.signed(-0.01) == "0.0" and results.signed(-2.54) == "−2.5"

    table = results.comparison_table(m).set_index("evaluation")
    assert list(table.index) == ["BUSI test split", "BUSI validation split", "BUS-BRA held-out fold (external)",
                                 "BUSI cross-validation (pooled)"]
    assert table.iloc[-1]["McNemar p"] == results.NOT_EVALUATED  # not run yet
    assert table.loc["BUSI test split", "95% CI (points)"] == "−2.5 to +4.2"
    assert table.loc["BUSI test split", "McNemar p"] == "0.73"
    assert table.loc["BUS-BRA held-out fold (external)", "difference (points)"] == "−2.1"
    assert table.loc["BUS-BRA held-out fold (external)", "significant?"] == "yes (p < 0.05)"
    assert table.loc["BUSI test split", "significant?"] == "no"

    pres = results.presentation_numbers(m, "test").set_index("key")
    assert list(pres.index) == ["accuracy", "macro_f1", "macro_auc"]
    assert pres.loc["accuracy", "refined"] == pytest.approx(m["classifiers"]["refined"]["test"]["accuracy"])
    bra = results.presentation_numbers(m, "busbra").set_index("key")
    assert list(bra.index) == ["accuracy", "macro_f1", "malignant_vs_benign_auc"]
    assert bra.loc["malignant_vs_benign_auc", "refined"] == pytest.approx(0.83)
    summary = " ".join(results.external_summary(m))
    assert "383 images of 214 patients" in summary and "baseline 7, refined 6" in summary and "0.710" in summary
    assert "never used in training" in summary and not results.busbra_in_training(m)
    m["models"] = {"raw": {"datasets": "BUSI train + BUS-BRA folds 1-3"}, "seg": {"datasets": "BUSI train"}}
    assert results.busbra_in_training(m)
    assert "trained on the other folds of BUS-BRA" in " ".join(results.external_summary(m))
    scanners = results.external_per_scanner(m)
    assert list(scanners.index) == ["GE Logiq 5", "GE Logiq 7"] and scanners.loc["GE Logiq 5", "refined"] == 0.68


def test_older_metrics_files_say_not_evaluated():
    m = fake_metrics()  # no "comparison", no "external"
    assert results.comparison(m, "test") is None and results.external(m) is None
    assert results.comparison_sentence(results.comparison(m, "test")) == results.NOT_EVALUATED
    assert results.discordant_sentence(None) == ""
    table = results.comparison_table(m)
    assert (table["McNemar p"] == results.NOT_EVALUATED).all() and (table["significant?"] == results.NOT_EVALUATED).all()
    assert results.presentation_numbers(m, "busbra").empty
    assert results.external_summary(m) == [] and results.external_per_scanner(m).empty
    # partial blocks: a comparison without p or interval, an external block without classifiers
    m["comparison"] = {"test": {"difference": 0.01}}
    m["external"] = {"busbra_test": {"dataset": "BUS-BRA"}}
    assert results.comparison_sentence(results.comparison(m, "test")) == "refined − baseline accuracy = +1.0 points"
    assert results.external(m) is None
    assert results.significance({"difference": 0.0}) == results.NOT_EVALUATED


def test_scope_gate_summary(tmp_path):
    scope = {"threshold": 1.54, "gate_check_ms_median": 3.1,
             "ultrasound": {"busi": {"test": {"n": 118, "accepted": 117, "share_accepted": 0.9915}},
                            "busbra": {"test": {"n": 383, "accepted": 382, "share_accepted": 0.9974}}},
             "busbra_scanners": {"test": {"GE Logiq 5": {"n": 179, "accepted": 179, "share_accepted": 1.0}}},
             "non_ultrasound": {"n": 111, "refused": 109, "share_refused": 0.982,
                                "by_source": {"skimage": {"n": 34, "refused": 32, "share_refused": 0.9412}}}}
    path = tmp_path / "scope_metrics.json"
    path.write_text(json.dumps(scope))
    assert results.load_scope_metrics(path) == scope
    assert results.load_scope_metrics(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("[")
    assert results.load_scope_metrics(tmp_path / "bad.json") is None
    table = results.scope_summary(scope).set_index("what")
    assert table.loc["Non-ultrasound pictures refused", "shown"] == "98.2% (109 of 111)"
    assert table.loc["BUSI test images accepted", "count"] == 117
    assert table.loc["BUS-BRA test, GE Logiq 5: accepted", "share"] == 1.0
    assert results.scope_sources(scope).iloc[0]["refused"] == 32  # an older file: per source
    assert list(results.scope_sources(scope).columns)[0] == "source"
    newer = {**scope, "non_ultrasound": {**scope["non_ultrasound"], "by_kind": {
                 "mammogram": {"n": 6, "refused": 6, "share_refused": 1.0},
                 "CT / MRI slice": {"n": 10, "refused": 9, "share_refused": 0.9}}},
             "shifted": {"busi": {"train": {"n": 544, "accepted": 544, "share_accepted": 1.0},
                                  "test": {"n": 236, "accepted": 234, "share_accepted": 0.9915}}},
             "lesion_free_regions": {"busbra": {"val": {"n": 77, "accepted": 77, "share_accepted": 1.0}}}}
    kinds = results.scope_sources(newer).set_index("kind")
    assert kinds.loc["CT / MRI slice", "refused"] == 9 and kinds.loc["mammogram", "share refused"] == 1.0
    shifted = results.scope_shifted(newer)
    assert shifted.to_dict("records") == [  # train views are not shown
        {"frames": "display variations", "dataset": "BUSI", "subset": "test", "views": 236, "accepted": 234,
         "share accepted": 0.9915},
        {"frames": "lesion-free regions", "dataset": "BUS-BRA", "subset": "val", "views": 77, "accepted": 77,
         "share accepted": 1.0}]
    empty = results.scope_summary(None)
    assert (empty["shown"] == results.NOT_EVALUATED).all() and len(empty) == 3
    assert results.scope_sources({}).empty and results.scope_shifted(scope).empty and results.scope_shifted(None).empty


def test_cross_validation_row_and_sentence(tmp_path):
    assert results.load_crossval(tmp_path / "missing.json") is None
    (tmp_path / "empty.json").write_text('{"folds": {}}')
    assert results.load_crossval(tmp_path / "empty.json") is None
    assert "not run" in results.crossval_sentence(None)
    pooled = {"n": 662, "accuracy_a": 0.80, "accuracy_b": 0.82, "difference": 0.02, "ci95": [-0.01, 0.05],
              "only_b_correct": 30, "only_a_correct": 17, "mcnemar_p": 0.08}
    cv = {"k": 5, "recipe": {"data": "BUSI only", "initialisation": "ImageNet (EfficientNet-Lite2)", "seg_epochs": 7,
                             "cls_epochs": 8},
          "folds": {"0": {}}, "summary": {
              "folds_done": 5, "pooled": pooled, "lesion_dice": {"mean": 0.7, "sd": 0.02},
              "baseline_accuracy": {"mean": 0.8, "sd": 0.03}, "refined_accuracy": {"mean": 0.82, "sd": 0.025},
              "refined_minus_baseline_accuracy": {"mean": 0.02, "sd": 0.015}}}
    (tmp_path / "cv.json").write_text(json.dumps(cv))
    assert results.load_crossval(tmp_path / "cv.json") == cv
    row = results.comparison_table(fake_metrics(), cv).iloc[-1]
    assert row["images"] == 662 and row["difference (points)"] == "+2.0" and row["95% CI (points)"] == "−1.0 to +5.0"
    assert row["McNemar p"] == "0.08" and row["significant?"] == "no"
    sentence = results.crossval_sentence(cv)
    assert "5 of 5 folds done" in sentence and "7 and 8 epochs" in sentence
    assert "baseline accuracy 0.800 ± 0.030, refined 0.820 ± 0.025, refined − baseline +2.0 ± 1.5 points" in sentence
