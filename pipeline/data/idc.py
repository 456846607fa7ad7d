"""The IDC histopathology patch pack (``IDC_DIR``): 50x50 H&E patches, patient-level train/val/test split.

The pack (``idc_pack.npz``, see its README) stores each patch as lossless WebP bytes with its label
(1 = invasive ductal carcinoma), patient folder id, position in the slide and split. The split is used as
given: test = the 49 test patients of Cruz-Roa et al. 2014, so results sit beside the published ones, and
no patient crosses subsets (checked on load).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.errors import DatasetError

PATCH_SIZE = 50
IDC_CLASSES: tuple[str, ...] = ("non-IDC", "IDC")
SUBSETS: tuple[str, ...] = ("train", "val", "test")
_KEYS = ("webp", "offsets", "label", "patient", "x", "y", "split", "split_names")


@dataclass(frozen=True)
class IdcPack:
    """Decoded patches and their labels, one row per patch."""

    images: np.ndarray  # (N, 50, 50, 3) uint8 RGB
    labels: np.ndarray  # (N,) uint8, 1 = IDC
    patients: np.ndarray  # (N,) int32 patient folder id
    xs: np.ndarray  # (N,) int32 patch origin in the slide
    ys: np.ndarray
    subsets: np.ndarray  # (N,) str: train / val / test

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, name: str) -> IdcPack:
        """The patches of one subset (``train``, ``val`` or ``test``)."""
        if name not in SUBSETS:
            raise ValueError(f"unknown subset {name!r}; choose one of {', '.join(SUBSETS)}")
        m = self.subsets == name
        return IdcPack(self.images[m], self.labels[m], self.patients[m], self.xs[m], self.ys[m], self.subsets[m])

    def summary(self) -> dict:
        """Patches, IDC patches and patients per subset."""
        out = {}
        for name in SUBSETS:
            m = self.subsets == name
            out[name] = {"patches": int(m.sum()), "idc": int(self.labels[m].sum()),
                         "patients": int(len(np.unique(self.patients[m])))}
        return out


def pack_path(root: str | os.PathLike | None = None) -> Path:
    """Path of ``idc_pack.npz`` in the resolved IDC folder."""
    return paths.idc_dir(root) / paths.IDC_PACK_FILE


def load_idc(root: str | os.PathLike | None = None) -> IdcPack:
    """Read and decode the pack; a missing or damaged pack is a ``DatasetError`` saying what is wrong."""
    from PIL import Image

    path = pack_path(root)
    if not path.is_file():
        raise DatasetError(f"IDC pack not found at {path}: set IDC_DIR to the folder holding {paths.IDC_PACK_FILE}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _KEYS if k not in z.files]
            if missing:
                raise DatasetError(f"{path.name} is not an IDC pack: missing {', '.join(missing)}")
            arrays = {k: z[k] for k in _KEYS}
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip/npy corruption comes in many types
        raise DatasetError(f"{path.name} cannot be read ({type(exc).__name__}: {exc})") from exc
    buf, off = arrays["webp"], arrays["offsets"]
    n = len(off) - 1
    if n <= 0 or any(len(arrays[k]) != n for k in ("label", "patient", "x", "y", "split")) or off[-1] != len(buf):
        raise DatasetError(f"{path.name} is damaged: its arrays disagree on the number of patches")
    images = np.empty((n, PATCH_SIZE, PATCH_SIZE, 3), np.uint8)
    for i in range(n):
        try:
            patch = np.asarray(Image.open(io.BytesIO(buf[off[i]:off[i + 1]].tobytes())).convert("RGB"))
        except Exception as exc:  # noqa: BLE001 - PIL raises several types for bad bytes
            raise DatasetError(f"{path.name}: patch {i} cannot be decoded ({exc})") from exc
        if patch.shape != (PATCH_SIZE, PATCH_SIZE, 3):
            raise DatasetError(f"{path.name}: patch {i} is {patch.shape[1]}x{patch.shape[0]}, expected 50x50")
        images[i] = patch
    subsets = np.asarray(arrays["split_names"]).astype(str)[arrays["split"]]
    pack = IdcPack(images, arrays["label"].astype(np.uint8), arrays["patient"].astype(np.int32),
                   arrays["x"].astype(np.int32), arrays["y"].astype(np.int32), subsets)
    _check_patient_split(pack)
    return pack


def _check_patient_split(pack: IdcPack) -> None:
    seen: dict[int, str] = {}
    for p, s in zip(pack.patients.tolist(), pack.subsets.tolist()):
        if seen.setdefault(p, s) != s:
            raise DatasetError(f"IDC pack: patient {p} is in both {seen[p]} and {s}: the split must be by patient")
