"""Files of predicted masks for the refined classifier's training crops (written by ``train oof-masks``).

Read by ``train cls --input refined --crop-masks FILE``: its own module so that training does not import the
out-of-fold run that trains with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.data.items import Item
from pipeline.errors import DatasetError


def save_masks(path: str | Path, masks: dict[str, np.ndarray]) -> Path:
    """Write {image id: 0/1 mask} compactly (bits packed) to an ``.npz``."""
    ids = sorted(masks)
    shapes = np.array([masks[i].shape for i in ids], dtype=np.int32).reshape(-1, 2)
    packed = [np.packbits(masks[i].astype(bool).ravel()) for i in ids]
    offsets = np.cumsum([0] + [len(b) for b in packed]).astype(np.int64)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, ids=np.array(ids, dtype=str), shapes=shapes, offsets=offsets,
                        bits=np.concatenate(packed) if packed else np.zeros(0, np.uint8))
    return path


def load_masks(path: str | Path) -> dict[str, np.ndarray]:
    """Read a file written by ``save_masks``: {image id: uint8 0/1 mask}."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"out-of-fold masks not found: {path} (python -m pipeline train oof-masks)")
    with np.load(path, allow_pickle=False) as f:
        ids, shapes, offsets, bits = f["ids"], f["shapes"], f["offsets"], f["bits"]
    out = {}
    for i, (h, w) in enumerate(shapes):
        flat = np.unpackbits(bits[offsets[i]:offsets[i + 1]], count=int(h) * int(w))
        out[str(ids[i])] = flat.reshape(int(h), int(w))
    return out


def attach_crop_masks(items: list[Item], path: str | Path) -> None:
    """Set ``crop_mask`` of every item from the file; every item must have one of the image's own size."""
    masks = load_masks(path)
    missing = [it.image for it in items if it.image not in masks]
    if missing:
        raise DatasetError(f"{len(missing)} training images have no out-of-fold mask in {path} "
                           f"(e.g. {missing[0]}): make them again with python -m pipeline train oof-masks")
    for it in items:
        mask = masks[it.image]
        if mask.shape != it.mask.shape:
            raise DatasetError(f"out-of-fold mask of {it.image} is {mask.shape}, the image {it.mask.shape}")
        it.crop_mask = mask
    print(f"training crops follow {len(items)} out-of-fold predicted masks from {Path(path).name}", flush=True)
