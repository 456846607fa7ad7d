"""``experiment caliper-marks``: thin bright marks found and filled in on hand cases, and a small real run on the
committed models (full tier)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.experiments.caliper_marks import remove_marks, thin_marks


def _tissue(h: int = 80, w: int = 100) -> np.ndarray:
    """Smooth mid-gray tissue with gentle texture (nothing a top-hat calls a mark)."""
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(60, 120, (h, w)).astype(np.uint8), (7, 7), 0)


def test_a_caliper_cross_and_a_dotted_line_are_found_and_filled_in():
    g = _tissue()
    marked = g.copy()
    cv2.line(marked, (20, 40), (30, 40), 255, 1)
    cv2.line(marked, (25, 35), (25, 45), 255, 1)
    for x in range(35, 90, 4):
        marked[40, x] = 250
    found = thin_marks(marked)
    assert found[40, 25] and found[40, 39] and not found[10, 80]
    out = remove_marks(marked)
    assert out.shape == g.shape and out.dtype == np.uint8
    assert int(out[35:46, 20:90].max()) < 160  # nothing bright left where the marks were
    assert np.abs(out.astype(int) - g.astype(int))[found].mean() < 25  # filled with what lies around them
    assert np.array_equal(out[~found], marked[~found])  # the rest untouched


def test_a_frame_without_marks_is_returned_as_it_is():
    g = _tissue()
    assert remove_marks(g) is g


@pytest.mark.full
def test_small_real_run_on_the_committed_models(busi_dir, busbra_dir):
    from pipeline import paths
    from pipeline.experiments.caliper_marks import compare

    models = paths.models_dir()
    if not (models / "unet.keras").is_file():
        pytest.skip("committed models absent")
    out = compare(models, busi_dir, busbra_dir, limit=6)
    assert out["images"] == {"BUSI val": 6, "BUS-BRA fold 4": 6}
    busi = out["scores"]["BUSI val"]
    assert set(busi) == {"clean", "calipers_text:mild", "calipers_text:strong"}
    strong = busi["calipers_text:strong"]
    assert strong["marks removed"]["marked_pixels"] < strong["as they are"]["marked_pixels"]
    assert 0 <= strong["as they are"]["refined"]["normal_recall"] <= 1
