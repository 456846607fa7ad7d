"""The HTTP API: ``create_app()`` builds the FastAPI application served by ``python -m pipeline serve``.

Endpoints: ``GET /health`` (503 until the models are loaded, or with the reason they cannot be),
``GET /version`` (model bundle manifest, package version, test-split metrics summary) and
``POST /predict`` (one image as the multipart field ``file``; the record is ``Prediction.to_record()``,
the same one the ``predict`` CLI prints). Interactive docs at ``/docs``.

The models load once per process in a background thread started by the lifespan, so ``/health``
answers while they load. Inference runs in the thread pool, off the event loop; the Predictor
serialises its graph calls, so concurrent requests get the same answers as serial ones.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import pipeline
from pipeline import paths
from pipeline.errors import BusiError, ImageLoadError
from pipeline.imageio import SUPPORTED_FORMATS, describe_supported, load_image, sniff_format
from pipeline.inference.bundle import read_manifest

log = logging.getLogger("pipeline.api")

MAX_UPLOAD_MB = 50  # same limit as the dashboard (.streamlit/config.toml: server.maxUploadSize = 50, in MiB)
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024

PredictorFactory = Callable[[Path], Any]

DESCRIPTION = f"""
Breast-ultrasound CAD models over HTTP: lesion segmentation (UNet) and benign / malignant / normal
classification (baseline on the whole frame, refined on the lesion-centred crop).

* `GET /health`: 200 once the models are loaded, 503 with a reason while loading or when they cannot load.
* `GET /version`: the model bundle manifest (each model's input/output contract), the package version
  and the test-split metrics.
* `POST /predict/idc`: one H&E histopathology patch or tile (field `file`): IDC heat map over 50 px cells and
  the share of IDC cells; same error rules.
* `POST /predict`: one image as the multipart field `file`. {describe_supported()}
  The format is decided by the content, not the file name. Add `?mask=true` for the predicted mask as a
  base64 PNG (0 = background, 255 = lesion). Uploads are limited to {MAX_UPLOAD_MB} MiB.

Errors are `{{"error": "..."}}`: 415 for an unsupported format, 422 for a file that cannot be decoded or a
missing `file` field, 413 for a body over the limit, 503 while the models are not loaded.

Research and teaching only; not a medical device.
"""


# --- JSON ------------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class JSON(JSONResponse):
    """JSONResponse that also writes numpy scalars/arrays (records may gain fields of any numeric type)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, default=_jsonable,
                          separators=(",", ":")).encode("utf-8")


def error(status_code: int, message: str, **extra: Any) -> JSON:
    """The one error body: ``{"error": message}`` (plus ``extra`` keys)."""
    return JSON({"error": message, **extra}, status_code=status_code)


# --- model loading -----------------------------------------------------------------------------------
def default_predictor_factory(models_dir: Path):
    """The real Predictor with every model."""
    from pipeline.inference.predictor import Predictor

    return Predictor(models_dir)


class ModelState:
    """Loads the predictor once in a background thread; ``status`` is "loading", "ok" or "error"."""

    def __init__(self, models_dir: Path, factory: PredictorFactory, warmup: bool = True):
        self.models_dir = models_dir
        self.factory = factory
        self.warmup = warmup
        self.status = "loading"
        self.reason: str | None = "the models are loading"
        self.predictor = None
        self.load_seconds: float | None = None
        self._started_at: float | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._start_lock = threading.Lock()

    def start(self) -> None:
        """Start loading (once; later calls do nothing)."""
        with self._start_lock:
            if self._thread is not None:
                return
            self._started_at = time.perf_counter()
            self._thread = threading.Thread(target=self._load, name="busi-model-loader", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading finished (either way); False on timeout."""
        return self._done.wait(timeout)

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            predictor = self.factory(self.models_dir)
            if self.warmup:
                predictor.warm_up()
        except BusiError as exc:
            self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure is reported by /health, never crashes the server
            log.exception("model loading failed")
            self._fail(f"the models cannot be loaded ({type(exc).__name__}: {exc})")
        else:
            self.predictor = predictor
            self.load_seconds = round(time.perf_counter() - t0, 2)
            self.reason = None
            self.status = "ok"
            log.info("models loaded from %s in %.1f s", self.models_dir, self.load_seconds)
        finally:
            self._done.set()

    def _fail(self, reason: str) -> None:
        self.reason = reason
        self.status = "error"
        log.error("models not loaded: %s", reason)

    def health(self) -> tuple[int, dict]:
        """(HTTP status, body) for ``/health``."""
        body: dict[str, Any] = {"status": self.status, "models_loaded": self.status == "ok",
                                "models_dir": str(self.models_dir), "package_version": pipeline.__version__}
        if self.status == "ok":
            body["load_seconds"] = self.load_seconds
            body["runtime"] = dict(sorted(getattr(self.predictor, "runtimes", {}).items()))  # graph -> tflite | keras
            return 200, body
        body["reason"] = self.reason
        if self.status == "loading" and self._started_at is not None:
            body["loading_for_s"] = round(time.perf_counter() - self._started_at, 1)
        return 503, body


def metrics_summary(models_dir: Path) -> dict | None:
    """Test-split headline numbers from ``metrics.json``; None when it is missing or unreadable."""
    try:
        metrics = json.loads((models_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict):
        return None

    def get(*keys: str):
        node: Any = metrics
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    summary: dict[str, Any] = {"split": "test", "generated": get("generated")}
    for name in ("baseline", "refined"):
        summary[name] = {k: get("classifiers", name, "test", k) for k in ("n", "accuracy", "macro_f1", "macro_auc")}
    summary["segmentation"] = {k: get("segmentation", "test", k) for k in ("dice_mean", "iou_mean")}
    return summary


# --- request size limit ------------------------------------------------------------------------------
class BodyLimitMiddleware:
    """413 ``{"error"}`` for request bodies over ``max_bytes``.

    Checks Content-Length before anything is read, and counts the bytes actually received, so a
    missing or lying header (chunked uploads) cannot bypass the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: int | None = None) -> str:
        got = f" ({size / 2**20:.1f} MiB)" if size is not None else ""
        return f"the upload is too large{got}; the limit is {self.max_bytes / 2**20:g} MiB."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if declared is not None and declared > self.max_bytes:
            await error(413, self._message(declared))(scope, receive, send)
            return

        received, exceeded, started = 0, False, False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app answers to the interrupted body (a 400 parse error) is replaced
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await error(413, self._message())(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


# --- predictions ---------------------------------------------------------------------------------------
def image_error_status(data: bytes, exc: ImageLoadError) -> int:
    """415 when the content is not a supported format at all, 422 when it is one but cannot be used."""
    unsupported = f"Supported formats: {', '.join(SUPPORTED_FORMATS)}" in str(exc)
    return 415 if data and unsupported and sniff_format(data) not in SUPPORTED_FORMATS else 422


def upload_name(filename: str | None) -> str:
    """The uploaded file's base name (as the CLI names a path in its messages), or "upload"."""
    return (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip() or "upload"


def predict_record(predictor, data: bytes, name: str, with_mask: bool = False) -> dict:
    """The /predict body for one image's bytes (raises ImageLoadError for bad inputs). Runs in a worker thread."""
    import cv2

    from pipeline.inference.predictor import image_record

    start = time.perf_counter()
    pred, record = image_record(predictor, load_image(data, name=name), name)
    if with_mask:
        ok, png = cv2.imencode(".png", (pred.mask * 255).astype(np.uint8))
        if not ok:
            raise RuntimeError("the mask could not be encoded as PNG")
        record["mask_png_base64"] = base64.b64encode(png.tobytes()).decode("ascii")
    record["ms"] = round((time.perf_counter() - start) * 1e3, 1)
    return record


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query")]
        field = ".".join(loc) or "request"
        if err.get("type") == "missing" and field == "file":
            parts.append("the request has no file: send the image as the multipart/form-data field 'file' "
                         "(curl -F 'file=@image.png')")
        else:
            parts.append(f"{field}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


# --- the application ---------------------------------------------------------------------------------
def create_app(models_dir: str | Path | None = None, predictor_factory: PredictorFactory | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, warmup: bool = True,
               idc_predictor_factory: PredictorFactory | None = None) -> FastAPI:
    """The FastAPI app. ``models_dir``: default ``$BUSI_MODELS_DIR``, else ``models/``.

    ``predictor_factory(models_dir)`` returns the Predictor (default: the real one); it runs once, in a
    background thread started at startup (the IDC model, ``idc_predictor_factory``, in another).
    ``max_upload_bytes`` caps the request body (413 above it).
    """
    models_dir = Path(models_dir) if models_dir else paths.models_dir()
    state = ModelState(models_dir, predictor_factory or default_predictor_factory, warmup=warmup)
    try:  # read once at startup; /version answers from these
        manifest, manifest_error = read_manifest(models_dir), None
    except BusiError as exc:
        manifest, manifest_error = None, str(exc)
    summary = metrics_summary(models_dir)
    from pipeline.api import idc as idc_api  # --- IDC histopathology model set (issue 23) ---
    idc_state = idc_api.model_state(models_dir, idc_predictor_factory or idc_api.idc_factory, warmup=warmup)
    idc_version = idc_api.version_entry(models_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        idc_state.start()  # IDC
        yield

    app = FastAPI(title="BUSI breast-ultrasound CAD API", version=pipeline.__version__, description=DESCRIPTION,
                  lifespan=lifespan, default_response_class=JSON)
    app.state.models = state
    app.state.idc_models = idc_state  # IDC
    app.state.max_upload_bytes = max_upload_bytes
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_upload_bytes)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSON:
        return error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSON:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
        return JSON({"error": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSON:
        log.error("unhandled error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    @app.get("/health", summary="Are the models loaded?",
             responses={503: {"description": "loading, or the models cannot be loaded (see `reason`)"}})
    def health() -> JSON:
        status, body = state.health()
        body["idc"] = idc_api.health_entry(idc_state)  # IDC
        return JSON(body, status_code=status)

    @app.get("/version", summary="Model bundle manifest, package version and test metrics",
             responses={503: {"description": "the bundle manifest is missing or unreadable"}})
    def version() -> JSON:
        if manifest is None:
            return error(503, manifest_error or "no model bundle manifest",
                         package_version=pipeline.__version__)
        return JSON({**manifest, "package_version": pipeline.__version__, "metrics": summary,
                     "idc": idc_version})  # IDC

    @app.post("/predict", summary="Segment and classify one ultrasound image", responses={
        200: {"description": "the prediction record (as `python -m pipeline predict` prints it), measurements, "
                             "warnings, time in ms; `mask_png_base64` with `?mask=true`"},
        413: {"description": f"the body is over {max_upload_bytes / 2**20:g} MiB"},
        415: {"description": "not a supported image format"},
        422: {"description": "the file cannot be decoded or used, or the `file` field is missing"},
        503: {"description": "the models are not loaded"},
    })
    async def predict(
        file: UploadFile = File(..., description="the image: PNG, JPEG, BMP, TIFF or DICOM (content decides)"),
        mask: bool = Query(False, description="add the predicted mask as a base64 PNG (0/255), same size as the image"),
    ) -> JSON:
        name = upload_name(file.filename)
        if state.predictor is None:
            return error(503, f"the models are not loaded: {state.reason}", status=state.status)
        data = await file.read()
        try:
            record = await run_in_threadpool(predict_record, state.predictor, data, name, mask)
        except ImageLoadError as exc:
            return error(image_error_status(data, exc), str(exc), image=name)
        except BusiError as exc:
            return error(422, str(exc), image=name)
        except Exception as exc:  # noqa: BLE001 - answer 500 with one line, never a traceback
            log.exception("prediction failed for %s", name)
            return error(500, f"internal error: prediction failed ({type(exc).__name__}: {exc})", image=name)
        return JSON(record)

    idc_api.add_route(app, idc_state)  # IDC: POST /predict/idc
    return app


__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_MB", "ModelState", "create_app", "metrics_summary", "predict_record"]
