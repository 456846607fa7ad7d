"""The HTTP API's limits and access settings, read from ``BUSI_API_*`` environment variables.

``python -m pipeline serve`` writes its options into the environment, so every uvicorn worker process
(started by import string) reads the same settings; ``create_app(settings=...)`` takes them directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from pipeline.errors import BusiError

MAX_UPLOAD_MB = 50  # same limit as the dashboard (.streamlit/config.toml: server.maxUploadSize = 50, in MiB)
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
# Decoded pixels per request: 4096 x 4096. Ultrasound frames are 0.3-2 MP; the loader's own limit (40 MP)
# lets a 35 KB PNG of 6000 x 6000 zeros cost ~500 MiB while it is decoded and predicted.
API_MAX_PIXELS = 4096 * 4096
API_KEY_ENV = "BUSI_API_KEY"
API_KEY_FILE_ENV = "BUSI_API_KEY_FILE"


def _env_name(field_name: str) -> str:
    return f"BUSI_API_{field_name.upper()}"


@dataclass(frozen=True)
class ApiSettings:
    """Limits of one API process. Times in seconds; ``max_active`` uploads are decoded and predicted at once,
    ``max_queue`` more wait for a slot, and further ones get 503 with Retry-After."""

    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = API_MAX_PIXELS
    max_active: int = 2
    max_queue: int = 16
    header_timeout_s: float = 10.0  # from connection (or the previous response) to the end of the headers
    body_timeout_s: float = 20.0  # longest wait for the next piece of a request body
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    cors_origins: tuple[str, ...] = ()  # no CORS headers unless origins are given
    api_key: str | None = None  # None: no key needed

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_active"):
            if getattr(self, name) < 1:
                raise BusiError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.max_queue < 0:
            raise BusiError(f"max_queue must be 0 or more (got {self.max_queue})")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s"):
            if not getattr(self, name) > 0:
                raise BusiError(f"{name} must be above 0 (got {getattr(self, name)})")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ApiSettings:
        """Settings from ``BUSI_API_<FIELD>`` variables (origins comma-separated) and the API key from
        ``BUSI_API_KEY`` or the file named by ``BUSI_API_KEY_FILE``."""
        env = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            raw = env.get(_env_name(f.name))
            if raw is None or f.name == "api_key":
                continue
            try:
                if f.name == "cors_origins":
                    values[f.name] = tuple(o.strip() for o in raw.split(",") if o.strip())
                else:
                    values[f.name] = (float if f.name.endswith("_s") else int)(raw)
            except ValueError as exc:
                raise BusiError(f"{_env_name(f.name)}={raw!r} is not a number") from exc
        values["api_key"] = read_api_key(env.get(API_KEY_FILE_ENV)) if env.get(API_KEY_FILE_ENV) else \
            (env.get(API_KEY_ENV) or None)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The variables ``from_env`` reads back (without the key itself: pass it by file or ``BUSI_API_KEY``)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "api_key":
                continue
            out[_env_name(f.name)] = ",".join(value) if f.name == "cors_origins" else str(value)
        return out


def read_api_key(path: str | os.PathLike) -> str:
    """The key in ``path`` (first line, stripped); BusiError when the file is missing, unreadable or empty."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise BusiError(f"cannot read the API key file {path}: {exc.strerror or exc}") from exc
    key = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(key) < 16:
        raise BusiError(f"the API key in {path} is empty or shorter than 16 characters")
    return key


__all__ = ["API_MAX_PIXELS", "ApiSettings", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_MB", "read_api_key"]
