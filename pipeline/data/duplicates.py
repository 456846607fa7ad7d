"""Near-duplicate detection: images whose 32x32 thumbnails correlate above a threshold.

Each image is shrunk to 32x32 (area averaging), standardised, and compared with every other by
Pearson correlation. Pairs above ``THRESHOLD`` are linked and linked images form a group
(connected components), so a group never needs to be split across train/val/test.

Why 0.92: on BUSI the nearest-neighbour correlation of each image is bimodal. Above ~0.94 sit
re-saved copies and consecutive frames of the same lesion (same patient); below ~0.90 sit
different patients with similar anatomy; few images fall in between (36 of 780 have their
nearest neighbour in 0.90-0.94). Pairs viewed side by side in 0.92-0.96 were the same lesion;
in 0.88-0.92 mostly different lesions. At 0.92 BUSI gives 145 groups holding 332 images, the
largest of 7, with 8 groups whose members carry different labels. At 0.90 chains start merging
unrelated images (a group of 18 appears).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import pandas as pd

from pipeline.data.busi import read_gray

THRESHOLD = 0.92
THUMB = 32


def thumbnail_vector(gray: np.ndarray) -> np.ndarray:
    """Unit-norm, zero-mean 32x32 thumbnail: dot products of two of these are correlations."""
    t = cv2.resize(gray, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    t -= t.mean()
    norm = np.linalg.norm(t)
    return t / norm if norm > 0 else t


def similarity_matrix(paths: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Pairwise thumbnail correlation of the images at ``paths`` (diagonal set to -1)."""
    t = thumbnails(paths, progress)
    sim = t @ t.T
    np.fill_diagonal(sim, -1.0)
    return sim


def group_ids(sim: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Connected components of the graph ``sim > threshold``; ids numbered by first member, from 0."""
    n = sim.shape[0]
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in zip(*np.where(np.triu(sim > threshold, 1))):
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)])
    _, ids = np.unique(roots, return_inverse=True)  # roots are minimal members: order of first member
    return ids


def add_groups(index: pd.DataFrame, sim: np.ndarray, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Add ``group`` (e.g. "g0012"), ``group_size``, ``group_labels`` and ``nearest_similarity`` columns."""
    out = index.copy()
    ids = group_ids(sim, threshold)
    out["group"] = [f"g{i:04d}" for i in ids]
    out["group_size"] = out.groupby("group")["image"].transform("size")
    labels = out.groupby("group")["label"].agg(lambda s: "+".join(sorted(set(s))))
    out["group_labels"] = out["group"].map(labels)
    out["nearest_similarity"] = sim.max(axis=1)
    return out


def conflicts(index: pd.DataFrame) -> pd.DataFrame:
    """Duplicate groups whose members carry different labels: one row per member image."""
    mixed = index[index["group_labels"].str.contains(r"\+", regex=True)]
    return mixed.sort_values(["group", "image"])[["group", "image", "label", "nearest_similarity"]]


def thumbnails(paths: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Stacked ``thumbnail_vector`` of the images at ``paths``."""
    vecs = []
    for i, p in enumerate(paths):
        vecs.append(thumbnail_vector(read_gray(p)))
        if progress:
            progress(i + 1, len(paths))
    return np.stack(vecs)


def cross_matches(paths_a: Sequence[str], paths_b: Sequence[str], threshold: float = THRESHOLD,
                  progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Pairs (one image of each list) whose thumbnails correlate above ``threshold``, best first.

    Used to check that two datasets share no image (a copy would leak between them).
    """
    a = thumbnails(paths_a, progress)
    b = thumbnails(paths_b, progress)
    sim = a @ b.T
    ia, ib = np.nonzero(sim > threshold)
    out = pd.DataFrame({"a": [paths_a[i] for i in ia], "b": [paths_b[j] for j in ib], "correlation": sim[ia, ib]})
    best = sim.max(axis=1) if sim.size else np.zeros(len(paths_a))
    out.attrs["max_correlation"] = float(best.max()) if len(best) else float("nan")
    return out.sort_values("correlation", ascending=False, ignore_index=True)
