"""``POST /predict/idc``: the IDC heat map of one H&E patch or tile, beside the ultrasound endpoints.

Same multipart field (``file``) and the same error rules as ``/predict``: 415 for an unsupported format, 422 for a
file that cannot be decoded or a tile of the wrong size (under 50 px or over 4000 px on a side), 413 over the
upload limit, 503 while the IDC model is not loaded. The body is ``IdcAnswer.to_record()`` (as the
``predict --task idc`` CLI prints it): label, IDC probability, share of tissue cells called IDC, the per-cell
map; a picture that is not H&E (an ultrasound frame) answers ``in_scope: false`` with the reason and no label.

The IDC model loads in its own background thread (``ModelState``), so the ultrasound models never wait for it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi import FastAPI, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from pipeline.api.app import JSON, ModelState, error, image_error_status, upload_name
from pipeline.config import IDC_CONFIG_FILE, idc_dir_in
from pipeline.errors import BusiError, ImageLoadError
from pipeline.imageio import load_image

log = logging.getLogger("pipeline.api")


def idc_factory(models_dir: Path):
    """The real IDC predictor of ``models_dir/idc/``."""
    from pipeline.inference.idc import IdcPredictor

    return IdcPredictor(models_dir)


def model_state(models_dir: Path, factory=idc_factory, warmup: bool = True) -> ModelState:
    """The IDC model's loader (started with the app)."""
    return ModelState(models_dir, factory, warmup=warmup)


def health_entry(state: ModelState) -> dict:
    """The IDC part of ``/health``: status, reason when not loaded, load time and runtime when loaded."""
    _, body = state.health()
    keep = ("status", "models_loaded", "reason", "loading_for_s", "load_seconds")
    out = {k: body[k] for k in keep if k in body}
    if state.predictor is not None:
        out["runtime"] = state.predictor.runtime
    return out


def version_entry(models_dir: Path) -> dict:
    """The IDC part of ``/version``: the model's config (input, threshold, views, patient rule) and the
    test numbers of ``models/idc/metrics.json`` as written by the evaluation (None when absent)."""
    from pipeline.views.histopathology import read_metrics
    from pipeline.views.results import _optional_json

    config = _optional_json(idc_dir_in(models_dir) / IDC_CONFIG_FILE)
    metrics = read_metrics(models_dir)
    return {"model": "models/idc/idc_classifier.keras", "present": config is not None,
            "config": config, "metrics": None if metrics is None else {"test": metrics.get("test"),
                                                                       "how": metrics.get("how")}}


def predict_idc_record(predictor, data: bytes, name: str, tta: bool | None = None) -> dict:
    """The /predict/idc body for one upload's bytes (raises ImageLoadError for bad inputs). Runs in a thread."""
    from pipeline.inference.idc_answer import analyse

    start = time.perf_counter()
    record = analyse(predictor, load_image(data, name=name), name, tta=tta).to_record()
    record["ms"] = round((time.perf_counter() - start) * 1e3, 1)
    return record


def add_route(app: FastAPI, state: ModelState) -> None:
    """Register ``POST /predict/idc`` on ``app``, answered by the predictor ``state`` loads."""

    @app.post("/predict/idc", summary="IDC heat map of one H&E histopathology patch or tile", responses={
        200: {"description": "label, IDC probability, share of tissue cells called IDC, the per-cell probability "
                             "map (50 px cells; null = background), or `in_scope: false` with the reason"},
        413: {"description": "the body is over the upload limit"},
        415: {"description": "not a supported image format"},
        422: {"description": "the file cannot be decoded, the tile is under 50 px or over 4000 px on a side, "
                             "or the `file` field is missing"},
        503: {"description": "the IDC model is not loaded"},
    })
    async def predict_idc(
        file: UploadFile = File(..., description="the H&E tile: PNG, JPEG or TIFF (content decides)"),
        tta: bool | None = Query(None, description="force the 8-view averaging on (true) or off (false); default: "
                                                   "the model's choice for tiles up to 16 cells"),
    ) -> JSON:
        name = upload_name(file.filename)
        if state.predictor is None:
            return error(503, f"the IDC model is not loaded: {state.reason}", status=state.status)
        data = await file.read()
        try:
            record = await run_in_threadpool(predict_idc_record, state.predictor, data, name, tta)
        except ImageLoadError as exc:
            return error(image_error_status(data, exc), str(exc), image=name)
        except BusiError as exc:
            return error(422, str(exc), image=name)
        except Exception as exc:  # noqa: BLE001 - answer 500 with one line, never a traceback
            log.exception("IDC prediction failed for %s", name)
            return error(500, f"internal error: prediction failed ({type(exc).__name__}: {exc})", image=name)
        return JSON(record)
