"""IDC tile inference: the 50 px grid (edges by reflection, size limits), glass cells, the per-cell map and the
record, through the real IdcPredictor (Keras and TensorFlow Lite) with a known-answer model; then the trained
model of ``models/idc/`` on the real pack (skips while it is absent)."""

from __future__ import annotations

import numpy as np
import pytest
from idc_factory import expected_probability, he_like, known_answer_model

from pipeline.config import IDC_MODEL_FILE, IdcConfig, idc_dir_in
from pipeline.errors import ImageLoadError, ModelLoadError
from pipeline.inference.idc import (
    MAX_TILE_SIDE,
    TILE_TTA_MAX_CELLS,
    IdcPredictor,
    cut_cells,
    tile_grid,
    tissue_cells,
)
from pipeline.paths import MODELS_DIR


@pytest.fixture(scope="module")
def keras_predictor() -> IdcPredictor:
    return IdcPredictor(model=known_answer_model(), config=IdcConfig())


@pytest.fixture(scope="module")
def tflite_predictor(known_idc_models) -> IdcPredictor:
    return IdcPredictor(known_idc_models, runtime="tflite")


def _cells_expected(tile: np.ndarray) -> np.ndarray:
    grid = tile_grid(*tile.shape[:2])
    cells = cut_cells(tile, grid)
    return np.array([expected_probability(c) for c in cells]).reshape(grid.rows, grid.cols)


# --- the grid ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("h, w, rows, cols, bottom, right", [
    (50, 50, 1, 1, 0, 0), (1000, 1000, 20, 20, 0, 0), (120, 75, 3, 2, 30, 25), (51, 99, 2, 2, 49, 1),
])
def test_grid_counts_cells_and_reflected_pixels(h, w, rows, cols, bottom, right):
    g = tile_grid(h, w)
    assert (g.rows, g.cols, g.padding) == (rows, cols, (bottom, right))
    assert g.to_dict()["cells"] == rows * cols and g.to_dict()["tile_px"] == [w, h]


@pytest.mark.parametrize("h, w, words", [(49, 200, "at least 50 px"), (200, 32, "at least 50 px"),
                                         (MAX_TILE_SIDE + 1, 60, "largest tile"), (60, 9000, "largest tile")])
def test_grid_refuses_tiles_too_small_or_too_large(h, w, words):
    with pytest.raises(ImageLoadError, match=words):
        tile_grid(h, w)


def test_cells_are_the_tile_cut_row_by_row_and_edges_are_mirrored():
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (120, 75, 3), dtype=np.uint8)
    grid = tile_grid(120, 75)
    cells = cut_cells(tile, grid)
    assert cells.shape == (6, 50, 50, 3) and cells.dtype == np.uint8
    np.testing.assert_array_equal(cells[0], tile[:50, :50])
    np.testing.assert_array_equal(cells[3][:, :25], tile[50:100, 50:75])  # row 1, col 1: 25 real columns
    np.testing.assert_array_equal(cells[2], tile[50:100, :50])  # row 1, col 0
    edge = cells[5]  # row 2, col 1: 20 real rows x 25 real columns
    np.testing.assert_array_equal(edge[:20, :25], tile[100:120, 50:75])
    np.testing.assert_array_equal(edge[20:40, :25], tile[100:120, 50:75][::-1])  # mirrored downwards
    np.testing.assert_array_equal(edge[:20, 25:50], tile[100:120, 50:75][:, ::-1])  # mirrored rightwards


def test_glass_cells_are_background():
    rng = np.random.default_rng(1)
    cells = np.stack([np.full((50, 50, 3), 240, np.uint8), he_like(rng, (50, 50), 200, 120)])
    almost_white = np.full((50, 50, 3), 245, np.uint8)
    almost_white[:10, :10] = (150, 60, 160)  # 4% stained: tissue
    assert tissue_cells(np.concatenate([cells, almost_white[None]])).tolist() == [False, True, True]


# --- probabilities per cell, Keras and TensorFlow Lite -------------------------------------------------------
def test_every_cell_gets_its_own_probability(keras_predictor):
    rng = np.random.default_rng(2)
    tile = np.concatenate([np.concatenate([he_like(rng, (50, 50), 120 + 40 * (r * 3 + c), 130) for c in range(3)],
                                          axis=1) for r in range(2)])
    result = keras_predictor.tile(tile)
    np.testing.assert_allclose(result.probabilities, _cells_expected(tile), atol=1e-5)
    assert result.probabilities[1, 2] > result.probabilities[0, 0]  # redder cells, higher IDC probability
    heat = result.heatmap()
    assert heat.shape == tile.shape[:2]
    assert heat[75, 140] == pytest.approx(result.probabilities[1, 2])


def test_tflite_runtime_matches_keras(known_idc_models, keras_predictor, tflite_predictor):
    assert tflite_predictor.runtime == "tflite"
    rng = np.random.default_rng(3)
    for n in (1, 7, 33, 70):  # chunks of 8, the last one padded
        x = rng.integers(0, 256, (n, 50, 50, 3), dtype=np.uint8)
        np.testing.assert_allclose(tflite_predictor.probabilities(x), keras_predictor.probabilities(x), atol=1e-5)


def test_background_cells_are_not_scored_nor_counted(tflite_predictor):
    rng = np.random.default_rng(4)
    tile = np.full((100, 150, 3), 242, np.uint8)  # glass
    tile[:50, :50] = he_like(rng, (50, 50), 230, 60)  # strongly red: IDC
    tile[50:, 100:] = he_like(rng, (50, 50), 100, 130)  # green above red: non-IDC
    r = tflite_predictor.tile(tile)
    assert r.n_tissue == 2 and r.n_idc == 1 and r.share_idc == 0.5 and r.label == "IDC"
    assert np.isnan(r.probabilities[0, 1]) and np.isnan(r.probabilities[1, 0])
    rec = r.to_record()
    assert rec["cell_probabilities"][0][1] is None and rec["idc_cells"] == 1 and rec["tissue_cells"] == 2
    assert rec["idc_probability"] == pytest.approx(r.max_probability, abs=1e-6)


def test_single_patch_is_the_one_cell_tile(tflite_predictor):
    patch = he_like(np.random.default_rng(5), (50, 50), 140, 150)
    r = tflite_predictor.tile(patch)
    assert r.grid.rows == r.grid.cols == 1
    assert r.probabilities[0, 0] == pytest.approx(expected_probability(patch), abs=1e-5)
    assert r.label == "non-IDC" and r.to_record()["idc_probability_is"] == "the patch's"


def test_tta_for_small_tiles_only():
    model = known_answer_model()
    p = IdcPredictor(model=model, config=IdcConfig(tta=True))
    rng = np.random.default_rng(6)
    assert p.tile(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)).views == 8  # 16 cells
    big = p.tile(rng.integers(0, 256, (250, 200, 3), dtype=np.uint8))
    assert big.grid.rows * big.grid.cols > TILE_TTA_MAX_CELLS and big.views == 1
    assert p.tile(rng.integers(0, 256, (250, 200, 3), dtype=np.uint8), tta=True).views == 8


def test_tile_refuses_non_rgb_arrays(keras_predictor):
    with pytest.raises(ImageLoadError, match="RGB uint8"):
        keras_predictor.tile(np.zeros((60, 60), np.uint8))
    with pytest.raises(ImageLoadError, match="RGB uint8"):
        keras_predictor.tile(np.zeros((60, 60, 3), np.float32))


def test_missing_model_says_how_to_restore(tmp_path):
    with pytest.raises(ModelLoadError, match="git checkout -- models/idc/"):
        IdcPredictor(tmp_path)


# --- the trained model (models/idc/) on the real pack --------------------------------------------------------
@pytest.fixture(scope="module")
def trained() -> IdcPredictor:
    if not (idc_dir_in(MODELS_DIR) / IDC_MODEL_FILE).is_file():
        pytest.skip("the trained IDC model models/idc/idc_classifier.keras is not in this checkout yet")
    return IdcPredictor(MODELS_DIR)


def test_trained_model_tile_of_test_patches_matches_patch_answers(trained, idc_test_pack):
    """A 2x3 mosaic of real test patches: each cell's probability is that patch's own (one view)."""
    patches = idc_test_pack.images[:6]
    tile = np.concatenate([np.concatenate(list(patches[r * 3:(r + 1) * 3]), axis=1) for r in range(2)])
    result = trained.tile(tile, tta=False)
    np.testing.assert_allclose(result.probabilities.ravel(), trained.probabilities(patches, tta=False), atol=1e-5)


def test_trained_model_separates_idc_from_non_idc_test_patches(trained, idc_test_pack):
    from sklearn.metrics import roc_auc_score

    probs = trained.probabilities(idc_test_pack.images)
    assert roc_auc_score(idc_test_pack.labels, probs) > 0.8
