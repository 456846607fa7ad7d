"""BUS-BRA in its release layout: patient-level subsets, counts, loader, and the cross-dataset duplicate check."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.data import busbra, catalog, duplicates
from pipeline.errors import DatasetError


def test_index_counts_and_patient_level_subsets(busbra_dir):
    ix = busbra.read_index(busbra_dir)
    assert len(ix) == 1875 and ix["case"].nunique() == 1064
    assert ix["label"].value_counts().to_dict() == {"benign": 1268, "malignant": 607}
    assert (ix.groupby("case")["subset"].nunique() == 1).all()  # a patient never spans two subsets
    assert set(ix.loc[ix["fold"] == busbra.HELD_OUT_FOLD, "subset"]) == {"test"}
    facts = catalog.busbra_summary(ix)
    assert facts["per_scanner"] == {"GE Logiq 7": 902, "GE Logiq 5": 809, "Toshiba Aplio 300": 139, "U-Systems": 25}
    assert facts["patients_in_several_subsets"] == 0
    assert facts["per_subset"]["test"]["images"] == 383


def test_samples_load_as_gray_and_binary_nonempty_mask(busbra_dir):
    ix = busbra.read_index(busbra_dir)
    for _, row in ix.sample(5, random_state=0).iterrows():
        gray, mask = busbra.load_sample(row)
        assert gray.dtype == np.uint8 and gray.ndim == 2
        assert mask.shape == gray.shape and set(np.unique(mask)) == {0, 1}
        assert (gray.shape[1], gray.shape[0]) == (row["width"], row["height"])


def test_wrong_layout_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="bus_data.csv"):
        busbra.read_index(tmp_path)
    pd.DataFrame({"ID": ["bus_0001-l"], "Case": [1], "Histology": ["x"], "Pathology": ["benign"], "BIRADS": [3],
                  "Device": ["GE"], "Width": [10], "Height": [10], "Side": ["left"]}).to_csv(tmp_path / "bus_data.csv")
    pd.DataFrame({"ID": ["bus_0001-l"], "kFold": [1]}).to_csv(tmp_path / "5-fold-cv.csv")
    with pytest.raises(DatasetError, match="image files not found"):
        busbra.read_index(tmp_path)


def test_cross_matches_finds_a_copy_and_nothing_else(tmp_path):
    from conftest import write_png

    rng = np.random.default_rng(0)
    a = [write_png(tmp_path / f"a{i}.png", rng.integers(0, 255, (64, 80), dtype=np.uint8)) for i in range(3)]
    b = [write_png(tmp_path / f"b{i}.png", rng.integers(0, 255, (64, 80), dtype=np.uint8)) for i in range(3)]
    copy = write_png(tmp_path / "copy.png", np.clip(cv2.imread(str(a[1]), cv2.IMREAD_GRAYSCALE), 0, 250))
    pairs = duplicates.cross_matches([str(p) for p in a], [str(p) for p in [*b, copy]])
    assert list(pairs["b"]) == [str(copy)] and list(pairs["a"]) == [str(a[1])]
    assert pairs.attrs["max_correlation"] > 0.99
