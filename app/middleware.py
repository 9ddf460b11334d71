"""ASGI middleware: the cap on requests in flight, the request body limit and the access log."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("dutyline.http")


class _TooLarge(BaseException):
    pass


def _error(status: int, code: str, message: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"code": code, "message": message, "detail": message, "errors": []}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, body


class InFlightLimit:
    """At most `limit` requests are handled at once; the others wait their turn on the event loop.

    A request holds its database connection (and on SQLite the write lock) from its first query, in one
    worker thread, until its commit, in another; between the two it needs a free worker thread again. Were
    more requests let in than the pool has connections, the threads could all be taken by requests waiting
    for a connection while the requests holding the connections wait for a thread: nothing moves until the
    pool's timeout. Keeping `limit` below the pool's size and the thread count keeps every request moving.
    Paths in `exempt` (health checks, the built-in Twilio simulator) never touch the database and skip the queue.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()  # a semaphore belongs to one loop (tests may serve on several)
        slots = self._slots.get(loop)
        if slots is None:
            self._slots = {loop: (slots := asyncio.Semaphore(self.limit))}
        async with slots:
            await self.app(scope, receive, send)


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413, whether or not Content-Length is declared.

    `larger` lifts the limit for uploads under a path prefix (photos, problem lists), never below `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = sorted(((p, max(n, max_bytes)) for p, n in (larger or {}).items()), key=lambda x: -len(x[0]))

    def _limit(self, path: str) -> int:
        return next((n for prefix, n in self.larger if path.startswith(prefix)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        start, body = _error(413, "payload_too_large", f"request body exceeds {limit} bytes")
        await send(start)
        await send({"type": "http.response.body", "body": body})


class AccessLog:
    """One structured line per request: method, path (no query string: it may carry tokens), status, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = request_id or uuid.uuid4().hex[:16]

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "request_id": request_id,
                },
            )
