"""The models an API process serves, as named model sets ("ultrasound" now; a second one, e.g. histopathology,
is one more ``ModelSet`` in ``create_app``). Each set loads once in a background thread, so ``/health`` answers
while it loads, and carries what ``/health`` and ``/version`` say about it."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pipeline
from pipeline.api.responses import models_label, redact_paths
from pipeline.errors import BusiError
from pipeline.inference.bundle import read_manifest

log = logging.getLogger("pipeline.api")

PredictorFactory = Callable[[Path], Any]


class ModelState:
    """Loads a predictor once in a background thread; ``status`` is "loading", "ok" or "error"."""

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

    def health(self) -> dict:
        """What ``/health`` says about these models (no absolute paths)."""
        body: dict[str, Any] = {"status": self.status, "models_loaded": self.status == "ok",
                                "models_dir": models_label(self.models_dir)}
        if self.status == "ok":
            body["load_seconds"] = self.load_seconds
            body["runtime"] = dict(sorted(getattr(self.predictor, "runtimes", {}).items()))  # graph -> tflite | keras
            return body
        body["reason"] = redact_paths(self.reason or "")
        if self.status == "loading" and self._started_at is not None:
            body["loading_for_s"] = round(time.perf_counter() - self._started_at, 1)
        return body


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


@dataclass
class ModelSet:
    """One set of models behind one or more endpoints: its loader, and its manifest and metrics read at startup."""

    name: str
    state: ModelState
    summarise: Callable[[Path], dict | None] = metrics_summary
    manifest_dir: Path | None = None  # where its manifest.json lies (default: the models folder)
    manifest: dict | None = field(default=None, init=False)
    manifest_error: str | None = field(default=None, init=False)
    metrics: dict | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        try:
            self.manifest = read_manifest(self.manifest_dir or self.state.models_dir)
        except BusiError as exc:
            self.manifest_error = redact_paths(str(exc))
        self.metrics = self.summarise(self.state.models_dir)

    def version(self) -> dict | None:
        """The set's manifest with its metrics summary; None without a readable manifest."""
        return None if self.manifest is None else {**self.manifest, "metrics": self.metrics}


def health_of(sets: dict[str, ModelSet]) -> tuple[int, dict]:
    """(HTTP status, body) for ``/health``: the first (main) set decides the status, 200 once it is loaded, and its
    fields stay at the top level (as before there was more than one); ``model_sets`` has each set's own status,
    so a second set that cannot load is reported without taking the main endpoint out of a load balancer (its own
    endpoint answers 503)."""
    each = {name: s.state.health() for name, s in sets.items()}
    first = next(iter(each.values()))
    body = {**first, "package_version": pipeline.__version__, "model_sets": each}
    return (200 if first["status"] == "ok" else 503), body


def version_of(sets: dict[str, ModelSet]) -> tuple[int, dict]:
    """(HTTP status, body) for ``/version``: the first set's manifest and metrics at the top level (as before there
    was more than one), ``model_sets`` naming each set's bundle version and models; 503 without its manifest."""
    name, first = next(iter(sets.items()))
    body = first.version()
    if body is None:
        return 503, {"error": first.manifest_error or "no model bundle manifest", "package_version": pipeline.__version__}
    each = {n: None if s.manifest is None else {"version": s.manifest.get("version"), "models": sorted(s.manifest.get(
        "models", {}))} for n, s in sets.items()}
    return 200, {**body, "package_version": pipeline.__version__, "model_sets": each}


__all__ = ["ModelSet", "ModelState", "PredictorFactory", "health_of", "metrics_summary", "version_of"]
