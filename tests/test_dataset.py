"""Data layer on the real BUSI dataset and on small generated datasets with defects."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_png

from pipeline.data import catalog, split
from pipeline.data.busi import build_index, list_samples, load_sample
from pipeline.errors import DatasetError
from pipeline.paths import SPLIT_CSV


@pytest.fixture(scope="module")
def real_index(request):
    root = request.getfixturevalue("busi_dir")
    return catalog.grouped_index(root)


def test_real_counts(real_index):
    assert len(real_index) == 780
    assert real_index["n_mask_files"].sum() == 798
    assert real_index["label"].value_counts().to_dict() == {"benign": 437, "malignant": 210, "normal": 133}
    assert (real_index["n_mask_files"] > 1).sum() == 17
    normal = real_index[real_index["label"] == "normal"]
    assert (normal["lesion_fraction"] == 0).all()


def test_real_multi_mask_merge(busi_dir):
    # benign (195) has three mask files; the merge is their pixel-wise OR.
    from pipeline.data.busi import read_mask

    files = sorted((busi_dir / "benign").glob("benign (195)_mask*.png"))
    assert len(files) == 3
    _, merged = load_sample(busi_dir, "benign/benign (195).png")
    singles = [read_mask([f]) for f in files]
    assert np.array_equal(merged, np.maximum.reduce(singles))
    assert merged.sum() > max(s.sum() for s in singles)


def test_duplicate_groups_found(real_index):
    facts = catalog.summary(real_index)
    assert 80 <= facts["duplicate_groups"] <= 250
    assert facts["cross_label_groups"] >= 1


def test_committed_split_is_reproducible(real_index, tmp_path):
    regenerated = split.write_split(split.make_split(real_index), tmp_path / "busi.csv")
    assert regenerated.read_bytes() == SPLIT_CSV.read_bytes()


def test_committed_split_properties(real_index):
    df = split.read_split(SPLIT_CSV)
    assert list(df.columns) == split.SPLIT_COLUMNS
    assert len(df) == 780 and df["image"].is_unique
    assert set(df["image"]) == set(real_index["image"])
    props = split.proportions(df)
    for subset, target in split.FRACTIONS.items():
        assert (abs(props[subset] - target) <= 0.02).all(), props
    assert (df.groupby("group")["subset"].nunique() == 1).all(), "a duplicate group spans subsets"
    conflicts = real_index[real_index["group_labels"].str.contains(r"\+")]
    assert set(df.set_index("image").loc[conflicts["image"], "subset"]) == {"train"}


def test_split_is_deterministic_and_seed_dependent(real_index):
    a, b = split.make_split(real_index), split.make_split(real_index)
    assert a.equals(b)
    assert not a.equals(split.make_split(real_index, seed=7))


def test_tiny_dataset_index(tiny_dataset):
    index = build_index(tiny_dataset)
    assert len(index) == 6
    row = index[index["image"] == "benign/benign (1).png"].iloc[0]
    assert row["n_mask_files"] == 2 and row["n_lesions"] == 2


def test_missing_mask_is_named(tiny_dataset):
    (tiny_dataset / "malignant" / "malignant (2)_mask.png").unlink()
    with pytest.raises(DatasetError, match=r"image without a mask file: .*malignant \(2\)\.png"):
        list_samples(tiny_dataset)


def test_size_mismatch_is_named(tiny_dataset):
    write_png(tiny_dataset / "benign" / "benign (2)_mask.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(DatasetError, match=r"mask size 10x10 differs .*benign \(2\)_mask\.png"):
        build_index(tiny_dataset)


def test_corrupt_png_is_named(tiny_dataset):
    (tiny_dataset / "normal" / "normal (1).png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DatasetError, match=r"unreadable image file: .*normal \(1\)\.png"):
        build_index(tiny_dataset)


def test_empty_folders(tmp_path):
    for cls in ("benign", "malignant", "normal"):
        (tmp_path / cls).mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        list_samples(tmp_path)


def test_wrong_layout(tmp_path):
    (tmp_path / "benign").mkdir()
    with pytest.raises(DatasetError, match="missing class folder.*malignant, normal"):
        list_samples(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="make data"):
        list_samples(tmp_path / "nowhere")


def test_stray_file_is_named(tiny_dataset):
    (tiny_dataset / "benign" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"unexpected file name.*notes\.txt"):
        list_samples(tiny_dataset)
