"""How the Predictor runs its networks: TensorFlow Lite with XNNPACK (fast on CPU) or Keras (the reference).

Each network call the Predictor makes (a model, or a model plus some of its inner layers) is converted once to a
``.tflite`` file and cached under ``data/cache/runtime/``, keyed by the ``.keras`` file's SHA-256, the layers read
and the TensorFlow version, so a retrained model is never served from a stale conversion. Outputs match Keras
within float32 round-off (tested); Keras stays loaded for Grad-CAM, which needs gradients.

``BUSI_RUNTIME=keras`` (or ``Predictor(runtime="keras")``) serves the Keras graphs instead; when a conversion
fails, the Predictor warns and falls back to Keras.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.paths import CACHE_DIR

RUNTIMES = ("tflite", "keras")
RUNTIME_ENV = "BUSI_RUNTIME"
RUNTIME_CACHE = CACHE_DIR / "runtime"
_FORMAT = "1"  # bump when the conversion below changes

Runner = Callable[[np.ndarray | Sequence[np.ndarray]], list[np.ndarray]]


def default_runtime() -> str:
    """``BUSI_RUNTIME`` when set to a known runtime, else "tflite"."""
    value = os.environ.get(RUNTIME_ENV, "tflite").strip().lower()
    if value not in RUNTIMES:
        raise ValueError(f"{RUNTIME_ENV}={value!r}: choose one of {', '.join(RUNTIMES)}")
    return value


def _as_list(x) -> list[np.ndarray]:
    return [np.asarray(v, np.float32) for v in (x if isinstance(x, list | tuple) else [x])]


def keras_runner(model) -> Runner:
    """Run ``model`` (inference mode) as one TensorFlow graph; returns its outputs as a list of arrays."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def run(x) -> list[np.ndarray]:
        out = fn(list(x) if isinstance(x, list | tuple) else x)
        return [t.numpy() for t in (out if isinstance(out, list | tuple) else [out])]

    return run


def cache_key(source_sha256: str, spec: str) -> str:
    """Cache key of one conversion: the model file's hash, what is read from it, TensorFlow's version."""
    import tensorflow as tf

    return hashlib.sha256(f"{source_sha256}|{spec}|{tf.__version__}|{_FORMAT}".encode()).hexdigest()[:20]


def convert(model, out: Path) -> Path:
    """Write ``model`` (inputs ``in_0``.., outputs ``out_0``..) as a float32 TensorFlow Lite file at ``out``."""
    import keras
    import tensorflow as tf

    specs = [tf.TensorSpec([None, *(int(d) for d in t.shape[1:])], tf.float32, name=f"in_{i}")
             for i, t in enumerate(model.inputs)]

    def serve(*xs):
        outs = model(list(xs) if len(xs) > 1 else xs[0], training=False)
        outs = outs if isinstance(outs, list | tuple) else [outs]
        return {f"out_{i}": o for i, o in enumerate(outs)}

    with tempfile.TemporaryDirectory() as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(name="serve", fn=serve, input_signature=specs)
        archive.write_out(tmp, verbose=False)
        blob = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serve"]).convert()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(blob)
    partial.replace(out)  # atomic: a concurrent reader never sees half a file
    return out


class TFLiteRunner:
    """A converted network: one interpreter per batch size (resizing costs a re-allocation), XNNPACK threads."""

    def __init__(self, path: Path, n_inputs: int, n_outputs: int, threads: int | None = None):
        self.path, self.n_inputs, self.n_outputs = Path(path), n_inputs, n_outputs
        self.threads = threads or os.cpu_count() or 1
        self._runners: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def _runner(self, shapes: tuple):
        if shapes not in self._runners:
            import tensorflow as tf

            with warnings.catch_warnings():  # tf.lite.Interpreter's notice about moving to LiteRT
                warnings.simplefilter("ignore")
                interp = tf.lite.Interpreter(model_path=str(self.path), num_threads=self.threads)
            self._runners[shapes] = interp.get_signature_runner("serve")
        return self._runners[shapes]

    def __call__(self, x) -> list[np.ndarray]:
        xs = _as_list(x)
        if len(xs) != self.n_inputs:
            raise ValueError(f"{self.path.name} takes {self.n_inputs} inputs, got {len(xs)}")
        with self._lock:
            out = self._runner(tuple(a.shape for a in xs))(**{f"in_{i}": a for i, a in enumerate(xs)})
            return [np.array(out[f"out_{i}"]) for i in range(self.n_outputs)]


def make_runner(model, runtime: str, source_sha256: str, spec: str, cache_dir: Path | None = None,
                label: str | None = None) -> tuple[Runner, str]:
    """A runner for ``model`` on ``runtime`` and the runtime actually used ("keras" when a conversion fails).

    ``source_sha256``/``spec`` name the conversion in the cache (the ``.keras`` file's hash, the layers read);
    ``label`` starts the cached file's name (default: the model's name).
    """
    if runtime == "keras":
        return keras_runner(model), "keras"
    if runtime != "tflite":
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    path = Path(cache_dir or RUNTIME_CACHE) / f"{label or model.name}-{cache_key(source_sha256, spec)}.tflite"
    try:
        if not path.is_file():
            convert(model, path)
        return TFLiteRunner(path, len(model.inputs), len(model.outputs)), "tflite"
    except Exception as exc:  # noqa: BLE001 - any conversion failure: the Keras graph still answers
        warnings.warn(f"TensorFlow Lite conversion of {model.name} failed ({type(exc).__name__}: {exc}); "
                      "running it with Keras", stacklevel=2)
        return keras_runner(model), "keras"
