"""The two-branch refined classifier: whole frame (global) + lesion crop (local), fused inside the network.

- Global branch: the baseline classifier's trunk up to its pooled features, frozen. The baseline stays
  exactly the shipped baseline, and in use its features come from the baseline's own pass, so the refined
  answer costs one crop pass more than the baseline, not two.
- Local branch: an EfficientNet on the lesion-centred crop of the predicted mask, trained.
- Fusion: the two pooled feature vectors concatenated, dropout, one softmax layer. Started at the mean of the
  two single-branch heads' logits (the classic late fusion), then trained end to end with the local branch.

The saved (inference) model takes ``[crop, global_features]``; the training model takes ``[frame, crop]`` and
holds the frozen global trunk in front of it. Trained with ``train(..., refined_arch=RECIPE)`` (CLI
``train cls --input refined --refined-arch two-branch``), served by ``TwoBranchPredictor``; the product path
(the plain ``Predictor``) refuses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline import preprocess
from pipeline.config import ModelConfig, config_path, model_path
from pipeline.errors import ModelLoadError
from pipeline.inference.bundle import ARCH_CONTRACTS, CONTRACTS, file_sha256
from pipeline.inference.predictor import RESTORE_HINT, Predictor
from pipeline.nets import POOLED_LAYER
from pipeline.training.train import RefinedRecipe, cls_example, initialisation_of, load_initial

if TYPE_CHECKING:
    import keras

GLOBAL_LAYER = POOLED_LAYER  # the baseline's pooled features, fed to the fusion
GLOBAL_INPUT = "global_features"
ARCH = "lite2-two-branch"
GLOBAL_BRANCH = "global_branch"  # the frozen trunk inside the training model
NETWORK = "two_branch"  # the inference model, nested in the training model and exported from it


def global_trunk(baseline: keras.Model) -> keras.Model:
    """The baseline's network up to its pooled features, frozen (weights and batch-norm statistics)."""
    import keras

    trunk = keras.Model(baseline.input, baseline.get_layer(GLOBAL_LAYER).output, name=GLOBAL_BRANCH)
    trunk.trainable = False
    return trunk


def build_two_branch(baseline: keras.Model, local: keras.Model, dropout: float = 0.3) -> keras.Model:
    """Inference model ``[crop, global_features] -> probabilities`` around classifier ``local``'s layers.

    The fusion layer starts at the mean of ``local``'s and ``baseline``'s head logits.
    """
    import keras
    from keras import layers

    local_features = local.get_layer(POOLED_LAYER).output
    n_global = int(baseline.get_layer(GLOBAL_LAYER).output.shape[-1])
    g = keras.Input((n_global,), name=GLOBAL_INPUT)
    x = layers.Concatenate(name="fused_features")([local_features, g])
    x = layers.Dropout(dropout, name="fusion_dropout")(x)
    head = layers.Dense(local.output_shape[-1], activation="softmax", name="fused_probabilities", dtype="float32")
    model = keras.Model([local.input, g], head(x), name=NETWORK)
    w_local, b_local = local.get_layer("probabilities").get_weights()
    w_global, b_global = baseline.get_layer("probabilities").get_weights()
    head.set_weights([np.concatenate([w_local, w_global]) / 2, (b_local + b_global) / 2])
    return model


def build_training_model(baseline: keras.Model, two_branch: keras.Model) -> keras.Model:
    """``[frame, crop] -> probabilities``: the frozen global trunk feeding ``two_branch`` (trained end to end)."""
    import keras

    size = tuple(int(s) for s in baseline.input_shape[1:])
    frame = keras.Input(size, name="frame")
    crop = keras.Input(tuple(int(s) for s in two_branch.input_shape[0][1:]), name="crop")
    features = global_trunk(baseline)(frame, training=False)
    return keras.Model([frame, crop], two_branch([crop, features]), name="two_branch_training")


def is_two_branch(model: keras.Model) -> bool:
    """True for a saved two-branch inference model (two inputs: crop and global features)."""
    return isinstance(model.input_shape, list) and len(model.input_shape) == 2


ARCH_CONTRACTS[ARCH] = {  # the manifest contract of a two-branch refined classifier
    "role": "refined classifier: lesion-centred crop of the predicted mask fused with the baseline's whole-frame "
            "features inside one network",
    "input": {"shape": [[None, "image_size", "image_size", 3], [None, "global_width"]], "dtype": "float32",
              "range": [[0.0, 255.0], None], "channels": ["grayscale repeated on 3 channels", "features"],
              "prepared_by": ["pipeline.preprocess.refined_input",
                              f"the baseline classifier's pooled features (layer {GLOBAL_LAYER}, flip-averaged like it)"]},
    "output": CONTRACTS["refined"]["output"],
}


class TwoBranchPredictor(Predictor):
    """The Predictor for a bundle whose refined classifier is the two-branch network: one baseline pass gives
    the baseline's answer and the global features the fused network reads."""

    global_layer = GLOBAL_LAYER

    def _check_refined(self) -> None:
        """The refined model must be two-branch and trained on the loaded baseline."""
        name = model_path("refined", self.models_dir).name
        if not is_two_branch(self.refined_model):
            raise ModelLoadError(f"{name} is not a two-branch network: load it with the plain Predictor")
        if "raw" not in self._sha:
            raise ModelLoadError("the two-branch refined classifier reads the baseline's features: load 'raw' with it")
        expected = self.configs["refined"].notes.get("global_branch_sha256")
        if expected and expected != self._sha["raw"]:
            raise ModelLoadError(f"{name} was trained on another baseline classifier than "
                                 f"{model_path('raw', self.models_dir).name}: retrain it, or {RESTORE_HINT}")


def example(item, rng: np.random.Generator | None):
    """((frame, crop), one-hot) for the two-branch network: the whole frame and the lesion crop, each prepared
    (and augmented) as for its single-branch classifier."""
    frame, y = cls_example(item, rng, refined=False)
    crop, _ = cls_example(item, rng, refined=True)
    return (frame, crop), y


def build(models_dir: Path, backbone: str, weights: str | None, init: str | Path | None):
    """The two-branch training model: the baseline in ``models_dir`` (frozen) + a local branch (``init`` or new)."""
    from pipeline.nets import networks

    base_file = model_path("raw", models_dir)
    if not base_file.is_file():
        raise ModelLoadError(f"the two-branch network reads the baseline's features: {base_file} not found")
    baseline = load_initial(base_file)
    if init is not None:
        local = load_initial(init)
        local_init = f"warm start from {Path(init).name} (itself: {initialisation_of(init)})"
    else:
        local, local_init = networks.build_classifier(backbone, preprocess.CLS_SIZE, weights)
    model = build_training_model(baseline, build_two_branch(baseline, local))
    return model, (f"global branch: {base_file.name}, frozen; local branch: {local_init}; "
                   "fusion layer: mean of the two heads' logits")


def configure(cfg: ModelConfig, models_dir: Path, model: keras.Model) -> None:
    """Record the architecture, the baseline it reads (hash) and the width of its global features."""
    cfg.backbone = ARCH
    cfg.notes["global_branch_sha256"] = file_sha256(model_path("raw", models_dir))
    cfg.notes["global_width"] = int(model.get_layer(GLOBAL_BRANCH).output.shape[-1])


RECIPE = RefinedRecipe(example=example, build=build, configure=configure, export_layer=NETWORK)


def predictor_for(models_dir: str | Path) -> Predictor:
    """The Predictor that serves ``models_dir``: ``TwoBranchPredictor`` when its refined classifier is two-branch."""
    two = ModelConfig.load(config_path("refined", models_dir)).backbone == ARCH
    return (TwoBranchPredictor if two else Predictor)(models_dir)
