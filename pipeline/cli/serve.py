"""``python -m pipeline serve``: the HTTP API (GET /health, GET /version, POST /predict, GET /metrics; docs at /docs)."""

from __future__ import annotations

import argparse
import dataclasses

from pipeline.api.settings import ApiSettings


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    d = ApiSettings()
    p = sub.add_parser("serve", help="HTTP API: /health, /version, /predict, /metrics (OpenAPI docs at /docs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--models-dir", help="trained models (default: $BUSI_MODELS_DIR, else models/)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes, each with its own copy of the models (about one per CPU core)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--api-key-file", help="require the key in this file (first line) as X-API-Key on /predict, "
                                          "/version and /metrics (or set BUSI_API_KEY)")
    p.add_argument("--cors-origin", action="append", default=None, metavar="ORIGIN",
                   help="allow browser pages from this origin (repeatable; default: no CORS)")
    p.add_argument("--max-active", type=int, help=f"uploads decoded and predicted at once (default {d.max_active})")
    p.add_argument("--max-queue", type=int, help=f"uploads waiting for a slot before 503 (default {d.max_queue})")
    p.add_argument("--max-pixels", type=int, help=f"decoded pixels per image (default {d.max_pixels:,})")
    p.add_argument("--header-timeout", type=float, dest="header_timeout_s",
                   help=f"seconds for the request headers (default {d.header_timeout_s:g})")
    p.add_argument("--body-timeout", type=float, dest="body_timeout_s",
                   help=f"seconds without body data before 408 (default {d.body_timeout_s:g})")
    p.add_argument("--keep-alive", type=float, dest="keep_alive_s",
                   help=f"seconds an idle keep-alive connection stays open (default {d.keep_alive_s:g})")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from pipeline.api.server import serve

    settings = ApiSettings.from_env()
    chosen = {f.name: getattr(args, f.name) for f in dataclasses.fields(ApiSettings)
              if getattr(args, f.name, None) is not None}
    if args.cors_origin:
        chosen["cors_origins"] = tuple(args.cors_origin)
    serve(host=args.host, port=args.port, models_dir=args.models_dir, workers=args.workers, log_level=args.log_level,
          settings=dataclasses.replace(settings, **chosen), api_key_file=args.api_key_file)
    return 0
