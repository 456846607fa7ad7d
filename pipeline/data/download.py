"""``make data``: fetch BUSI from Kaggle with kagglehub (needs internet; clear message when offline)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.config import CLASS_NAMES as CLASSES
from pipeline.errors import DatasetError

KAGGLE_HANDLE = "aryashah2k/breast-ultrasound-images-dataset"


def _find_root(folder: Path) -> Path | None:
    """The folder under ``folder`` that holds benign/, malignant/ and normal/."""
    for cand in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        if all((cand / c).is_dir() for c in CLASSES):
            return cand
    return None


def download_busi(target: Path) -> Path:
    """Download (kagglehub shows progress) and copy the dataset to ``target``; return ``target``.

    Does nothing when ``target`` already holds the dataset.
    """
    if _find_root(target) == target:
        print(f"{target} already holds the dataset; nothing to download")
        return target
    try:
        import kagglehub

        cached = Path(kagglehub.dataset_download(KAGGLE_HANDLE))
    except Exception as exc:
        raise DatasetError(
            f"could not download {KAGGLE_HANDLE} from Kaggle ({type(exc).__name__}: {exc}). "
            "Check your internet connection (and Kaggle credentials if asked), or download the dataset "
            "by hand and point BUSI_DIR at its Dataset_BUSI_with_GT folder."
        ) from exc
    root = _find_root(cached)
    if root is None:
        raise DatasetError(f"downloaded files in {cached} do not contain benign/, malignant/ and normal/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(root, target, dirs_exist_ok=True)
    return target
