"""The two-branch refined classifier: whole frame (global) + lesion crop (local), fused inside the network.

- Global branch: the baseline classifier's trunk up to its pooled features, frozen. The baseline stays
  exactly the shipped baseline, and in use its features come from the baseline's own pass, so the refined
  answer costs one crop pass more than the baseline, not two.
- Local branch: an EfficientNet on the lesion-centred crop of the predicted mask, trained.
- Fusion: the two pooled feature vectors concatenated, dropout, one softmax layer. Started at the mean of the
  two single-branch heads' logits (the classic late fusion), then trained end to end with the local branch.

The saved (inference) model takes ``[crop, global_features]``; the training model takes ``[frame, crop]`` and
holds the frozen global trunk in front of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

POOLED_LAYER = "avg_pool"  # every classifier's pooled features, just before its dense layer
GLOBAL_LAYER = POOLED_LAYER  # the baseline's, fed to the fusion
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
