"""Cross-validation on BUSI train + val: folds that keep duplicate groups whole, fixed test-time settings, scoring
through the Predictor, and the mean ± sd / pooled summary."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline.config import ModelConfig, config_path
from pipeline.data.split import read_split
from pipeline.paths import MODELS_DIR, SPLIT_CSV
from pipeline.training import crossval


def test_folds_keep_groups_whole_balance_classes_and_leave_test_out():
    split = read_split(SPLIT_CSV)
    folds = crossval.assign_folds(split)
    assert len(folds) == int(split["subset"].isin(["train", "val"]).sum())
    assert not set(folds["image"]) & set(split.loc[split["subset"] == "test", "image"])
    assert (folds.groupby("group")["fold"].nunique() == 1).all()
    per_class = folds.groupby(["label", "fold"]).size().unstack()
    assert (per_class.max(axis=1) - per_class.min(axis=1) <= 5).all()
    again = crossval.assign_folds(split)
    assert folds["fold"].tolist() == again["fold"].tolist()  # fixed seed


def test_fold_split_holds_out_one_fold(tmp_path):
    folds = crossval.assign_folds(read_split(SPLIT_CSV))
    written = pd.read_csv(crossval.fold_split(folds, 2, tmp_path / "f2.csv"))
    assert list(written.columns) == ["image", "label", "subset", "group"]
    assert set(written.loc[written["subset"] == "val", "image"]) == set(folds.loc[folds["fold"] == 2, "image"])
    assert set(written["subset"]) == {"train", "val"}


@pytest.mark.full  # a Predictor on a copy of the models
def test_fixed_settings_and_scoring_through_the_predictor(busi_dir, tmp_path):
    """The shipped models stand in for a fold's: settings fixed beforehand, held-out images scored end to end."""
    models = tmp_path / "fold"
    shutil.copytree(MODELS_DIR, models, ignore=shutil.ignore_patterns("checkpoints", "pretrained", "experiments"))
    crossval._fix_choices(models)
    seg, refined = (ModelConfig.load(config_path(n, models)) for n in ("seg", "refined"))
    assert (seg.threshold, seg.presence_threshold, refined.fusion_weight, refined.temperature) == (0.5, 0.0, 0.5, 1.0)
    split = read_split(SPLIT_CSV)
    held = split[split["subset"] == "val"].groupby("label").head(2).index
    split["subset"] = np.where(split.index.isin(held), "val", "train")
    csv = tmp_path / "split.csv"
    split.to_csv(csv, index=False)
    result = crossval.score_fold(models, busi_dir, csv)
    assert result["n"] == 6 and len(result["predictions"]) == 6
    for key in ("baseline", "refined"):
        assert 0 <= result[key]["accuracy"] <= 1
    diff = result["refined_minus_baseline"]
    assert abs(diff["difference"] - (diff["accuracy_b"] - diff["accuracy_a"])) < 1e-12
    summary = crossval.summarise({"0": result, "1": result})
    assert summary["folds_done"] == 2 and summary["refined_minus_baseline_accuracy"]["sd"] == 0.0
    assert summary["pooled"]["n"] == 12
