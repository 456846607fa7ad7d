"""``python -m pipeline predict PATH [PATH ...] --out DIR``: one JSON line per input on stdout.

``--task idc``: the IDC heat map of H&E tiles (``run_idc``), ``--out`` optional (heat-map overlays).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
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


def _make_out(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BusiError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from exc
    return out_dir


def _each(paths: list[str], answer: Callable[[str], dict], stream) -> int:
    """Print ``answer(path)`` (or ``{"image", "error"}``) as one JSON line per input; 1 if any input failed."""
    failed = False
    for raw in paths:
        try:
            record = answer(raw)
        except BusiError as exc:
            failed, record = True, {"image": raw, "error": str(exc)}
        except OSError as exc:
            failed, record = True, {"image": raw, "error": f"cannot read {raw}: {exc.strerror or exc}"}
        except Exception as exc:  # noqa: BLE001 - one bad input must not stop the others
            failed, record = True, {"image": raw, "error": f"prediction failed ({type(exc).__name__}: {exc})"}
        print(json.dumps(record), file=stream, flush=True)
    return 1 if failed else 0


def run(paths: list[str], out_dir: str | Path, predictor: Predictor | None = None, stream=sys.stdout) -> int:
    """Predict every input, writing masks and JSON lines; return 1 if any input failed, else 0."""
    out_dir = _make_out(out_dir)
    predictor = predictor or Predictor()
    used: set[str] = set()

    def answer(raw: str) -> dict:
        start = time.perf_counter()
        pred, record = image_record(predictor, load_image(Path(raw)), raw)
        mask_path = out_dir / mask_file_name(Path(raw), used)
        if not cv2.imwrite(str(mask_path), pred.mask * 255):
            raise BusiError(f"could not write {mask_path}")
        record.update(mask=str(mask_path), ms=round((time.perf_counter() - start) * 1e3, 1))
        return record

    return _each(paths, answer, stream)


def run_idc(paths: list[str], out_dir: str | Path | None = None, predictor=None, models_dir: str | Path | None = None,
            stream=sys.stdout) -> int:
    """IDC heat map of every H&E tile: one JSON line each (``IdcAnswer.to_record()``; the per-cell map included),
    and with ``out_dir`` the overlay ``<stem>_idc.png``; return 1 if any input failed, else 0. A picture refused
    by the modality check (e.g. an ultrasound frame) is an answer (``in_scope`` false), not a failure."""
    from pipeline.inference.idc import IdcPredictor
    from pipeline.inference.idc_answer import analyse, heatmap_overlay

    out = _make_out(out_dir) if out_dir else None
    predictor = predictor or IdcPredictor(models_dir)
    used: set[str] = set()

    def answer(raw: str) -> dict:
        result = analyse(predictor, load_image(Path(raw)), raw)
        record = result.to_record()
        if out is not None and result.result is not None:
            png = out / (mask_file_name(Path(raw), used).removesuffix("_mask.png") + "_idc.png")
            rgb = heatmap_overlay(result.image.rgb, result.result)
            if not cv2.imwrite(str(png), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
                raise BusiError(f"could not write {png}")
            record["heatmap_png"] = str(png)
        return record

    return _each(paths, answer, stream)
