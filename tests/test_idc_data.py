"""The IDC pack reader: the real pack through IDC_DIR, and damaged packs made here."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data.idc import PATCH_SIZE, load_idc
from pipeline.errors import DatasetError


@pytest.fixture(scope="module")
def pack(idc_dir):
    return load_idc(idc_dir)


def test_real_pack_counts_and_patient_split(pack):
    assert pack.images.shape == (3674, PATCH_SIZE, PATCH_SIZE, 3) and pack.images.dtype == np.uint8
    assert int(pack.labels.sum()) == 1081
    summary = pack.summary()
    assert {k: v["patients"] for k, v in summary.items()} == {"train": 187, "val": 43, "test": 49}
    assert {k: v["patches"] for k, v in summary.items()} == {"train": 2431, "val": 586, "test": 657}
    sets = [set(pack.subset(s).patients.tolist()) for s in ("train", "val", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


def test_subset_rejects_unknown_name(pack):
    with pytest.raises(ValueError, match="unknown subset"):
        pack.subset("holdout")


def _webp(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="WEBP", lossless=True)
    return buf.getvalue()


def write_pack(folder: Path, patches: list[bytes], patients=None, split=None, drop: str | None = None) -> Path:
    """A small pack in the real layout (optionally without one array)."""
    n = len(patches)
    offsets = np.cumsum([0] + [len(b) for b in patches]).astype(np.int64)
    arrays = {"webp": np.frombuffer(b"".join(patches), np.uint8), "offsets": offsets,
              "label": np.arange(n, dtype=np.uint8) % 2,
              "patient": np.asarray(patients if patients is not None else range(n), np.int32),
              "x": np.zeros(n, np.int32), "y": np.zeros(n, np.int32),
              "split": np.asarray(split if split is not None else [0] * n, np.uint8),
              "split_names": np.array(["train", "val", "test"])}
    if drop:
        arrays.pop(drop)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "idc_pack.npz", **arrays)
    return folder


def test_generated_pack_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrs = [rng.integers(0, 256, (50, 50, 3), dtype=np.uint8) for _ in range(4)]
    pack = load_idc(write_pack(tmp_path, [_webp(a) for a in arrs], split=[0, 1, 2, 2]))
    assert np.array_equal(pack.images[2], arrs[2])
    assert pack.summary()["test"]["patches"] == 2


def test_missing_pack_names_the_variable(tmp_path):
    with pytest.raises(DatasetError, match="IDC_DIR"):
        load_idc(tmp_path)


def test_pack_missing_an_array(tmp_path):
    patch = _webp(np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(DatasetError, match="missing label"):
        load_idc(write_pack(tmp_path, [patch], drop="label"))


def test_corrupt_file_and_bad_patch(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "idc_pack.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="cannot be read"):
        load_idc(tmp_path / "a")
    good = _webp(np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(DatasetError, match="patch 1 cannot be decoded"):
        load_idc(write_pack(tmp_path / "b", [good, b"garbage-bytes"]))
    with pytest.raises(DatasetError, match="expected 50x50"):
        load_idc(write_pack(tmp_path / "c", [good, _webp(np.zeros((20, 50, 3), np.uint8))]))


def test_patient_in_two_subsets_is_refused(tmp_path):
    patch = _webp(np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(DatasetError, match="patient 7 is in both"):
        load_idc(write_pack(tmp_path, [patch, patch], patients=[7, 7], split=[0, 2]))
