"""Images of one split subset held in memory, for training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import CLASS_NAMES
from pipeline.data.busi import load_sample
from pipeline.data.split import read_split
from pipeline.paths import SPLIT_CSV


@dataclass
class Item:
    """One example held in memory: grayscale image, 0/1 mask, class index."""

    image: str
    gray: np.ndarray
    mask: np.ndarray
    label: int
    gray_small: np.ndarray | None = None  # segmentation: image and mask pre-resized to the network size
    mask_small: np.ndarray | None = None
    crop_mask: np.ndarray | None = None  # refined training: an out-of-fold predicted mask to crop from, if any


def load_items(root: str | Path, subset: str, split_csv: str | Path = SPLIT_CSV, limit: int | None = None) -> list[Item]:
    """Read the images and merged masks of one subset of the split (``limit``: a few per class, for smoke tests)."""
    rows = read_split(split_csv)
    rows = rows[rows["subset"] == subset]
    if limit:
        rows = rows.groupby("label", group_keys=False).head(max(1, limit // 3)).head(limit)
    items = []
    for image, label in zip(rows["image"], rows["label"]):
        gray, mask = load_sample(root, image)
        items.append(Item(image, gray, mask, CLASS_NAMES.index(label)))
    return items


def labels(items: list[Item]) -> np.ndarray:
    """Class indices of ``items``."""
    return np.array([it.label for it in items])


def load_busbra_items(root: str | Path, subset: str, limit: int | None = None,
                      folds: tuple[int, ...] | None = None) -> list[Item]:
    """Images and masks of one BUS-BRA subset (by the authors' patient-level folds), as Items.

    ``folds``: these of the authors' folds (1-5) instead of ``subset``'s (patients still never span two folds)."""
    from pipeline.data import busbra

    rows = busbra.read_index(root)
    rows = rows[rows["fold"].isin(folds)] if folds is not None else rows[rows["subset"] == subset]
    if limit:
        rows = rows.groupby("label", group_keys=False).head(max(1, limit // 2)).head(limit)
    items = []
    for _, row in rows.iterrows():
        gray, mask = busbra.load_sample(row)
        items.append(Item(row["image"], gray, mask, CLASS_NAMES.index(row["label"])))
    return items
