"""Grad-CAM on a tiny Keras classifier (fast, no trained weights needed)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.inference import gradcam
from pipeline.preprocess import lesion_box


@pytest.fixture(scope="module")
def tiny_classifier():
    keras.utils.set_random_seed(0)
    inp = keras.Input((64, 64, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="head_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(0.2, name="head_dropout")(x)
    out = keras.layers.Dense(3, activation="softmax", name="probabilities")(x)
    return keras.Model(inp, out)


def image(seed=0, shape=(64, 64)):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (*shape, 3)).astype(np.float32)


def test_finds_last_4d_layer(tiny_classifier):
    assert gradcam.last_conv_layer_name(tiny_classifier) == "head_relu"


def test_no_conv_layer_is_an_error():
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(inp))
    with pytest.raises(ValueError, match="4-D"):
        gradcam.last_conv_layer_name(model)


def test_heatmap_shape_range_and_determinism(tiny_classifier):
    cam = gradcam.GradCam(tiny_classifier)
    x = image()
    h1, idx1 = cam(x)
    h2, idx2 = cam(x[None])
    assert h1.shape == (64, 64)
    assert h1.dtype == np.float32
    assert 0.0 <= h1.min() and h1.max() <= 1.0
    np.testing.assert_array_equal(h1, h2)
    assert idx1 == idx2 == int(np.argmax(tiny_classifier(x[None]).numpy()[0]))
    other = (idx1 + 1) % 3
    assert cam(x, class_index=other)[1] == other


def test_refined_gradcam_maps_back_onto_lesion_box(tiny_classifier):
    cam = gradcam.GradCam(tiny_classifier)
    gray = image(1, (120, 160))[:, :, 0].astype(np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:60, 70:100] = 1
    res = gradcam.refined_gradcam(cam, gray, mask, size=64)
    box = lesion_box(mask)
    assert res.box == box and not res.whole_frame
    assert res.heatmap.shape == gray.shape
    x0, y0, x1, y1 = box
    outside = res.heatmap.copy()
    outside[y0:y1, x0:x1] = 0
    assert outside.max() == 0.0
    assert 0.0 <= res.heatmap.min() and res.heatmap.max() <= 1.0
    empty = gradcam.refined_gradcam(cam, gray, np.zeros_like(mask), size=64)
    assert empty.whole_frame and empty.box == (0, 0, 160, 120)
    blended = gradcam.blend(gray, res.heatmap, box=res.box)
    assert blended.shape == (120, 160, 3) and blended.dtype == np.uint8


def test_blend_with_zero_heat_keeps_image():
    gray = np.full((40, 50), 100, np.uint8)
    out = gradcam.blend(gray, np.zeros((40, 50), np.float32))
    assert (out == 100).all()
    with pytest.raises(ValueError):
        gradcam.blend(gray, np.zeros((10, 10), np.float32))
