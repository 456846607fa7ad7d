"""IDC histopathology inference: the one path from 50x50 H&E patches to calibrated IDC probabilities.

Training (epoch choice), evaluation, the CLI, the HTTP API and the dashboard all call :class:`IdcPredictor`.
Test-time settings (8-fold flip/rotation averaging, softmax temperature, the patch threshold and the patient
rule) are chosen on the validation patients and stored in ``models/idc/idc_classifier.json``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.config import IDC_CONFIG_FILE, IDC_MODEL_FILE, IdcConfig, idc_dir_in
from pipeline.errors import ImageLoadError, ModelLoadError
from pipeline.metrics import apply_temperature

BATCH = 256
IDC_RESTORE_HINT = ("The IDC model ships with the project in models/idc/: restore it with `git checkout -- models/idc/`, "
                    "or retrain with `python -m pipeline idc train` then `python -m pipeline idc evaluate`.")


def dihedral(patches: np.ndarray) -> list[np.ndarray]:
    """The 8 flips / 90-degree rotations of a batch (N, H, W, C); the first is the batch itself."""
    out = []
    for k in range(4):
        r = np.rot90(patches, k, axes=(1, 2))
        out += [r, r[:, :, ::-1]]
    return [np.ascontiguousarray(a) for a in out]


def check_patches(patches: np.ndarray, size: int) -> np.ndarray:
    """Validate a (N, size, size, 3) uint8-range batch (a single patch is promoted); float32 out."""
    a = np.asarray(patches)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[1:] != (size, size, 3):
        raise ImageLoadError(f"expected RGB patches of {size}x{size} pixels, got an array of shape {a.shape}")
    return a.astype(np.float32)


class IdcPredictor:
    """Loads the IDC classifier once; answers IDC probabilities for patches (thread-safe)."""

    def __init__(self, models_dir: str | Path | None = None, model=None, config: IdcConfig | None = None):
        self.folder = idc_dir_in(models_dir or paths.models_dir())
        self._lock = threading.Lock()
        if model is not None:
            self.model, self.config = model, config or IdcConfig()
            return
        model_file, config_file = self.folder / IDC_MODEL_FILE, self.folder / IDC_CONFIG_FILE
        for f in (model_file, config_file):
            if not f.is_file():
                raise ModelLoadError(f"IDC model file missing: models/idc/{f.name}. {IDC_RESTORE_HINT}")
        try:
            import keras

            self.model = keras.saving.load_model(model_file, compile=False)
            self.config = IdcConfig.load(config_file)
        except Exception as exc:  # noqa: BLE001 - keras raises many types for a damaged file
            raise ModelLoadError(f"the IDC model models/idc/{model_file.name} cannot be loaded "
                                 f"({type(exc).__name__}). {IDC_RESTORE_HINT}") from exc

    def raw_probabilities(self, patches: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """(N, 2) softmax outputs before the temperature, averaged over the 8 dihedral views when ``tta``."""
        x = check_patches(patches, self.config.patch_size)
        tta = self.config.tta if tta is None else tta
        views = dihedral(x) if tta else [x]
        total = np.zeros((len(x), 2), np.float64)
        with self._lock:
            for v in views:
                for i in range(0, len(v), BATCH):
                    total[i:i + BATCH] += np.asarray(self.model(v[i:i + BATCH], training=False), np.float64)
        return total / len(views)

    def probabilities(self, patches: np.ndarray) -> np.ndarray:
        """(N,) calibrated IDC probability per patch."""
        return apply_temperature(self.raw_probabilities(patches), self.config.temperature)[:, 1]

    def labels(self, idc_probability: np.ndarray) -> np.ndarray:
        """1 where a patch is called IDC (probability at or above the threshold chosen on val)."""
        return (np.asarray(idc_probability) >= self.config.threshold).astype(np.uint8)
