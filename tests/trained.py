"""Helpers for the tests that train: the settings of the run's tiny bundle (``tiny_bundle`` in conftest) and a copy."""

from __future__ import annotations

import shutil
from pathlib import Path

TINY = dict(epochs=1, batch_size=2, steps_per_epoch=1, limit=4, weights=None,  # one step, 4 images per class,
            run_eagerly=True)  # without building the training graph (the same arithmetic, ~20 s less a training)


def copy_bundle(bundle: Path, to: Path) -> Path:
    """A copy of a trained bundle (its checkpoints included, so training can resume in it)."""
    shutil.copytree(bundle, to)
    return to
