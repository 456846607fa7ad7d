"""Leakage-free split: stratified by class, 70/15/15, duplicate groups kept whole, fixed seed.

Groups are the units. Groups whose members
carry different labels (cross-label conflicts) always go to train: their true class is uncertain,
so they must not score a model, and they still teach it what both look like.
Remaining groups are shuffled with the seed, then placed largest first into the subset that is
furthest below its target share of that class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SUBSETS = ("train", "val", "test")
FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
SEED = 20240601
SPLIT_COLUMNS = ["image", "label", "subset", "group"]


def make_split(index: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Assign every image of ``index`` (needs image, label, group, group_labels) to a subset."""
    df = index.sort_values("image").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    subset_of_group: dict[str, str] = {}
    for g in df.loc[df["group_labels"].str.contains(r"\+", regex=True), "group"].unique():
        subset_of_group[g] = "train"
    free = df[~df["group"].isin(subset_of_group)]
    label_of_group = free.groupby("group")["label"].first()  # non-conflict groups have one label
    sizes = free.groupby("group").size()
    for label in sorted(label_of_group.unique()):
        groups = np.array(sorted(label_of_group.index[label_of_group == label]))
        groups = groups[rng.permutation(len(groups))]
        groups = sorted(groups, key=lambda g: -sizes[g])  # stable: ties keep the shuffled order
        of_label = df["label"] == label
        total = int(of_label.sum())
        filled = {s: 0 for s in SUBSETS}
        filled["train"] = int((of_label & ~df["group"].isin(label_of_group.index)).sum())
        for g in groups:
            best = max(SUBSETS, key=lambda s: ((FRACTIONS[s] * total - filled[s]) / FRACTIONS[s], -SUBSETS.index(s)))
            subset_of_group[g] = best
            filled[best] += int(sizes[g])
    df["subset"] = df["group"].map(subset_of_group)
    return df[SPLIT_COLUMNS]


def write_split(split: pd.DataFrame, path: str | Path) -> Path:
    """Write the split CSV (sorted by image, Unix newlines) so regeneration gives identical bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    split.sort_values("image").to_csv(path, index=False, lineterminator="\n")
    return path


def read_split(path: str | Path) -> pd.DataFrame:
    """Read a split CSV written by ``write_split``."""
    df = pd.read_csv(path, dtype=str)
    missing = set(SPLIT_COLUMNS) - set(df.columns)
    if missing:
        from pipeline.errors import DatasetError

        raise DatasetError(f"split file {path} lacks column(s): {', '.join(sorted(missing))}")
    return df


def proportions(split: pd.DataFrame) -> pd.DataFrame:
    """Share of each class's images in each subset (rows: label, columns: subset)."""
    counts = pd.crosstab(split["label"], split["subset"]).reindex(columns=list(SUBSETS), fill_value=0)
    return counts.div(counts.sum(axis=1), axis=0)
