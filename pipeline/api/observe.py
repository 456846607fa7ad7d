"""What an operator watches: Prometheus metrics (``/metrics``), a request id on every response
(``X-Request-ID``, the client's own when it sends a sane one) and one access-log line per request with it;
the same middleware adds the security headers every answer carries."""

from __future__ import annotations

import logging
import re
import time
import uuid

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("pipeline.api.access")
REQUEST_ID_HEADER = "X-Request-ID"
# On every answer: pages (the docs) may load only this server's scripts, styles and images, so the docs never
# reach out (ReDoc's bundle would fetch its logo from a CDN), and no other site may frame them.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                 b"script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
]
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """The process's metrics in a registry of its own (several apps in one process do not collide)."""

    def __init__(self, routes: set[str]):
        self.routes = routes  # label values are these paths or "other": a scan of random URLs adds no series
        self.registry = CollectorRegistry()
        self.requests = Counter("busi_api_requests", "HTTP requests answered", ("method", "route", "status"),
                                registry=self.registry)
        self.latency = Histogram("busi_api_request_duration_seconds", "Time from request to response",
                                 ("route",), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.refusals = Counter("busi_api_refusals", "Images refused as out of scope", ("model_set",),
                                registry=self.registry)
        self.busy = Counter("busi_api_busy_rejections", "Requests answered 503 because the queue was full",
                            registry=self.registry)
        self.queue_depth = Gauge("busi_api_queue_depth", "Uploads waiting for a decode/prediction slot",
                                 registry=self.registry)
        self.in_progress = Gauge("busi_api_predictions_in_progress", "Uploads being decoded or predicted",
                                 registry=self.registry)

    def route(self, path: str) -> str:
        return path if path in self.routes else "other"

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is short and plain, else a new random one."""
    for key, value in headers:
        if key == b"x-request-id":
            text = value.decode("latin-1")
            if _SANE_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex


class ObserveMiddleware:
    """Request id and security headers, access log line, request counter and latency histogram for every request."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope.get("headers", []))
        scope.setdefault("state", {})["request_id"] = rid
        start, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode()), *SECURITY_HEADERS]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = self.metrics.route(scope["path"])
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(seconds)
            client = scope.get("client") or ("-", 0)
            access_log.info('%s "%s %s" %d %.1f ms request_id=%s', client[0], scope["method"], scope["path"],
                            status, seconds * 1e3, rid)


__all__ = ["ApiMetrics", "ObserveMiddleware", "REQUEST_ID_HEADER", "access_log", "request_id"]
