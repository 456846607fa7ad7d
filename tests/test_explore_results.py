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
    thumb = explore.thumbnail(benign1["path"], benign1["mask_paths"], width=40)
    assert thumb.shape == (32, 40, 3)
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
