"""Reading BUSI in its Kaggle layout: files, masks, and a one-row-per-image index.

Layout: ``<root>/{benign,malignant,normal}/<class> (N).png`` with masks ``<class> (N)_mask.png``
and, for multi-lesion cases, ``_mask_1.png``, ``_mask_2.png`` (merged with a pixel-wise OR).
Every problem (missing mask, size mismatch, unreadable file, stray file) is reported by file name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline.config import CLASS_NAMES as CLASSES
from pipeline.errors import DatasetError

_IMAGE_RE = re.compile(r"^(?P<cls>benign|malignant|normal) \((?P<num>\d+)\)\.png$")
_MASK_RE = re.compile(r"^(?P<cls>benign|malignant|normal) \((?P<num>\d+)\)_mask(?:_(?P<k>\d+))?\.png$")

INDEX_COLUMNS = [
    "image", "label", "number", "path", "mask_paths", "n_mask_files", "height", "width",
    "channels", "lesion_fraction", "n_lesions",
]


@dataclass(frozen=True)
class Sample:
    """One image of the dataset with its mask files (absolute paths)."""

    image: str  # path relative to the dataset root, e.g. "benign/benign (1).png"
    label: str
    number: int
    path: Path
    mask_paths: tuple[Path, ...]


def _read(path: Path, flags: int) -> np.ndarray:
    """Read an image file with OpenCV, raising DatasetError naming the file if it cannot be decoded."""
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, flags) if data.size else None
    if img is None:
        raise DatasetError(f"unreadable image file: {path}")
    return img


def read_gray(path: str | Path) -> np.ndarray:
    """Read a dataset image as uint8 grayscale through the project's one image loader
    (``pipeline.imageio.load_image``), so training sees what prediction sees."""
    from pipeline.errors import ImageLoadError
    from pipeline.imageio import load_image

    try:
        return np.ascontiguousarray(load_image(Path(path)).pixels)
    except (ImageLoadError, OSError) as exc:
        raise DatasetError(f"unreadable image file: {path} ({exc})") from exc


def read_mask(mask_paths: Iterable[str | Path], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Merge mask files with a pixel-wise OR into one uint8 mask of 0/1.

    ``shape`` (height, width) is the image size; a mask of another size is an error naming the file.
    No mask files and a known shape gives an empty mask.
    """
    merged: np.ndarray | None = None
    for p in mask_paths:
        m = _read(Path(p), cv2.IMREAD_GRAYSCALE)
        if shape is not None and m.shape != tuple(shape):
            raise DatasetError(
                f"mask size {m.shape[1]}x{m.shape[0]} differs from its image {shape[1]}x{shape[0]}: {p}"
            )
        m = (m > 127).astype(np.uint8)
        merged = m if merged is None else np.maximum(merged, m)
    if merged is None:
        if shape is None:
            raise DatasetError("no mask files and no image shape given")
        merged = np.zeros(shape, np.uint8)
    return merged


def list_samples(root: str | Path) -> list[Sample]:
    """List images and their mask files; raise DatasetError listing every layout problem by name."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"dataset folder not found: {root}. Run `make data`, or set BUSI_DIR to the folder "
            "that holds benign/, malignant/ and normal/."
        )
    missing = [c for c in CLASSES if not (root / c).is_dir()]
    if missing:
        raise DatasetError(
            f"wrong dataset layout in {root}: missing class folder(s) {', '.join(missing)}; expected "
            "the Kaggle layout Dataset_BUSI_with_GT/{benign,malignant,normal}/"
        )
    problems: list[str] = []
    samples: list[Sample] = []
    for cls in CLASSES:
        images: dict[int, Path] = {}
        masks: dict[int, list[tuple[int, Path]]] = {}
        for f in sorted((root / cls).iterdir()):
            if f.name.startswith(".") or f.is_dir():
                continue
            m_img, m_mask = _IMAGE_RE.match(f.name), _MASK_RE.match(f.name)
            if m_img and m_img["cls"] == cls:
                images[int(m_img["num"])] = f
            elif m_mask and m_mask["cls"] == cls:
                k = int(m_mask["k"]) if m_mask["k"] else 0
                masks.setdefault(int(m_mask["num"]), []).append((k, f))
            else:
                problems.append(f"unexpected file name (not '<class> (N).png' or '_mask'): {f}")
        for num in sorted(set(masks) - set(images)):
            problems.append(f"mask without an image: {masks[num][0][1]}")
        for num in sorted(images):
            if num not in masks:
                problems.append(f"image without a mask file: {images[num]}")
                continue
            mask_paths = tuple(p for _, p in sorted(masks[num]))
            rel = f"{cls}/{images[num].name}"
            samples.append(Sample(rel, cls, num, images[num], mask_paths))
    if problems:
        raise DatasetError(_problem_report(root, problems))
    if not samples:
        raise DatasetError(f"no images found in {root} (the class folders are empty)")
    return samples


def _problem_report(root: Path, problems: list[str]) -> str:
    head = "\n  ".join(problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    return f"{len(problems)} problem(s) in dataset {root}:\n  {head}{more}"


def build_index(
    root: str | Path, progress: Callable[[int, int], None] | None = None
) -> pd.DataFrame:
    """Read every image and mask once and return the index (one row per image, INDEX_COLUMNS).

    Raises DatasetError listing every unreadable file and every mask/image size mismatch.
    """
    samples = list_samples(root)
    rows, problems = [], []
    for i, s in enumerate(samples):
        try:
            img = _read(s.path, cv2.IMREAD_UNCHANGED)
            h, w = img.shape[:2]
            mask = read_mask(s.mask_paths, (h, w))
        except DatasetError as exc:
            problems.append(str(exc))
            continue
        n_lesions = int(cv2.connectedComponents(mask, connectivity=8)[0] - 1) if mask.any() else 0
        rows.append({
            "image": s.image, "label": s.label, "number": s.number, "path": str(s.path),
            "mask_paths": ";".join(str(p) for p in s.mask_paths), "n_mask_files": len(s.mask_paths),
            "height": h, "width": w, "channels": 1 if img.ndim == 2 else img.shape[2],
            "lesion_fraction": float(mask.mean()), "n_lesions": n_lesions,
        })
        if progress:
            progress(i + 1, len(samples))
    if problems:
        raise DatasetError(_problem_report(Path(root), problems))
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


def load_sample(root: str | Path, image: str) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale image and merged 0/1 mask for one dataset image given by its relative path."""
    root = Path(root)
    path = root / image
    stem = path.name[: -len(".png")]
    mask_paths = sorted(path.parent.glob(f"{glob_escape(stem)}_mask*.png"))
    if not path.is_file():
        raise DatasetError(f"image not found: {path}")
    if not mask_paths:
        raise DatasetError(f"image without a mask file: {path}")
    img = read_gray(path)
    return img, read_mask(mask_paths, img.shape)


def glob_escape(text: str) -> str:
    """Escape glob metacharacters (BUSI names contain brackets-free parentheses, but be safe)."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)
