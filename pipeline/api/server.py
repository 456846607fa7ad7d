"""Run the HTTP API with uvicorn (one or several worker processes, each loading the models once)."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import BusiError

APP_FACTORY = "pipeline.api.app:create_app"
MODELS_DIR_ENV = "BUSI_MODELS_DIR"  # read by pipeline.paths.models_dir(), so every worker process sees it


def serve(host: str = "127.0.0.1", port: int = 8000, models_dir: str | Path | None = None, workers: int = 1,
          log_level: str = "info") -> None:
    """Serve ``create_app()`` until interrupted. ``workers`` > 1 starts that many processes (uvicorn's manager)."""
    import uvicorn

    if workers < 1:
        raise BusiError(f"--workers must be at least 1 (got {workers})")
    if not 0 <= port <= 65535:
        raise BusiError(f"--port must be between 0 and 65535 (got {port})")
    if models_dir:
        os.environ[MODELS_DIR_ENV] = str(Path(models_dir).expanduser().resolve())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level,
                timeout_graceful_shutdown=10)
