"""The predict contract: one ``Predictor`` that loads the three models once and answers for an image.

Pipeline per image: grayscale -> UNet mask (at the image's own size) -> baseline classifier on the
whole frame and crop classifier on the lesion-centred crop of the predicted mask -> overlay.
The refined answer fuses the crop classifier with the whole-frame one (weight chosen on the validation
split; weight 1 is the crop model alone). Optional flip test-time augmentation and the softmax
temperatures are also chosen on the validation split and stored in the model configs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import preprocess
from pipeline.config import CLASS_NAMES, ModelConfig, config_path, model_path
from pipeline.errors import ModelLoadError
from pipeline.metrics import apply_temperature
from pipeline.overlay import overlay
from pipeline import paths

RESTORE_HINT = (
    "The trained models ship with the project in models/: restore them with "
    "`git checkout -- models/` (or `git lfs pull` if your clone uses LFS), or retrain with "
    "`python -m pipeline train seg` and `python -m pipeline train cls --input raw|refined`."
)


@dataclass(frozen=True)
class Prediction:
    """Everything the app and the CLI show for one image."""

    label: str
    probabilities: dict[str, float]
    baseline_label: str
    baseline_probabilities: dict[str, float]
    mask: np.ndarray  # uint8 0/1, same height and width as the input
    lesion_fraction: float
    overlay: np.ndarray  # RGB uint8
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        """Probability of the refined model's label."""
        return self.probabilities[self.label]

    @property
    def models_agree(self) -> bool:
        """True when baseline and refined models give the same label."""
        return self.label == self.baseline_label


def load_keras_model(path: Path):
    """Load a ``.keras`` file in safe mode, or raise ModelLoadError with how to get it back."""
    import keras

    from pipeline import losses  # noqa: F401  (registers the custom objects)

    if not path.is_file():
        raise ModelLoadError(f"model file missing: {path}. {RESTORE_HINT}")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        raise ModelLoadError(f"model file {path} cannot be loaded ({type(exc).__name__}: {exc}). {RESTORE_HINT}") from exc


class Predictor:
    """Loads the UNet and both classifiers once; ``predict`` is safe to call from several threads."""

    def __init__(self, models_dir: str | Path | None = None):
        import tensorflow as tf

        self.models_dir = Path(models_dir) if models_dir else paths.models_dir()
        self.configs: dict[str, ModelConfig] = {}
        self._fns = {}
        for name in ("seg", "raw", "refined"):
            model = load_keras_model(model_path(name, self.models_dir))
            cfg_file = config_path(name, self.models_dir)
            if not cfg_file.is_file():
                raise ModelLoadError(f"model config missing: {cfg_file}. {RESTORE_HINT}")
            self.configs[name] = ModelConfig.load(cfg_file)
            self._fns[name] = tf.function(lambda x, m=model: m(x, training=False), reduce_retracing=True)
            setattr(self, f"{name}_model", model)
        self.classes: tuple[str, ...] = self.configs["raw"].classes
        self._lock = threading.Lock()

    def _run(self, name: str, batch: np.ndarray) -> np.ndarray:
        with self._lock:  # one graph call at a time: identical results whatever the callers
            return self._fns[name](batch).numpy()

    def _run_with_flip(self, name: str, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Outputs for the batch and for its horizontal mirror, in one call."""
        out = self._run(name, np.concatenate([batch, batch[:, :, ::-1]]))
        return out[: len(batch)], out[len(batch):]

    def segment_probabilities(self, grays: list[np.ndarray]) -> list[np.ndarray]:
        """Lesion probability maps resized to each image's own size (flip-averaged if configured)."""
        cfg = self.configs["seg"]
        x = np.stack([preprocess.seg_input(g, cfg.image_size) for g in grays])
        if cfg.flip_tta:
            probs = self._run_with_flip("seg", x)
            probs = (probs[0] + probs[1][:, :, ::-1]) / 2
        else:
            probs = self._run("seg", x)
        return [preprocess.resize_probability(p, g.shape) for p, g in zip(probs, grays)]

    def segment_batch(self, grays: list[np.ndarray]) -> list[np.ndarray]:
        """Predicted 0/1 masks at each image's own size."""
        thr = self.configs["seg"].threshold
        return [(p >= thr).astype(np.uint8) for p in self.segment_probabilities(grays)]

    def model_probabilities(self, name: str, inputs: np.ndarray) -> np.ndarray:
        """Untempered probabilities of classifier ``name`` ("raw" or "refined"), flip-averaged if configured."""
        if self.configs[name].flip_tta:
            plain, flipped = self._run_with_flip(name, inputs)
            return (plain + flipped) / 2
        return self._run(name, inputs)

    def combine(self, base: np.ndarray, crop: np.ndarray, temper: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(baseline, refined) probabilities from the two classifiers' untempered outputs."""
        w = self.configs["refined"].fusion_weight
        refined = w * crop + (1 - w) * base
        if not temper:
            return base, refined
        return (apply_temperature(base, self.configs["raw"].temperature),
                apply_temperature(refined, self.configs["refined"].temperature))

    def classify_batch(self, whole: np.ndarray, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(baseline, refined) probabilities for batches of whole-frame and lesion-crop inputs."""
        return self.combine(self.model_probabilities("raw", whole), self.model_probabilities("refined", crops))

    def predict(self, image: np.ndarray) -> Prediction:
        """Segment and classify one image (grayscale, RGB or RGBA uint8 array)."""
        t0 = time.perf_counter()
        gray = preprocess.to_gray(np.asarray(image))
        if gray.dtype != np.uint8:
            raise TypeError(f"expected a uint8 image, got {gray.dtype}")
        mask = self.segment_batch([gray])[0]
        t1 = time.perf_counter()
        base_p = self.model_probabilities("raw", preprocess.cls_input(gray, self.configs["raw"].image_size)[None])
        t2 = time.perf_counter()
        crop_p = self.model_probabilities(
            "refined", preprocess.refined_input(gray, mask, self.configs["refined"].image_size)[None])
        base, refined = (p[0] for p in self.combine(base_p, crop_p))
        t3 = time.perf_counter()
        over = overlay(gray, mask)
        t4 = time.perf_counter()
        as_dict = lambda p: {c: float(v) for c, v in zip(self.classes, p)}  # noqa: E731
        return Prediction(
            label=self.classes[int(np.argmax(refined))], probabilities=as_dict(refined),
            baseline_label=self.classes[int(np.argmax(base))], baseline_probabilities=as_dict(base),
            mask=mask, lesion_fraction=float(mask.mean()), overlay=over,
            timings_ms={"segmentation": (t1 - t0) * 1e3, "baseline": (t2 - t1) * 1e3,
                        "refined": (t3 - t2) * 1e3, "overlay": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3},
        )


__all__ = ["CLASS_NAMES", "Prediction", "Predictor", "load_keras_model"]
