"""Shared set-up for the prediction benchmarks: test-split images from BUSI_DIR."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.data.split import read_split
from pipeline.imageio import load_image


def test_image_paths(limit: int) -> list[Path]:
    """Up to ``limit`` test-split image paths; exits with a message when the dataset is missing."""
    root = paths.dataset_dir()
    if not paths.dataset_available(root):
        sys.exit(f"dataset not found at {root}: set BUSI_DIR")
    split = read_split(paths.SPLIT_CSV)
    return [root / n for n in list(split[split["subset"] == "test"]["image"])[:limit]]


def test_images(limit: int) -> list[np.ndarray]:
    """Up to ``limit`` test-split images as grayscale arrays, decoded by the project's loader."""
    return [load_image(p).pixels for p in test_image_paths(limit)]
