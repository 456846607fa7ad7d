"""``python -m pipeline serve``: the HTTP API (GET /health, GET /version, POST /predict; docs at /docs)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser("serve", help="HTTP API: /health, /version, /predict (OpenAPI docs at /docs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--models-dir", help="trained models (default: $BUSI_MODELS_DIR, else models/)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes, each with its own copy of the models (about one per CPU core)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from pipeline.api.server import serve

    serve(host=args.host, port=args.port, models_dir=args.models_dir, workers=args.workers, log_level=args.log_level)
    return 0
