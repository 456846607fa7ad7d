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


class JsonConfig:
    """Shared by the config dataclasses: saved as indented JSON beside their model."""

    def save(self, path: str | Path) -> Path:
        """Write the config as JSON."""
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


@dataclass
class ModelConfig(JsonConfig):
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


IDC_SUBDIR = "idc"  # models/idc/: the histopathology model set
IDC_MODEL_FILE = "idc_classifier.keras"
IDC_CONFIG_FILE = "idc_classifier.json"
IDC_METRICS_FILE = "metrics.json"


@dataclass
class IdcConfig(JsonConfig):
    """The IDC patch classifier: what it expects, its test-time settings (chosen on val) and its training."""

    patch_size: int = 50  # input side in pixels (the pack's patches); the network up-samples inside
    network_size: int = 96  # side the backbone sees
    classes: tuple[str, ...] = ("non-IDC", "IDC")
    backbone: str = "lite2"
    initialisation: str = "random"
    temperature: float = 1.0  # softmax temperature (chosen on val)
    threshold: float = 0.5  # a patch is called IDC when its calibrated IDC probability reaches this (chosen on val)
    tta: bool = False  # average over the 8 flips / 90-degree rotations (chosen on val)
    patient_rule: dict = field(default_factory=lambda: {"kind": "share", "cut": 0.5})  # chosen on val patients
    seed: int = 1234
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 3e-4
    trained_epochs: int = 0
    best_epoch: int = 0
    notes: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> IdcConfig:
        """Read a config written by :meth:`save` (unknown keys are ignored)."""
        data = json.loads(Path(path).read_text())
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "classes" in known:
            known["classes"] = tuple(known["classes"])
        return cls(**known)


def idc_dir_in(models_dir: str | Path = MODELS_DIR) -> Path:
    """Folder of the IDC model set inside a models folder."""
    return Path(models_dir) / IDC_SUBDIR
