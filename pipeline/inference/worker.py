"""The Predictor in a process of its own, for hosts whose other threads would stall TensorFlow.

Why: on a 2-core machine TensorFlow splits each operation over a 2-thread pool and waits for both halves.
Inside the Streamlit server (and under AppTest, whose main thread polls every millisecond while a script
runs) other threads of the same process wake up hundreds of times a second; every wake-up can pre-empt
one half of an operation and the whole graph waits for it. Measured here: the same ``Predictor.predict``
takes ~0.15 s in a plain process and 0.9-2.9 s as the first call of a Streamlit script run, with all of
that time inside TensorFlow's graph execution and the extra CPU burnt by another Python thread of the
process. In a separate process the Streamlit threads cannot interrupt TensorFlow's pool and the
prediction costs what it costs in a plain process (see the README's speed table).

``PredictorProcess`` offers what the dashboard uses of a ``Predictor`` (``predict``, ``explain``,
``configs``, ``classes``, ``models_dir``, ``manifest``); every call is one message over a pipe. The
worker runs the same ``Predictor`` class: one inference path. ``PredictorProcess(wait=False)`` returns at
once: the worker reports its start-up steps (``progress``), and ``ready()`` says when it can answer, so a
page can be used while the models load.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ModelLoadError

START_TIMEOUT_S = 180.0
START_STEPS = ("starting Python and TensorFlow", "loading the three models and the scope gate",
               "warming up (a first prediction and Grad-CAM)")
CALL_TIMEOUT_S = 120.0  # one prediction takes ~0.1 s; a worker silent this long is hung and is stopped


def _serve(conn, models_dir: str | None) -> None:
    """Worker main loop: load the models, then answer (method, args) messages until told to stop."""
    def step(i: int) -> None:
        conn.send(("progress", (i + 1, len(START_STEPS), START_STEPS[i])))

    step(0)
    from pipeline.inference.predictor import Predictor

    try:
        step(1)
        predictor = Predictor(models_dir)
        step(2)
        predictor.warm_up(explain=True)
    except ModelLoadError as exc:
        conn.send(("error", ModelLoadError(str(exc))))
        return
    except Exception as exc:  # noqa: BLE001 - any start-up failure reaches the caller with its reason
        conn.send(("error", ModelLoadError(f"the models could not be started ({type(exc).__name__}: {exc})")))
        return
    conn.send(("ok", {"configs": predictor.configs, "classes": predictor.classes,
                      "models_dir": predictor.models_dir, "manifest": predictor.manifest}))
    while True:
        try:
            method, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        if method == "close":
            return
        try:
            result = getattr(predictor, method)(*args, **kwargs)
            conn.send(("ok", result))
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
            try:
                conn.send(("error", exc))
            except Exception:  # noqa: BLE001 - an exception that cannot be pickled: send its text
                conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


class PredictorProcess:
    """A ``Predictor`` living in a child process; thread-safe (one request at a time over the pipe).

    The child is a fresh ``python -m pipeline.inference.worker`` (not multiprocessing's spawn, which would
    re-run the Streamlit page script as the main module), joined by a socket pair (POSIX only).
    """

    def __init__(self, models_dir: str | Path | None = None, start_timeout_s: float = START_TIMEOUT_S,
                 wait: bool = True):
        parent_sock, child_sock = socket.socketpair()
        fd = child_sock.fileno()
        args = [sys.executable, "-m", "pipeline.inference.worker", str(fd)]
        if models_dir:
            args.append(str(models_dir))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        self._proc = subprocess.Popen(args, pass_fds=[fd], env=env, stdin=subprocess.DEVNULL,
                                      start_new_session=True)  # Ctrl-C in the terminal stops the app, which closes the socket
        child_sock.close()
        self._conn = Connection(parent_sock.detach())
        self._lock = threading.Lock()
        self._start_timeout_s = start_timeout_s
        self._deadline = time.monotonic() + start_timeout_s
        self._start_error: Exception | None = None
        self._ready = False
        self.progress: tuple[int, int, str] = (0, len(START_STEPS), "starting the model worker process")
        if wait:
            self.wait_ready()

    def ready(self, timeout_s: float = 0.0) -> bool:
        """True once the models are loaded and warm; reads the worker's start-up messages for up to
        ``timeout_s`` (0: no wait). Raises ModelLoadError when the start failed or took too long."""
        with self._lock:
            if self._start_error is not None:
                raise self._start_error
            end = time.monotonic() + timeout_s
            while not self._ready:
                left = min(end, self._deadline) - time.monotonic()
                if not self._conn.poll(max(0.0, left)):
                    if time.monotonic() >= self._deadline:
                        self._fail(ModelLoadError("the model worker process did not start within "
                                                  f"{self._start_timeout_s:.0f} s"))
                    return False
                try:
                    status, payload = self._receive()
                except ModelLoadError as exc:
                    self._fail(exc)
                if status == "progress":
                    self.progress = payload
                elif status == "error":
                    self._fail(payload)
                else:
                    self.configs = payload["configs"]
                    self.classes: tuple[str, ...] = payload["classes"]
                    self.models_dir: Path = payload["models_dir"]
                    self.manifest: dict = payload["manifest"]
                    self._ready = True
            return True

    def wait_ready(self) -> None:
        """Block until the models are ready (raises ModelLoadError on failure or time-out)."""
        self.ready(timeout_s=max(0.0, self._deadline - time.monotonic()) + 1.0)

    def _fail(self, exc: Exception) -> None:
        """Remember a start-up failure, stop the worker and raise (called with the lock held)."""
        self._start_error = exc
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self._conn.close()
        raise exc

    def _receive(self):
        try:
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            try:
                code = self._proc.wait(2)
            except subprocess.TimeoutExpired:
                code = None
            raise ModelLoadError(f"the model worker process stopped (exit code {code}); reload the page "
                                 "to start it again") from exc

    def _call(self, method: str, *args: Any, **kwargs: Any):
        self.wait_ready()
        with self._lock:
            if not self.alive:
                raise ModelLoadError(f"the model worker process is not running (exit code {self._proc.poll()}); "
                                     "reload the page to start it again")
            self._conn.send((method, args, kwargs))
            if not self._conn.poll(CALL_TIMEOUT_S):
                self._proc.kill()
                raise ModelLoadError(f"the model worker process did not answer within {CALL_TIMEOUT_S:.0f} s and was "
                                     "stopped; reload the page to start it again")
            status, payload = self._receive()
        if status == "error":
            raise payload
        return payload

    @property
    def alive(self) -> bool:
        """True while the worker process runs."""
        return self._proc.poll() is None

    @property
    def crashed(self) -> bool:
        """True when the worker stopped after it had started (a failed start is an error, not a crash)."""
        return self._ready and not self.alive

    def predict(self, image: np.ndarray, rgb: np.ndarray | None = None):
        """``Predictor.predict`` in the worker."""
        return self._call("predict", np.ascontiguousarray(image),
                          rgb=None if rgb is None else np.ascontiguousarray(rgb))

    def explain(self, image: np.ndarray, mask: np.ndarray, label: str):
        """``Predictor.explain`` (Grad-CAM of the refined classifier) in the worker."""
        return self._call("explain", np.ascontiguousarray(image), np.ascontiguousarray(mask), label)

    def close(self) -> None:
        """Stop the worker (it also stops by itself when this process exits and its socket closes)."""
        with self._lock:
            if self._conn.closed:
                return
            try:
                if self.alive:
                    self._conn.send(("close", (), {}))
                    self._proc.wait(5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
            if self.alive:
                self._proc.kill()
                self._proc.wait(5)
            self._conn.close()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter shutdown
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.inference.worker FD [MODELS_DIR]``: serve the Predictor over the inherited socket."""
    argv = sys.argv[1:] if argv is None else argv
    _serve(Connection(int(argv[0])), argv[1] if len(argv) > 1 else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
