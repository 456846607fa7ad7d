"""The committed model card is the one its metrics and configs render, and it says what the models trained on."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import ModelConfig, config_path
from pipeline.training.model_card import render

MODELS = Path(__file__).resolve().parents[1] / "models"


def _committed():
    metrics = json.loads((MODELS / "metrics.json").read_text())
    configs = {n: ModelConfig.load(config_path(n, MODELS)) for n in ("seg", "raw", "refined")}
    return metrics, configs


def test_committed_card_is_up_to_date():
    metrics, configs = _committed()
    extra = (MODELS / "TRAINING_NOTES.md").read_text()
    assert (MODELS / "MODEL_CARD.md").read_text() == render(metrics, configs, extra), \
        "models/MODEL_CARD.md is stale: run python -m pipeline evaluate (or write_card) again"


def test_card_states_training_data_and_presence_gate():
    metrics, configs = _committed()
    for cfg in configs.values():
        cfg.notes["datasets"] = "BUSI train + BUS-BRA folds 1-3"
    metrics["choices"]["presence_threshold"] = 0.99
    metrics["choices"]["val_dice_and_normal_fp_by_presence_threshold"] = {"0.99": [0.677, 0.15]}
    card = render(metrics, configs)
    assert "folds 1-3 for training and fold 4 for validation" in card
    assert "they never saw fold 5's patients" in card and "trained on BUSI only" not in card
    assert "lesion-presence gate 0.99" in card and "no candidate reached 10%" in card
    metrics["choices"]["val_dice_and_normal_fp_by_presence_threshold"] = {"0.99": [0.677, 0.05]}
    assert "chosen as the best lesion Dice with at most 10%" in render(metrics, configs)

    for cfg in configs.values():
        cfg.notes["datasets"] = "BUSI train"
    metrics["choices"]["presence_threshold"] = 0.0
    card = render(metrics, configs)
    assert "trained on BUSI only" in card and "lesion-presence gate off" in card
