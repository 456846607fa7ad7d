"""The HTTP API: ``create_app()`` builds the FastAPI application served by ``python -m pipeline serve``.

Endpoints: ``GET /health`` (open; 503 until the models are loaded, or with the reason they cannot be),
``GET /version`` (model bundle manifest, package version, test-split metrics summary), ``POST /predict``
(one image as the multipart field ``file``; the record is ``image_record``'s, the one the ``predict`` CLI
prints) and ``GET /metrics`` (Prometheus). With an API key configured, every endpoint but ``/health`` and the
docs needs it. Docs at ``/docs`` and ``/redoc``, served from the ``fastapi-offline`` package's own copy of
Swagger UI and ReDoc, so they render without internet.

The models load once per process in a background thread started by the lifespan, so ``/health`` answers
while they load. Uploads are decoded and predicted in the thread pool, at most ``max_active`` at once with
``max_queue`` waiting (``pipeline.api.guards.WorkGate``); the Predictor serialises its graph calls, so
concurrent requests get the same answers as serial ones.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Query, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

import pipeline
from pipeline import paths
from pipeline.api import idc as idc_api
from pipeline.api.guards import API_KEY_HEADER, BodyGuard, Busy, WorkGate, key_matches
from pipeline.api.model_sets import ModelSet, ModelState, PredictorFactory, health_of, metrics_summary, version_of
from pipeline.api.observe import ApiMetrics, ObserveMiddleware
from pipeline.api.responses import JSON, error
from pipeline.api.schemas import ErrorBody, Health, PredictionRecord, Version
from pipeline.api.settings import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, ApiSettings
from pipeline.api.uploads import FIELD, Upload, UploadError, decode, read_upload
from pipeline.errors import BusiError
from pipeline.imageio import LoadedImage, describe_supported

log = logging.getLogger("pipeline.api")
ULTRASOUND = "ultrasound"  # the model set behind /predict
IDC = "idc"  # the histopathology model set behind /predict/idc
RecordFn = Callable[..., dict]  # (predictor, loaded image, name, **options) -> the record


def description(settings: ApiSettings) -> str:
    """The OpenAPI description: endpoints, limits, errors."""
    key = ("An API key is configured: send it as `X-API-Key` (or `Authorization: Bearer`) to every endpoint "
           "except `/health` and the docs; without it the answer is 401." if settings.api_key else
           "No API key is configured (start with `--api-key-file` to require one).")
    return f"""
Breast-ultrasound CAD models over HTTP: lesion segmentation (UNet) and benign / malignant / normal
classification (baseline on the whole frame, refined on the lesion-centred crop).

* `GET /health`: 200 once the models are loaded, 503 with a reason while loading or when they cannot load.
* `GET /version`: the model bundle manifest (each model's input/output contract), the package version
  and the test-split metrics.
* `POST /predict/idc`: one H&E histopathology patch or tile (field `file`): IDC heat map over 50 px cells and
  the share of IDC cells; a picture that is not H&E answers `"status": "refused"` with `label` null; same limits
  and errors.
* `POST /predict`: one image as the multipart field `file`. {describe_supported(settings.max_pixels)}
  The format is decided by the content, not the file name. Add `?mask=true` for the predicted mask as a
  base64 PNG (0 = background, 255 = lesion). An image the scope gate judges not a breast-ultrasound frame
  answers `"status": "refused"` with `label` null and the answer computed anyway under `research_only`.
* `GET /metrics`: Prometheus metrics of this process.

{key}

Limits: uploads up to {settings.max_upload_bytes / 2**20:g} MiB and {settings.max_pixels / 1e6:.1f} megapixels;
{settings.max_active} images decoded and predicted at once, {settings.max_queue} waiting; a request body that
stops arriving for {settings.body_timeout_s:g} s is dropped (408).

Errors are `{{"error": "..."}}`: 400 malformed HTTP, 401 missing or wrong API key, 408 a body or headers that
stopped arriving, 413 over the upload or pixel limit, 415 an unsupported format, 422 a file that cannot be
decoded, a missing, repeated or text `file` field or a truncated body, 503 while the models are not loaded or
when the queue is full (with `Retry-After`).

Research and teaching only; not a medical device.
"""


def ultrasound_record(predictor, loaded: LoadedImage, name: str, mask: bool = False) -> dict:
    """The /predict record: ``image_record`` (as the CLI prints it), plus the mask as a base64 PNG on request."""
    import cv2

    from pipeline.inference.predictor import image_record

    pred, record = image_record(predictor, loaded, name)
    if mask:
        ok, png = cv2.imencode(".png", (pred.mask * 255).astype(np.uint8))
        if not ok:
            raise RuntimeError("the mask could not be encoded as PNG")
        record["mask_png_base64"] = base64.b64encode(png.tobytes()).decode("ascii")
    return record


def run_job(record_of: RecordFn, predictor, upload: Upload, max_pixels: int, **options: Any) -> dict:
    """Decode one upload and build its record, timed (``ms``). Runs in a worker thread."""
    start = time.perf_counter()
    record = record_of(predictor, decode(upload, max_pixels), upload.name, **options)
    record["ms"] = round((time.perf_counter() - start) * 1e3, 1)
    return record


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query")]
        parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


ERRORS = {code: {"model": ErrorBody, "description": text} for code, text in {
    400: "malformed request", 401: "missing or wrong API key", 408: "the body stopped arriving",
    413: "over the upload size or pixel limit", 415: "not a supported image format",
    422: "undecodable file; missing, repeated or text `file` field; truncated body",
    503: "models not loaded, or the queue is full (see `Retry-After`)"}.items()}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FIELD], "properties": {FIELD: {
        "type": "string", "format": "binary",
        "description": "the image: PNG, JPEG, BMP, TIFF or DICOM (the content decides)"}}}}}}}


def create_app(models_dir: str | Path | None = None, predictor_factory: PredictorFactory | None = None,
               max_upload_bytes: int | None = None, warmup: bool = True,
               settings: ApiSettings | None = None, idc_predictor_factory: PredictorFactory | None = None) -> FastAPI:
    """The FastAPI app. ``models_dir``: default ``$BUSI_MODELS_DIR``, else ``models/``.

    ``predictor_factory(models_dir)`` returns the Predictor (default: the real one); it runs once, in a
    background thread started at startup (the IDC model, ``idc_predictor_factory``, in another). ``settings``:
    limits, CORS origins and API key (default: from the
    ``BUSI_API_*`` environment, see ``pipeline.api.settings``); ``max_upload_bytes`` overrides its upload limit.
    """
    settings = settings or ApiSettings.from_env()
    if max_upload_bytes is not None:
        settings = dataclasses.replace(settings, max_upload_bytes=max_upload_bytes)
    models_dir = Path(models_dir) if models_dir else paths.models_dir()
    sets = {ULTRASOUND: ModelSet(ULTRASOUND, ModelState(models_dir, predictor_factory or _real_predictor, warmup),
                                 metrics_summary),
            IDC: idc_api.model_set(models_dir, idc_predictor_factory, warmup)}
    gate = WorkGate(settings.max_active, settings.max_queue)
    metrics = ApiMetrics({"/health", "/version", "/predict", "/predict/idc", "/metrics", "/docs", "/redoc",
                          "/openapi.json"})
    metrics.queue_depth.set_function(lambda: gate.waiting)
    metrics.in_progress.set_function(lambda: gate.active)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for model_set in sets.values():
            model_set.state.start()
        yield

    app = FastAPIOffline(title="BUSI breast-ultrasound CAD API", version=pipeline.__version__,
                         description=description(settings), lifespan=lifespan, default_response_class=JSON)
    app.state.models = sets[ULTRASOUND].state
    app.state.idc_models = sets[IDC].state
    app.state.model_sets = sets
    app.state.settings = settings
    app.state.gate = gate
    app.state.metrics = metrics
    app.add_middleware(BodyGuard, max_bytes=settings.max_upload_bytes, timeout_s=settings.body_timeout_s)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=[API_KEY_HEADER, "Authorization", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    app.add_middleware(ObserveMiddleware, metrics=metrics)

    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the API key, when one is configured")

    def require_key(request: Request, _: str | None = Security(key_header)) -> None:
        if not key_matches(settings.api_key, request.headers):
            raise StarletteHTTPException(401, f"a valid API key is needed: send it as the {API_KEY_HEADER} header",
                                         headers={"WWW-Authenticate": "Bearer"})

    keyed = [Depends(require_key)]

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSON:
        return error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSON:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
        return error(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSON:
        log.error("unhandled error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    async def answer_upload(request: Request, model_set: ModelSet, record_of: RecordFn, **options: Any) -> JSON:
        """The whole answer to one upload for ``model_set``: read, queue, decode + predict, every refusal as JSON.
        Another image endpoint is this call with its own ``record_of``."""
        state = model_set.state
        if state.predictor is None:
            return error(503, f"the models are not loaded: {state.reason}", status=state.status)
        name = None
        try:
            if gate.waiting >= settings.max_queue and gate.active >= settings.max_active:
                raise Busy(gate.retry_after())  # before reading a body that would only wait
            upload = await read_upload(request)
            name = upload.name
            async with gate.slot():
                record = await run_in_threadpool(run_job, record_of, state.predictor, upload, settings.max_pixels,
                                                 **options)
        except UploadError as exc:
            return error(exc.status, str(exc), **({"image": exc.image} if exc.image else {}))
        except Busy as exc:
            metrics.busy.inc()
            return error(503, str(exc), headers={"Retry-After": str(exc.retry_after)})
        except BusiError as exc:
            return error(422, str(exc), image=name)
        except Exception as exc:  # noqa: BLE001 - answer 500 with one line, never a traceback
            log.exception("prediction failed for %s", name)
            return error(500, f"internal error: prediction failed ({type(exc).__name__}: {exc})", image=name)
        if record.get("status") == "refused":
            metrics.refusals.labels(model_set.name).inc()
        return JSON(record)

    @app.get("/health", summary="Are the models loaded? (no API key needed)", response_model=Health,
             responses={503: {"model": Health, "description": "loading, or the models cannot be loaded (`reason`)"}})
    def health() -> JSON:
        status, body = health_of(sets)
        return JSON(body, status_code=status)

    @app.get("/version", summary="Model bundle manifest, package version and test metrics", response_model=Version,
             dependencies=keyed, responses={k: ERRORS[k] for k in (401, 503)})
    def version() -> JSON:
        status, body = version_of(sets)
        return JSON(body, status_code=status)

    @app.post("/predict", summary="Segment and classify one ultrasound image", response_model=PredictionRecord,
              dependencies=keyed, openapi_extra=UPLOAD_BODY, responses=ERRORS)
    async def predict(request: Request, mask: bool = Query(
            False, description="add the predicted mask as a base64 PNG (0/255), same size as the image")) -> JSON:
        return await answer_upload(request, sets[ULTRASOUND], ultrasound_record, mask=mask)

    @app.post("/predict/idc", summary="IDC heat map of one H&E histopathology patch or tile",
              response_model=idc_api.IdcRecord, dependencies=keyed, openapi_extra=UPLOAD_BODY, responses=ERRORS)
    async def predict_idc(request: Request, tta: bool | None = Query(
            None, description="force the 8-view averaging on (true) or off (false); default: the model's choice "
                              "for tiles of up to 16 cells")) -> JSON:
        return await answer_upload(request, sets[IDC], idc_api.idc_record, tta=tta)

    @app.get("/metrics", summary="Prometheus metrics of this process", dependencies=keyed,
             response_class=Response, responses={200: {"content": {"text/plain": {}}}, 401: ERRORS[401]})
    def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app


def _real_predictor(models_dir: Path):
    """The real Predictor with every model."""
    from pipeline.inference.predictor import Predictor

    return Predictor(models_dir)


__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_MB", "ModelState", "create_app", "metrics_summary", "run_job",
           "ultrasound_record"]
