"""Run the HTTP API with uvicorn (one or several worker processes, each loading the models once).

Connection limits (uvicorn/h11, on top of the app's own in ``ApiSettings``): the header read timeout
(``pipeline.api.protocol``), uvicorn's keep-alive timeout (an idle connection is closed after
``keep_alive_s``), headers at most h11's 16 KiB, no ``server`` banner, our own access log with request ids.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from pipeline.api.settings import API_KEY_FILE_ENV, ApiSettings, read_api_key
from pipeline.errors import BusiError

APP_FACTORY = "pipeline.api.app:create_app"
PROTOCOL = "pipeline.api.protocol:GuardedH11Protocol"
MODELS_DIR_ENV = "BUSI_MODELS_DIR"  # read by pipeline.paths.models_dir(), so every worker process sees it


def log_config() -> dict:
    """uvicorn's logging set-up plus the API's loggers (the access log with request ids) on its handlers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["pipeline.api"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["loggers"]["pipeline.api.access"] = {"handlers": ["access"], "level": "INFO", "propagate": False}
    config["formatters"]["access"] = {"()": "logging.Formatter", "fmt": "%(asctime)s %(levelname)s %(message)s"}
    return config


def serve(host: str = "127.0.0.1", port: int = 8000, models_dir: str | Path | None = None, workers: int = 1,
          log_level: str = "info", settings: ApiSettings | None = None, api_key_file: str | None = None) -> None:
    """Serve ``create_app()`` until interrupted. ``workers`` > 1 starts that many processes (uvicorn's manager);
    ``settings`` and ``api_key_file`` reach every worker through the environment."""
    import uvicorn

    if workers < 1:
        raise BusiError(f"--workers must be at least 1 (got {workers})")
    if not 0 <= port <= 65535:
        raise BusiError(f"--port must be between 0 and 65535 (got {port})")
    if models_dir:
        os.environ[MODELS_DIR_ENV] = str(Path(models_dir).expanduser().resolve())
    if api_key_file:
        read_api_key(api_key_file)  # a missing or empty key file stops the start, with the reason
        os.environ[API_KEY_FILE_ENV] = str(Path(api_key_file).expanduser().resolve())
    settings = settings or ApiSettings.from_env()
    os.environ.update(settings.to_env())  # BUSI_API_HEADER_TIMEOUT_S among them, read by the protocol
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level,
                http=PROTOCOL, server_header=False, access_log=False, log_config=log_config(),
                timeout_keep_alive=int(max(1, round(settings.keep_alive_s))), timeout_graceful_shutdown=10)
