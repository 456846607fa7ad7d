"""Where things live: project folders and the dataset location."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
MODELS_DIR = PROJECT_ROOT / "models"
SPLIT_CSV = DATA_DIR / "splits" / "busi.csv"
DEFAULT_DATASET_DIR = DATA_DIR / "Dataset_BUSI_with_GT"
CACHE_DIR = DATA_DIR / "cache"


def dataset_dir(cli_value: str | os.PathLike | None = None) -> Path:
    """Resolve the BUSI folder: ``--data`` option, else ``BUSI_DIR``, else ``data/Dataset_BUSI_with_GT``."""
    if cli_value:
        return Path(cli_value).expanduser()
    env = os.environ.get("BUSI_DIR")
    if env:
        return Path(env).expanduser()
    return DEFAULT_DATASET_DIR


def dataset_available(root: str | os.PathLike | None = None) -> bool:
    """True when the resolved dataset folder holds the three class folders."""
    path = dataset_dir(root)
    return all((path / c).is_dir() for c in ("benign", "malignant", "normal"))


def models_dir() -> Path:
    """Folder of the trained models: ``BUSI_MODELS_DIR`` when set, else ``models/``."""
    env = os.environ.get("BUSI_MODELS_DIR")
    return Path(env).expanduser() if env else MODELS_DIR
