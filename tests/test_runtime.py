"""The fast CPU runtime (TensorFlow Lite + XNNPACK) answers like Keras, converts once, and falls back to Keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.inference import runtime


def _tiny(two_inputs: bool = False) -> keras.Model:
    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(image)
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    inputs, features = [image], pooled
    if two_inputs:
        extra = keras.Input((5,), name="extra")
        inputs, features = [image, extra], keras.layers.Concatenate()([pooled, extra])
    out = keras.layers.Dense(3, activation="softmax")(features)
    return keras.Model(inputs, [pooled, out], name="tiny2" if two_inputs else "tiny")


@pytest.mark.parametrize("two_inputs", [False, True])
def test_converted_runner_matches_keras_and_is_cached(tmp_path, two_inputs):
    model = _tiny(two_inputs)
    rng = np.random.default_rng(0)
    x = [rng.uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)] + ([rng.normal(size=(3, 5)).astype(np.float32)]
                                                                     if two_inputs else [])
    runner, used = runtime.make_runner(model, "tflite", "sha-a", "model", cache_dir=tmp_path)
    assert used == "tflite"
    expected = runtime.keras_runner(model)(x if two_inputs else x[0])
    got = runner(x if two_inputs else x[0])
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
    assert [a.shape[0] for a in runner(x[0][:1] if not two_inputs else [x[0][:1], x[1][:1]])] == [1, 1]
    files = sorted(tmp_path.glob("*.tflite"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    runtime.make_runner(model, "tflite", "sha-a", "model", cache_dir=tmp_path)
    assert files[0].stat().st_mtime_ns == stamp  # reused, not converted again
    runtime.make_runner(model, "tflite", "sha-b", "model", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.tflite"))) == 2  # another model file: another conversion


def test_a_failed_conversion_falls_back_to_keras(tmp_path, monkeypatch):
    def broken(model, out):
        raise RuntimeError("converter unavailable")

    monkeypatch.setattr(runtime, "convert", broken)
    with pytest.warns(UserWarning, match="running it with Keras"):
        runner, used = runtime.make_runner(_tiny(), "tflite", "sha", "model", cache_dir=tmp_path)
    assert used == "keras" and len(runner(np.zeros((1, 16, 16, 3), np.float32))) == 2


def test_runtime_choice_from_the_environment(monkeypatch):
    monkeypatch.delenv(runtime.RUNTIME_ENV, raising=False)
    assert runtime.default_runtime() == "tflite"
    monkeypatch.setenv(runtime.RUNTIME_ENV, "Keras")
    assert runtime.default_runtime() == "keras"
    monkeypatch.setenv(runtime.RUNTIME_ENV, "onnx")
    with pytest.raises(ValueError, match="choose one of tflite, keras"):
        runtime.default_runtime()
    with pytest.raises(ValueError, match="unknown runtime"):
        runtime.make_runner(_tiny(), "onnx", "sha", "model")


@pytest.mark.full  # a second Predictor (Keras runtime); the mechanism is checked fast above on small graphs
def test_shipped_models_answer_the_same_on_both_runtimes(predictor, busi_dir):
    """Every graph the Predictor runs (UNet, baseline with the gate's features, refined), on real BUSI images."""
    from pipeline.data.items import load_items
    from pipeline.inference.predictor import Predictor

    items = load_items(busi_dir, "test", limit=6)
    grays = [it.gray for it in items]
    fast = predictor if predictor.runtime == "tflite" else Predictor(runtime="tflite")  # the run's, when it is
    ref = Predictor(runtime="keras")
    p_fast, p_ref = fast.segment_probabilities(grays), ref.segment_probabilities(grays)
    assert max(float(np.abs(a - b).max()) for a, b in zip(p_fast, p_ref)) < 1e-3
    masks = ref.segment_batch(grays)
    disagree = np.mean([np.mean(a != b) for a, b in zip(fast.segment_batch(grays), masks)])
    assert disagree < 1e-3
    out_fast, out_ref = fast.classify_batch(grays, masks, temper=False), ref.classify_batch(grays, masks, temper=False)
    for part in ("baseline", "crop", "refined"):
        np.testing.assert_allclose(getattr(out_fast, part), getattr(out_ref, part), atol=1e-4)
    np.testing.assert_allclose(fast.baseline_features(grays)[0], ref.baseline_features(grays)[0], rtol=1e-3, atol=1e-3)
    for gray in grays[:2]:
        a, b = fast.predict(gray), ref.predict(gray)
        assert (a.label, a.baseline_label, a.in_scope) == (b.label, b.baseline_label, b.in_scope)
    assert set(fast.runtimes.values()) == {"tflite"} and set(ref.runtimes.values()) == {"keras"}
