"""``experiment shift-candidates``: its scores on hand cases, its three validation views on real images, and a small
real run on the committed models (full tier)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import CLASS_NAMES
from pipeline.data.items import load_busbra_items, load_items
from pipeline.experiments.shift_candidates import compare, seg_scores, shift_scores, validation_views

NORMAL = CLASS_NAMES.index("normal")


def _mask(shape, box=None) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    if box:
        y0, y1, x0, x1 = box
        m[y0:y1, x0:x1] = 1
    return m


def test_seg_scores_by_dataset_and_on_lesion_free_images():
    truths = [_mask((10, 10), (0, 4, 0, 4)), _mask((10, 10), (0, 4, 0, 4)), _mask((10, 10)), _mask((10, 10))]
    preds = [_mask((10, 10), (0, 4, 0, 4)), _mask((10, 10), (0, 4, 0, 2)), _mask((10, 10), (5, 6, 5, 6)),
             _mask((10, 10))]
    out = seg_scores(preds, truths, np.array(["BUSI", "BUS-BRA", "BUSI", "BUS-BRA"]))
    assert out["dice_BUSI"] == 1.0 and out["dice_BUS-BRA"] == pytest.approx(2 * 8 / (8 + 16), abs=1e-4)
    assert out["lesion_free_outlined"] == 0.5 and out["lesion_free_images"] == 2


def test_shift_scores_on_all_normal_images_report_recall_not_accuracy():
    probs = np.array([[0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.6, 0.1, 0.3]])
    normal_only = shift_scores(probs, np.full(3, NORMAL))
    assert "accuracy" not in normal_only
    assert normal_only["normal_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert normal_only["normal_to_malignant"] == pytest.approx(1 / 3, abs=1e-4)
    mixed = shift_scores(probs, np.array([NORMAL, 1, 0]))
    assert mixed["accuracy"] == 1.0 and mixed["normal_recall"] == 1.0


def test_validation_views_keep_masks_with_pixels_and_cut_lesion_free_regions(busi_dir, busbra_dir):
    busi, busbra = load_items(busi_dir, "val", limit=3), load_busbra_items(busbra_dir, "val", limit=2)
    views = validation_views(busi, busbra, per_image=2)
    n = len(busi) + len(busbra)
    clean, shifted, regions = views["clean"], views["shifted"], views["lesion-free regions"]
    assert len(clean[0]) == n and len(shifted[0]) == 2 * n
    for grays, y, masks, sources in views.values():
        assert len(grays) == len(y) == len(masks) == len(sources)
        assert all(g.shape == m.shape for g, m in zip(grays, masks))
    assert list(shifted[3]) == [s for s in clean[3] for _ in range(2)]
    assert [bool(m.any()) for m in shifted[2]] == [bool(m.any()) for m in clean[2] for _ in range(2)]
    assert regions[0] and (regions[1] == NORMAL).all() and not any(m.any() for m in regions[2])
    assert set(regions[3]) <= {"BUSI", "BUS-BRA"}
    erased = views["lesion-erased frames"]
    assert (erased[1] == NORMAL).all() and not any(m.any() for m in erased[2])
    assert validation_views(busi, busbra, per_image=2)["lesion-free regions"][0][0].tobytes() == regions[0][0].tobytes()


@pytest.mark.full
def test_small_real_run_on_the_committed_models(busi_dir, busbra_dir):
    from pipeline import paths

    models = paths.models_dir()
    if not (models / "unet.keras").is_file():
        pytest.skip("committed models absent")
    out = compare([models], busi_dir, busbra_dir, per_image=1, limit=3)
    row = out["candidates"][str(models)]
    assert set(row["scores"]) == {"clean", "shifted", "lesion-free regions", "lesion-erased frames"}
    assert set(row["seg_settings_chosen_on_busi_val"]) == {"flip_tta", "threshold", "presence_threshold"}
    clean = row["scores"]["clean"]
    assert 0 <= clean["segmentation"]["dice_BUSI"] <= 1 and 0 <= clean["baseline"]["accuracy"] <= 1
    assert "accuracy" not in row["scores"]["lesion-free regions"]["baseline"]
