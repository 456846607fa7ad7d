"""A known-answer IDC model for testing the tile machinery: a real Keras model with the real contract
((None, 50, 50, 3) RGB 0-255 -> (non-IDC, IDC) softmax) whose IDC probability is a formula of the patch,
so a test can say which probability every cell must get: ``sigmoid(SLOPE * (mean red - mean green))``.

It runs through the real ``IdcPredictor`` (file loading, TensorFlow Lite conversion, batching, tiles); only the
weights are chosen by hand instead of trained. Tests of the trained model use ``models/idc/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SLOPE = 0.1


def known_answer_model():
    """GlobalAveragePooling -> Dense(2, softmax) with logits (0, SLOPE * (R - G))."""
    import keras

    inp = keras.Input((50, 50, 3), name="patch")
    x = keras.layers.GlobalAveragePooling2D(name="mean_colour")(inp)
    out = keras.layers.Dense(2, activation="softmax", name="probabilities")(x)
    model = keras.Model(inp, out, name="idc_classifier")
    kernel = np.array([[0.0, SLOPE], [0.0, -SLOPE], [0.0, 0.0]], np.float32)
    model.get_layer("probabilities").set_weights([kernel, np.zeros(2, np.float32)])
    return model


def expected_probability(cell: np.ndarray) -> float:
    """The known model's IDC probability for one (50, 50, 3) patch."""
    c = np.asarray(cell, np.float64)
    return float(1 / (1 + np.exp(-SLOPE * (c[..., 0].mean() - c[..., 1].mean()))))


def save_known_answer_model(models_dir: Path, **config) -> Path:
    """Write ``models_dir/idc/idc_classifier.{keras,json}`` (config fields overridable); returns ``models_dir``."""
    from pipeline.config import IDC_CONFIG_FILE, IDC_MODEL_FILE, IdcConfig, idc_dir_in
    from pipeline.inference.bundle import write_idc_manifest

    folder = idc_dir_in(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    known_answer_model().save(folder / IDC_MODEL_FILE)
    IdcConfig(**config).save(folder / IDC_CONFIG_FILE)
    write_idc_manifest(folder, "0.0.0-test")
    return Path(models_dir)


def he_like(rng: np.random.Generator, shape: tuple[int, int], red: int, green: int) -> np.ndarray:
    """A textured pink/purple uint8 RGB picture with given mean red and green levels (blue between them)."""
    h, w = shape
    noise = rng.normal(0, 12, (h, w, 1))
    base = np.array([red, green, (red + green) // 2 + 30], np.float64)
    return np.clip(base + noise, 0, 255).astype(np.uint8)
