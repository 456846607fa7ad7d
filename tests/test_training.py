"""A fast training smoke test: one step on a few real images, checkpoint, resume, export."""

from __future__ import annotations

import json

from pipeline.config import ModelConfig
from pipeline.training.train import train


def test_one_step_seg_and_cls(busi_dir, tmp_path):
    cfg = train("seg", busi_dir, epochs=1, batch_size=2, steps_per_epoch=1, limit=4, models_dir=tmp_path,
                arch="unet16", weights=None)
    assert (tmp_path / "unet.keras").is_file()
    assert ModelConfig.load(tmp_path / "unet.json").backbone == "unet16" == cfg.backbone
    state = json.loads((tmp_path / "checkpoints" / "seg" / "state.json").read_text())
    assert state["epoch"] == 1
    resumed = train("seg", busi_dir, epochs=2, batch_size=2, steps_per_epoch=1, limit=4, models_dir=tmp_path,
                    arch="unet16", weights=None, resume=True)
    assert resumed.trained_epochs == 2
    cls = train("refined", busi_dir, epochs=1, batch_size=2, steps_per_epoch=1, limit=4, models_dir=tmp_path,
                backbone="lite2", weights=None)
    assert (tmp_path / "classifier_refined.keras").is_file() and cls.initialisation == "random"
