"""uvicorn's h11 protocol with a header read timeout and JSON for requests that are not valid HTTP.

uvicorn times out idle keep-alive connections but not a client that sends part of its headers and stalls
(nor a fresh connection that sends nothing): here such a connection gets a 408 and is closed after
``BUSI_API_HEADER_TIMEOUT_S`` seconds (default 10), counted from the connection or the previous response.
Body read timeouts are the app's (``pipeline.api.guards.BodyGuard``). Used by ``pipeline.api.server``
as ``http="pipeline.api.protocol:GuardedH11Protocol"``.
"""

from __future__ import annotations

import asyncio
import json
import os

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_ENV = "BUSI_API_HEADER_TIMEOUT_S"


def _raw_json_response(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    """H11Protocol + header timeout + a JSON 400 for malformed requests (no text/plain, no server banner)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.header_timeout_s = float(os.environ.get(HEADER_TIMEOUT_ENV, "10"))
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        self._heard = True
        super().data_received(data)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._heard = False
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)
        self._timed_cycle = self.cycle

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not getattr(self, "_timed_cycle", None):  # a new request's headers are complete
            self._cancel_header_timer()
            self._timed_cycle = self.cycle

    def on_response_complete(self) -> None:
        self._arm_header_timer()  # before: a pipelined request handled inside cancels it again
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return
        if self.cycle is not None and not self._heard:  # an idle keep-alive connection: just closed
            self.transport.close()
            return
        self.transport.write(_raw_json_response(
            408, "Request Timeout", f"the request headers did not arrive within {self.header_timeout_s:g} s"))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self.logger.warning("invalid HTTP request from %s", self.client)
        self.transport.write(_raw_json_response(
            400, "Bad Request", "the request is not valid HTTP/1.1 (a malformed request line or header, e.g. a "
                                "Content-Length that is not a number)"))
        self.transport.close()


__all__ = ["GuardedH11Protocol", "HEADER_TIMEOUT_ENV"]
