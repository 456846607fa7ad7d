"""``python -m pipeline predict PATH [PATH ...] --out DIR``: one JSON line per input on stdout."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import cv2

from pipeline.errors import BusiError
from pipeline.imageio import load_image
from pipeline.inference.predictor import Predictor, image_record


def mask_file_name(path: Path, used: set[str]) -> str:
    """``<stem>_mask.png`` made safe for any file system; numbered when two inputs share a stem."""
    stem = re.sub(r"[^\w.() -]+", "_", path.stem).strip() or "image"
    name, k = f"{stem}_mask.png", 1
    while name in used:
        k += 1
        name = f"{stem}_{k}_mask.png"
    used.add(name)
    return name


def run(paths: list[str], out_dir: str | Path, predictor: Predictor | None = None, stream=sys.stdout) -> int:
    """Predict every input, writing masks and JSON lines; return 1 if any input failed, else 0."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BusiError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from exc
    predictor = predictor or Predictor()
    failed, used = False, set()
    for raw in paths:
        start = time.perf_counter()
        try:
            pred, record = image_record(predictor, load_image(Path(raw)), raw)
            mask_path = out_dir / mask_file_name(Path(raw), used)
            if not cv2.imwrite(str(mask_path), pred.mask * 255):
                raise BusiError(f"could not write {mask_path}")
            record.update(mask=str(mask_path), ms=round((time.perf_counter() - start) * 1e3, 1))
        except BusiError as exc:
            failed = True
            record = {"image": raw, "error": str(exc)}
        except OSError as exc:
            failed = True
            record = {"image": raw, "error": f"cannot read {raw}: {exc.strerror or exc}"}
        except Exception as exc:  # noqa: BLE001 - one bad input must not stop the others
            failed = True
            record = {"image": raw, "error": f"prediction failed ({type(exc).__name__}: {exc})"}
        print(json.dumps(record), file=stream, flush=True)
    return 1 if failed else 0
