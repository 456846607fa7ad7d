"""Per-model configuration, saved as JSON beside each ``.keras`` file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.paths import MODELS_DIR

CLASS_NAMES: tuple[str, ...] = ("benign", "malignant", "normal")

MODEL_FILES = {
    "seg": "unet.keras",
    "raw": "classifier_baseline.keras",
    "refined": "classifier_refined.keras",
}


BUSBRA_TRAINING = "BUSI train + BUS-BRA folds 1-3"  # ModelConfig.notes["datasets"] of a model trained on both


def mentions_busbra(datasets: object) -> bool:
    """True when a ``datasets`` note (config or metrics JSON) says BUS-BRA was used in training."""
    return "BUS-BRA" in str(datasets or "")


@dataclass
class ModelConfig:
    """What a model expects and how it was trained."""

    name: str  # "seg", "raw" or "refined"
    image_size: int
    classes: tuple[str, ...] = CLASS_NAMES
    backbone: str = "unet"
    initialisation: str = "random"
    threshold: float = 0.5  # segmentation probability threshold
    presence_threshold: float = 0.0  # segmentation: an empty mask unless some pixel reaches this (0: never gated)
    temperature: float = 1.0  # classifier softmax temperature (chosen on val)
    flip_tta: bool = False  # average with the horizontally flipped input (chosen on val)
    fusion_weight: float = 1.0  # refined only: weight of the crop model, the rest is the whole-frame model
    seed: int = 1234
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 1e-3
    split_file: str = "data/splits/busi.csv"
    trained_epochs: int = 0
    best_epoch: int = 0
    notes: dict = field(default_factory=dict)

    @property
    def trained_on_busbra(self) -> bool:
        """True when this model was trained on BUS-BRA's training folds as well as BUSI."""
        return mentions_busbra(self.notes.get("datasets"))

    def save(self, path: str | Path) -> Path:
        """Write the config as JSON."""
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        """Read a config written by ``save``."""
        data = json.loads(Path(path).read_text())
        data["classes"] = tuple(data.get("classes", CLASS_NAMES))
        return cls(**data)


def model_path(name: str, models_dir: str | Path = MODELS_DIR) -> Path:
    """Path of the ``.keras`` file of model ``name`` ("seg", "raw" or "refined")."""
    return Path(models_dir) / MODEL_FILES[name]


def config_path(name: str, models_dir: str | Path = MODELS_DIR) -> Path:
    """Path of the JSON config saved beside model ``name``."""
    return model_path(name, models_dir).with_suffix(".json")
