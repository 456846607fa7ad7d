"""HTTP API over the Predictor (FastAPI + uvicorn): ``python -m pipeline serve``; see ``pipeline.api.app``.

``create_app`` is imported on first use, so ``pipeline.api.settings`` stays light for the CLI's parser.
"""

from pipeline.api.settings import MAX_UPLOAD_BYTES, ApiSettings


def __getattr__(name: str):
    if name == "create_app":
        from pipeline.api.app import create_app

        return create_app
    raise AttributeError(f"module 'pipeline.api' has no attribute {name!r}")


__all__ = ["MAX_UPLOAD_BYTES", "ApiSettings", "create_app"]
