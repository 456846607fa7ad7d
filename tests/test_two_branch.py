"""The two-branch refined classifier: built from two classifiers, the global branch frozen, the fusion started at
the mean of the two heads' logits, and served by its Predictor with the baseline's features from its own pass; the
product Predictor refuses it."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest
from trained import TINY, copy_bundle

from pipeline import preprocess
from pipeline.errors import ModelLoadError
from pipeline.experiments import two_branch
from pipeline.inference.bundle import record_model


def _tiny_classifier(name: str, seed: int) -> keras.Model:
    """A small classifier with the layer names the project's classifiers have (avg_pool, probabilities)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(0.3, name="head_dropout")(x)
    out = keras.layers.Dense(3, activation="softmax", name="probabilities")(x)
    return keras.Model(inp, out, name=name)


def _logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    features = keras.Model(model.input, model.get_layer("avg_pool").output)(x).numpy()
    w, b = model.get_layer("probabilities").get_weights()
    return features @ w + b


def test_fusion_starts_at_the_mean_of_the_two_heads_logits():
    base, local = _tiny_classifier("base", 0), _tiny_classifier("local", 1)
    frame, crop = np.random.default_rng(0).uniform(0, 255, (2, 4, 32, 32, 3)).astype(np.float32)
    model = two_branch.build_two_branch(base, local)
    assert two_branch.is_two_branch(model) and not two_branch.is_two_branch(base)
    global_features = keras.Model(base.input, base.get_layer("avg_pool").output)(frame).numpy()
    got = model([crop, global_features]).numpy()
    expected = keras.ops.softmax((_logits(local, crop) + _logits(base, frame)) / 2).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_training_moves_the_local_branch_and_fusion_never_the_baseline():
    base, local = _tiny_classifier("base", 0), _tiny_classifier("local", 1)
    before_base = [w.copy() for w in base.get_weights()]
    before_local = [w.copy() for w in local.get_weights()]
    net = two_branch.build_two_branch(base, local)
    train_model = two_branch.build_training_model(base, net)
    train_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = [rng.uniform(0, 255, (8, 32, 32, 3)).astype(np.float32) for _ in range(2)]
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    train_model.fit(x, y, epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before_base, base.get_weights()))
    assert any(not np.array_equal(a, b) for a, b in zip(before_local, local.get_weights()))


@pytest.fixture(scope="module")
def two_branch_bundle(tiny_bundle, busi_dir, tmp_path_factory):
    """The run's tiny bundle (UNet, baseline) with a two-branch refined classifier trained for one step on it."""
    from pipeline.training.train import train

    out = copy_bundle(tiny_bundle, tmp_path_factory.mktemp("two_branch") / "bundle")
    cfg = train("refined", busi_dir, models_dir=out, refined_arch=two_branch.RECIPE, **TINY)
    return out, cfg


@pytest.mark.full
def test_two_branch_trains_on_real_images_and_the_predictor_serves_it(two_branch_bundle, busi_dir):
    from pipeline.data.busi import load_sample
    from pipeline.data.split import read_split
    from pipeline.paths import SPLIT_CSV

    out, cfg = two_branch_bundle
    assert cfg.backbone == two_branch.ARCH and cfg.notes["global_width"] == 1280
    assert cfg.initialisation.startswith("global branch: classifier_baseline.keras, frozen; local branch: random")
    predictor = two_branch.predictor_for(out)
    assert isinstance(predictor, two_branch.TwoBranchPredictor) and predictor.global_layer == "avg_pool"
    image = read_split(SPLIT_CSV)["image"].iloc[0]
    gray, mask = load_sample(busi_dir, image)
    result = predictor.classify_batch([gray], [mask], temper=False)
    # the fused answer is the saved network on [crop, the baseline's pooled features]
    base = predictor.raw_model
    features = keras.Model(base.input, base.get_layer("avg_pool").output)(
        preprocess.cls_input(gray)[None]).numpy()
    direct = predictor.refined_model([preprocess.refined_input(gray, mask)[None], features]).numpy()
    np.testing.assert_allclose(result.crop, direct, rtol=1e-4, atol=1e-5)
    pred = predictor.predict(gray)
    assert abs(sum(pred.probabilities.values()) - 1) < 1e-5 and pred.in_scope is None
    heat = predictor.explain(gray, mask, pred.label)
    assert heat.heatmap.shape == gray.shape and 0 <= heat.heatmap.min() <= heat.heatmap.max() <= 1


@pytest.mark.full
def test_a_two_branch_model_refuses_another_baseline_and_the_product_predictor_refuses_it(two_branch_bundle, tmp_path):
    from pipeline.inference.predictor import Predictor

    with pytest.raises(ModelLoadError, match="two inputs .*TwoBranchPredictor"):
        Predictor(two_branch_bundle[0])
    out, _ = two_branch_bundle
    other = tmp_path / "bundle"
    shutil.copytree(out, other, ignore=shutil.ignore_patterns("checkpoints"))
    keras.models.load_model(other / "classifier_baseline.keras", compile=False).save(other / "classifier_baseline.keras")
    record_model(other, "raw", "test")  # a baseline recorded in the manifest, only not the one the fusion read
    with pytest.raises(ModelLoadError, match="another baseline"):
        two_branch.TwoBranchPredictor(other)
    with pytest.raises(ModelLoadError, match="load 'raw' with it"):
        two_branch.TwoBranchPredictor(out, models=("seg", "refined"))
