"""HTTP API over the Predictor (FastAPI + uvicorn): ``python -m pipeline serve``; see ``pipeline.api.app``."""

from pipeline.api.app import MAX_UPLOAD_BYTES, create_app

__all__ = ["MAX_UPLOAD_BYTES", "create_app"]
