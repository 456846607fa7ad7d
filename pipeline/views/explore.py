"""Dataset-explorer logic for the dashboard: a disk-cached index, gallery filters, paging,
thumbnails, duplicate groups and split composition. No streamlit here."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline.data import catalog, duplicates
from pipeline.data.busi import read_gray, read_mask
from pipeline.inference.overlay import overlay
from pipeline.paths import CACHE_DIR, SPLIT_CSV

CACHE_VERSION = 1
# Lesion size classes by the share of the image the ground-truth mask covers.
SIZE_BINS: tuple[tuple[str, float, float], ...] = (
    ("no lesion", 0.0, 0.0),
    ("small (< 2 %)", 0.0, 0.02),
    ("medium (2–8 %)", 0.02, 0.08),
    ("large (≥ 8 %)", 0.08, 1.01),
)
SIZE_LABELS: tuple[str, ...] = tuple(b[0] for b in SIZE_BINS)
DUPLICATE_CHOICES = ("all images", "only images with near-duplicates", "only images without near-duplicates")


def dataset_fingerprint(root: str | os.PathLike) -> str:
    """Key of a dataset folder's contents: resolved path, file count, total size, newest change."""
    root = Path(root).resolve()
    count = size = newest = 0
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in cls.iterdir():
            if f.is_file():
                st = f.stat()
                count += 1
                size += st.st_size
                newest = max(newest, int(st.st_mtime))
    text = f"v{CACHE_VERSION}|{root}|{count}|{size}|{newest}|{duplicates.THRESHOLD}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def cached_grouped_index(root: str | os.PathLike, cache_dir: str | os.PathLike | None = CACHE_DIR) -> pd.DataFrame:
    """``catalog.grouped_index(root)``, stored on disk under ``cache_dir`` (None: no disk cache).

    The cache file is keyed by :func:`dataset_fingerprint`, so a changed dataset is re-indexed.
    A cache folder that cannot be written is not an error (the index is just not kept).
    """
    if cache_dir is None:
        return catalog.grouped_index(root)
    path = Path(cache_dir) / f"index-{dataset_fingerprint(root)}.pkl"
    if path.is_file():
        try:
            return pd.read_pickle(path)
        except Exception:  # noqa: BLE001 - a broken cache file is rebuilt
            pass
    index = catalog.grouped_index(root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        index.to_pickle(tmp)
        tmp.replace(path)
    except OSError:
        pass
    return index


def size_class(fraction: float) -> str:
    """The SIZE_BINS label of a lesion fraction."""
    if fraction <= 0:
        return SIZE_BINS[0][0]
    for label, lo, hi in SIZE_BINS[1:]:
        if lo <= fraction < hi:
            return label
    return SIZE_BINS[-1][0]


def explorer_index(root: str | os.PathLike, split_csv: str | os.PathLike = SPLIT_CSV,
                   cache_dir: str | os.PathLike | None = CACHE_DIR) -> pd.DataFrame:
    """Index with groups, subsets and derived columns (lesion_area_px, size_class, has_duplicates)."""
    df = catalog.with_subsets(cached_grouped_index(root, cache_dir), split_csv)
    df["lesion_area_px"] = (df["lesion_fraction"] * df["height"] * df["width"]).round().astype(int)
    df["size_class"] = df["lesion_fraction"].map(size_class)
    df["has_duplicates"] = df["group_size"] > 1
    df["pixels"] = df["height"] * df["width"]
    return df


def filter_gallery(index: pd.DataFrame, classes=None, subsets=None, duplicates_choice: str = DUPLICATE_CHOICES[0],
                   sizes=None) -> pd.DataFrame:
    """Rows matching every filter (None or empty list = no filter), sorted by class then number."""
    df = index
    if classes:
        df = df[df["label"].isin(classes)]
    if subsets:
        df = df[df["subset"].isin(subsets)]
    if duplicates_choice == DUPLICATE_CHOICES[1]:
        df = df[df["group_size"] > 1]
    elif duplicates_choice == DUPLICATE_CHOICES[2]:
        df = df[df["group_size"] <= 1]
    if sizes:
        df = df[df["size_class"].isin(sizes)]
    return df.sort_values(["label", "number"])


def page_count(n_rows: int, per_page: int = 12) -> int:
    """Number of gallery pages for ``n_rows`` rows (at least 1)."""
    return max(1, math.ceil(n_rows / per_page))


def clamp_page(page, n_pages: int) -> int:
    """``page`` as an int within 1..``n_pages`` (1 for anything that is not a number)."""
    try:
        page = int(page)
    except (TypeError, ValueError):
        page = 1
    return min(max(1, page), max(1, int(n_pages)))


def page_of(df: pd.DataFrame, page: int, per_page: int = 12) -> tuple[pd.DataFrame, int, int]:
    """Rows of 1-based ``page`` (clamped to the valid range), the page used and the number of pages."""
    n_pages = page_count(len(df), per_page)
    page = clamp_page(page, n_pages)
    return df.iloc[(page - 1) * per_page: page * per_page], page, n_pages


def thumbnail(image_path: str | os.PathLike, mask_paths: str | list, width: int = 240,
              height: int | None = 180) -> np.ndarray:
    """RGB thumbnail of a dataset image with its ground-truth mask drawn as a contour, letterboxed (black bars)
    to ``width`` x ``height`` so a gallery grid has even rows (``height=None``: the image's own aspect)."""
    gray = read_gray(image_path)
    paths = mask_paths.split(";") if isinstance(mask_paths, str) else list(mask_paths)
    mask = read_mask([p for p in paths if p], gray.shape)
    scale = width / gray.shape[1] if height is None else min(width / gray.shape[1], height / gray.shape[0])
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    drawn = overlay(small, small_mask, mode="contour", thickness=2)
    if height is None:
        return drawn
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - size[1]) // 2, (width - size[0]) // 2
    out[y:y + size[1], x:x + size[0]] = drawn
    return out


def group_members(index: pd.DataFrame, group) -> pd.DataFrame:
    """The images of one duplicate group, by label then number (for showing them side by side)."""
    return index[index["group"] == group].sort_values(["label", "number"])


def member_caption(row) -> str:
    """``benign (131) · benign · train``: file, label and subset of one image."""
    return f"{row.image.rsplit('/', 1)[-1].removesuffix('.png')} · {row.label} · {row.subset}"


def page_message(typed, n_pages: int) -> str | None:
    """The note shown when a typed page number does not exist (None when it does)."""
    try:
        page = int(typed)
    except (TypeError, ValueError):
        return f"“{typed}” is not a page number: showing page 1 of {n_pages}."
    if 1 <= page <= n_pages:
        return None
    shown = clamp_page(page, n_pages)
    return f"There is no page {page}: the gallery has {n_pages} page{'s' if n_pages > 1 else ''}. Showing page {shown}."


def duplicate_groups(index: pd.DataFrame) -> pd.DataFrame:
    """One row per near-duplicate group (2+ images): members, labels, subsets, conflict flag."""
    groups = index[index["group_size"] > 1]
    if groups.empty:
        return pd.DataFrame(columns=["group", "size", "labels", "subsets", "cross_label", "images"])
    rows = []
    for g, members in groups.groupby("group", sort=True):
        labels = sorted(set(members["label"]))
        rows.append({
            "group": g, "size": len(members), "labels": " + ".join(labels),
            "subsets": " + ".join(sorted(set(members["subset"]))), "cross_label": len(labels) > 1,
            "images": ", ".join(sorted(members["image"].str.rsplit("/", n=1).str[-1])),
        })
    return pd.DataFrame(rows).sort_values(["cross_label", "size", "group"], ascending=[False, False, True])


def groups_split_across_subsets(index: pd.DataFrame) -> int:
    """Number of duplicate groups whose members sit in more than one subset (0 for a leak-free split)."""
    groups = index[index["group_size"] > 1]
    if groups.empty:
        return 0
    return int((groups.groupby("group")["subset"].nunique() > 1).sum())


def split_composition(index: pd.DataFrame) -> pd.DataFrame:
    """Image counts per class (rows) and subset (columns), subsets in train/val/test order."""
    order = [s for s in ("train", "val", "test", "unassigned") if s in set(index["subset"])]
    return pd.crosstab(index["label"], index["subset"]).reindex(columns=order, fill_value=0)


def lesion_area_table(index: pd.DataFrame) -> pd.DataFrame:
    """Median / quartiles of the ground-truth lesion area (px and % of image) per class (lesions only)."""
    lesions = index[index["lesion_fraction"] > 0]
    if lesions.empty:
        return pd.DataFrame()
    g = lesions.groupby("label")
    return pd.DataFrame({
        "images with a lesion": g.size(),
        "median area (px)": g["lesion_area_px"].median().round().astype(int),
        "median share of image": g["lesion_fraction"].median(),
        "largest share": g["lesion_fraction"].max(),
    })
