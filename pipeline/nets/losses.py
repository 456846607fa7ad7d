"""Keras losses and metrics for segmentation (registered so saved models load by name)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="busi")
def soft_dice(y_true, y_pred, smooth: float = 1.0):
    """Mean soft Dice over the batch (images with empty target and empty prediction score 1)."""
    axes = (1, 2, 3)
    inter = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return ops.mean((2.0 * inter + smooth) / (total + smooth))


@keras.saving.register_keras_serializable(package="busi")
def bce_dice_loss(y_true, y_pred):
    """Binary cross-entropy plus (1 - soft Dice)."""
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))
    return bce + 1.0 - soft_dice(y_true, y_pred)


@keras.saving.register_keras_serializable(package="busi")
def dice_metric(y_true, y_pred):
    """Dice of the thresholded prediction (0.5), averaged over the batch."""
    return soft_dice(y_true, ops.cast(y_pred > 0.5, "float32"), smooth=1e-6 + 1.0)


CUSTOM_OBJECTS = {f"busi>{f.__name__}": f for f in (soft_dice, bce_dice_loss, dice_metric)}
