"""EfficientNet-Lite2 Keras port: architecture, parameter count, converted ImageNet weights."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from pipeline.nets import lite2

# Torch EfficientNet-Lite2 (efficientnet_lite_pytorch 0.1.0): 6,092,072 parameters, 4,811,072 without
# the 1000-way classifier, plus 58,096 BatchNorm running-stat values (non-trainable in Keras).
TORCH_PARAMS_NO_FC = 4_811_072
TORCH_PARAMS_TOTAL = 6_092_072
TORCH_BN_RUNNING = 58_096


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("size", [224, 260])
def test_backbone_shape_and_params(size):
    model = lite2.build_efficientnet_lite2((size, size, 3))
    assert model.output_shape == (None, 1280)
    assert _trainable(model) == TORCH_PARAMS_NO_FC
    assert model.count_params() == TORCH_PARAMS_NO_FC + TORCH_BN_RUNNING


def test_feature_map_and_top():
    fmap = lite2.build_efficientnet_lite2((224, 224, 3), pooling=None, include_preprocessing=False)
    assert fmap.output_shape == (None, 7, 7, 1280)
    top = lite2.build_efficientnet_lite2((260, 260, 3), include_top=True)
    assert top.output_shape == (None, 1000)
    assert _trainable(top) == TORCH_PARAMS_TOTAL


def test_small_inputs():
    assert lite2.build_efficientnet_lite2((32, 32, 3)).output_shape == (None, 1280)
    with pytest.raises(ValueError):
        lite2.build_efficientnet_lite2((31, 64, 3))


def test_export_script_is_torch_only():
    src = Path(lite2.__file__).with_name("lite2_export.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"tensorflow", "keras", "pipeline"}


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} absent: run pipeline.nets.lite2_export (torch venv) and "
                    "`python -m pipeline backbone convert-lite2` to create it")
    return path


def test_converted_weights_match_torch():
    npz = _need(lite2.DEFAULT_NPZ)
    weights = _need(lite2.DEFAULT_WEIGHTS)
    model = lite2.load_lite2_imagenet(lite2.build_efficientnet_lite2((260, 260, 3)), weights)
    diff = lite2.verify_against_npz(model, npz)["max_abs_diff_features"]
    assert diff < 1e-3
    # same weights at another input size: loads and runs
    small = lite2.load_lite2_imagenet(lite2.build_efficientnet_lite2((224, 224, 3)), weights)
    for a, b in zip(small.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_npz_logits_top1_match_torch():
    npz = _need(lite2.DEFAULT_NPZ)
    model = lite2.load_lite2_imagenet(lite2.build_efficientnet_lite2((260, 260, 3), include_top=True), npz)
    result = lite2.verify_against_npz(model, npz)
    assert result["top1_agree"]
    assert result["max_abs_diff_logits"] < 1e-2
