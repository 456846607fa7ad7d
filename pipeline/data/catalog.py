"""The dataset index with duplicate groups and split subsets: what the CLI and dashboard browse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pipeline.data import duplicates, split
from pipeline.data.busi import build_index
from pipeline.paths import SPLIT_CSV

Progress = Callable[[int, int], None] | None


def grouped_index(root: str | Path, progress: Progress = None, dup_progress: Progress = None) -> pd.DataFrame:
    """Index of every image (see dataset.INDEX_COLUMNS) plus duplicate-group columns."""
    index = build_index(root, progress)
    sim = duplicates.similarity_matrix(list(index["path"]), dup_progress)
    return duplicates.add_groups(index, sim)


def with_subsets(index: pd.DataFrame, split_csv: str | Path = SPLIT_CSV) -> pd.DataFrame:
    """Add the committed split's ``subset`` column (``"unassigned"`` for images not in the file)."""
    out = index.copy()
    path = Path(split_csv)
    if path.is_file():
        subsets = split.read_split(path).set_index("image")["subset"]
        out["subset"] = out["image"].map(subsets).fillna("unassigned")
    else:
        out["subset"] = "unassigned"
    return out


def summary(index: pd.DataFrame) -> dict:
    """Counts and facts for ``data summary`` and the dataset page (JSON-serialisable)."""
    groups = index[index["group_size"] > 1]
    conflict = duplicates.conflicts(index)
    return {
        "images": int(len(index)),
        "mask_files": int(index["n_mask_files"].sum()),
        "per_class": {k: int(v) for k, v in index["label"].value_counts().sort_index().items()},
        "multi_mask_images": int((index["n_mask_files"] > 1).sum()),
        "rgb_images": int((index["channels"] > 1).sum()),
        "height": {"min": int(index["height"].min()), "median": float(index["height"].median()),
                   "max": int(index["height"].max())},
        "width": {"min": int(index["width"].min()), "median": float(index["width"].median()),
                  "max": int(index["width"].max())},
        "empty_masks_in_lesion_classes": int(((index["label"] != "normal") & (index["lesion_fraction"] == 0)).sum()),
        "nonempty_masks_in_normal": int(((index["label"] == "normal") & (index["lesion_fraction"] > 0)).sum()),
        "duplicate_threshold": duplicates.THRESHOLD,
        "duplicate_groups": int(groups["group"].nunique()),
        "images_in_duplicate_groups": int(len(groups)),
        "largest_group": int(index["group_size"].max()),
        "cross_label_groups": int(conflict["group"].nunique()),
        "cross_label_images": conflict["image"].tolist(),
    }


def busbra_summary(index: pd.DataFrame) -> dict:
    """Counts for BUS-BRA (``busbra.read_index``): images, patients, classes, scanners, BI-RADS, subsets."""
    from pipeline.data.busbra import scanner

    per_subset = {}
    for subset, rows in index.groupby("subset"):
        per_subset[str(subset)] = {"images": int(len(rows)), "patients": int(rows["case"].nunique()),
                                   "per_class": {k: int(v) for k, v in rows["label"].value_counts().sort_index().items()}}
    return {
        "images": int(len(index)), "patients": int(index["case"].nunique()),
        "per_class": {k: int(v) for k, v in index["label"].value_counts().sort_index().items()},
        "per_scanner": {k: int(v) for k, v in index["device"].map(scanner).value_counts().items()},
        "per_birads": {int(k): int(v) for k, v in index["birads"].value_counts().sort_index().items()},
        "patients_in_several_subsets": int((index.groupby("case")["subset"].nunique() > 1).sum()),
        "per_subset": per_subset,
        "width": {"min": int(index["width"].min()), "max": int(index["width"].max())},
    }
