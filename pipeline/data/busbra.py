"""Reading BUS-BRA (Gómez-Flores et al., Medical Physics 2024) in its released layout.

Layout: ``Images/bus_NNNN-{l,r,s}.png``, ``Masks/mask_NNNN-{l,r,s}.png`` (one lesion mask per image, never
empty), ``bus_data.csv`` (ID, Case = patient, Histology, Pathology, BIRADS, Device, ...) and the authors'
patient-level folds ``5-fold-cv.csv`` (column ``kFold``). BUS-BRA has no normal class.

Subsets follow the authors' 5 folds, so a patient never spans two subsets: folds 1-3 train, fold 4
validation, fold 5 the held-out test set (another country and other scanners than BUSI).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import DatasetError

FOLD_SUBSETS = {1: "train", 2: "train", 3: "train", 4: "val", 5: "test"}
HELD_OUT_FOLD = 5
IMAGE_PREFIX = "bus_"  # every BUS-BRA image id (bus_NNNN-{l,r,s}); BUSI ids are "<class>/<class> (N).png"
INDEX_COLUMNS = ["image", "case", "label", "histology", "birads", "device", "width", "height", "side",
                 "fold", "subset", "path", "mask_path"]


def is_busbra_image(image: str) -> bool:
    """Whether an image id (an ``Item.image``, also one derived from it, such as ``"bus_0001-l#lesion-erased"``)
    is BUS-BRA's."""
    return image.startswith(IMAGE_PREFIX)


def read_index(root: str | Path) -> pd.DataFrame:
    """One row per BUS-BRA image with its patient, label, scanner, BI-RADS, fold and subset."""
    root = Path(root)
    meta_file, folds_file = root / "bus_data.csv", root / "5-fold-cv.csv"
    for f in (meta_file, folds_file):
        if not f.is_file():
            raise DatasetError(f"BUS-BRA file missing: {f} (expected the authors' release layout; set BUSBRA_DIR)")
    try:
        meta = pd.read_csv(meta_file)
        folds = pd.read_csv(folds_file)[["ID", "kFold"]]
        df = meta.merge(folds, on="ID", how="left", validate="one_to_one")
        df[["Case", "Pathology", "Histology", "BIRADS", "Device", "Width", "Height", "Side"]]
    except (KeyError, ValueError, pd.errors.ParserError) as exc:  # missing columns, duplicate IDs, broken CSV
        raise DatasetError(f"BUS-BRA tables in {root} do not have the release's columns and unique IDs: {exc}") from exc
    if df["kFold"].isna().any():
        missing = ", ".join(df.loc[df["kFold"].isna(), "ID"].head(5))
        raise DatasetError(f"BUS-BRA images without a fold in 5-fold-cv.csv: {missing}")
    out = pd.DataFrame({
        "image": df["ID"], "case": df["Case"].astype(int), "label": df["Pathology"].str.strip().str.lower(),
        "histology": df["Histology"], "birads": df["BIRADS"].astype(int), "device": df["Device"],
        "width": df["Width"].astype(int), "height": df["Height"].astype(int), "side": df["Side"],
        "fold": df["kFold"].astype(int),
    })
    out["subset"] = out["fold"].map(FOLD_SUBSETS)
    out["path"] = [str(root / "Images" / f"{i}.png") for i in out["image"]]
    out["mask_path"] = [str(root / "Masks" / f"{i.replace(IMAGE_PREFIX, 'mask_', 1)}.png") for i in out["image"]]
    bad = sorted(set(out["label"]) - {"benign", "malignant"})
    if bad:
        raise DatasetError(f"BUS-BRA labels other than benign/malignant: {bad}")
    first = Path(out["path"].iloc[0])
    if not first.is_file():
        raise DatasetError(f"BUS-BRA image files not found (e.g. {first}): is {root} the release folder?")
    return out[INDEX_COLUMNS]


def scanner(device: str) -> str:
    """Scanner name without the probe frequency ("GE Logiq 7 @10-14MHz" -> "GE Logiq 7")."""
    return str(device).split("@")[0].strip()


def load_sample(row: pd.Series | dict) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale uint8 image and 0/1 uint8 mask of one index row (read by the project's one loader)."""
    from pipeline.data.busi import read_gray, read_mask

    gray = read_gray(row["path"])
    mask = read_mask([row["mask_path"]], gray.shape)
    return gray, mask


