"""What keeps one API process usable under load and misuse: the body guard (size and read timeout), the work
gate (a bounded number of decodes/predictions at once, a small queue, 503 + Retry-After beyond it) and the
optional API key."""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.api.responses import error

API_KEY_HEADER = "X-API-Key"


class _BodyRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class BodyGuard:
    """413 for request bodies over ``max_bytes``, 408 when the client stops sending its body for ``timeout_s``.

    Checks Content-Length before anything is read and counts the bytes actually received (a missing or lying
    header, chunked uploads, cannot bypass the limit). A refused body closes the connection.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def _too_large(self, size: int | None = None) -> _BodyRefused:
        got = f" ({size / 2**20:.1f} MiB)" if size is not None else ""
        return _BodyRefused(413, f"the upload is too large{got}; the limit is {self.max_bytes / 2**20:g} MiB.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(self._too_large(int(declared)), scope, receive, send)
            return
        received, refused, started, complete = 0, None, False, False

        async def guarded_receive() -> Message:
            nonlocal received, refused, complete
            if refused is not None:
                raise refused
            if complete:  # the body is in: later calls wait for a disconnect, without a deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                refused = _BodyRefused(408, f"the request body stopped arriving (nothing for {self.timeout_s:g} s); "
                                            "send it again")
                raise refused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    refused = self._too_large()
                    raise refused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused is not None:  # whatever the app answers to the interrupted body is replaced
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refused is None:
                raise
        if refused is not None and not started:
            await self._refuse(refused, scope, receive, send)

    @staticmethod
    async def _refuse(refused: _BodyRefused, scope: Scope, receive: Receive, send: Send) -> None:
        await error(refused.status, str(refused), headers={"connection": "close"})(scope, receive, send)


class Busy(Exception):
    """The work gate's queue is full; ``retry_after`` is a whole number of seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy ({retry_after} s); try again")
        self.retry_after = retry_after


class WorkGate:
    """At most ``max_active`` jobs run at once and ``max_queue`` wait; a job beyond that raises Busy at once.

    Bounds the memory of decoding (each job holds one decoded image) and keeps latency bounded: a client
    that would wait behind a full queue is told to come back (Retry-After, from the recent job time).
    """

    def __init__(self, max_active: int, max_queue: int):
        self.max_active, self.max_queue = max_active, max_queue
        self._slots = asyncio.Semaphore(max_active)
        self.waiting = 0
        self.active = 0
        self._job_s = 0.5  # running mean of a job's duration, seconds

    def retry_after(self) -> int:
        """Seconds until the queue has likely moved by one place."""
        return max(1, math.ceil((self.waiting + 1) * self._job_s / self.max_active))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the slots for the body of the ``async with``; Busy when the queue is full."""
        if self.active >= self.max_active and self.waiting >= self.max_queue:
            raise Busy(self.retry_after())
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self.active -= 1
            self._slots.release()
            self._job_s = 0.8 * self._job_s + 0.2 * (time.perf_counter() - start)


def key_matches(expected: str | None, headers: Any) -> bool:
    """True when no key is configured, or ``X-API-Key`` / ``Authorization: Bearer`` carries it."""
    if expected is None:
        return True
    given = headers.get(API_KEY_HEADER) or ""
    auth = headers.get("authorization") or ""
    if not given and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    return hmac.compare_digest(given.encode(), expected.encode())


__all__ = ["API_KEY_HEADER", "BodyGuard", "Busy", "WorkGate", "key_matches"]
