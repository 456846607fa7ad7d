"""The API's JSON: numpy-aware rendering, the one error body, and no absolute paths in anything sent."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.responses import JSONResponse

from pipeline import paths

# an absolute POSIX path of two or more parts (as in "model file /srv/busi/models/unet.keras is ...")
_ABSOLUTE = re.compile(r"(?<![\w.:/-])/(?:[^\s/'\"(),;:]+/)+([^\s/'\"(),;:]*)")


def redact_paths(text: str) -> str:
    """``text`` with absolute paths replaced by their last part (e.g. ``/srv/models/unet.keras`` -> ``unet.keras``),
    so no response tells a client how the server's disk is laid out."""
    return _ABSOLUTE.sub(lambda m: m.group(1) or m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, (Path, os.PathLike)):
        return Path(value).name
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class JSON(JSONResponse):
    """JSONResponse that also writes numpy scalars/arrays (records may gain fields of any numeric type)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, default=_jsonable,
                          separators=(",", ":")).encode("utf-8")


def error(status_code: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSON:
    """The one error body: ``{"error": message}`` (plus ``extra`` keys), absolute paths removed."""
    return JSON({"error": redact_paths(message), **extra}, status_code=status_code, headers=headers)


def models_label(models_dir: Path) -> str:
    """How a response names the models folder: relative to the project when inside it, else its name."""
    try:
        return str(models_dir.resolve().relative_to(paths.PROJECT_ROOT))
    except ValueError:
        return models_dir.name


__all__ = ["JSON", "error", "models_label", "redact_paths"]
