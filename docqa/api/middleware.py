"""ASGI middleware: per-request CORS from the keys' origin lists, request body limits, metrics and
security headers. Pure ASGI (no BaseHTTPMiddleware) so streamed answers pass through untouched."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docqa.api.errors import error_body
from docqa.api.keys import normalize_origin
from docqa.api.metrics import ApiMetrics
from rag.errors import DocqaError

ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Accept, Last-Event-ID"
EXPOSED_HEADERS = "Retry-After, X-Request-Id"
PREFLIGHT_MAX_AGE_S = 600
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # a caller's X-Request-Id is echoed only if it looks like one


async def _send_json(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class CORSFromKeys:
    """Answers preflights and adds ``Access-Control-Allow-Origin: <origin>`` only for origins that an
    active key lists (never ``*``). Whether *this* request's key may be used from that origin is the
    auth layer's check; this one only decides what the browser may read."""

    def __init__(self, app: ASGIApp, known_origins: Callable[[], frozenset[str]]) -> None:
        self.app = app
        self.known_origins = known_origins

    def _allowed(self, raw_origin: str) -> str | None:
        try:
            origin = normalize_origin(raw_origin)
        except DocqaError:
            return None
        return raw_origin if origin in self.known_origins() else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        raw_origin = headers.get("origin")
        if raw_origin is None:
            await self.app(scope, receive, send)
            return
        allowed = self._allowed(raw_origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            if allowed is None:
                await _send_json(
                    send,
                    403,
                    error_body(403, "origin_not_allowed", f"origin '{raw_origin}' is not listed by any API key"),
                    [(b"vary", b"Origin")],
                )
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", allowed.encode()),
                        (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                        (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                        (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
                        (b"vary", b"Origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")]
                if allowed is not None:
                    extra += [
                        (b"access-control-allow-origin", allowed.encode()),
                        (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
                    ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


class BodyLimit:
    """Refuses request bodies over a per-route limit with 413, by Content-Length up front and by
    counting while reading, so an oversized upload never lands on disk in full."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], tuple[int, str]]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self.limit_for(scope)
        message = f"request body too large: {what}"
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _send_json(send, 413, error_body(413, "too_large", message))
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise HTTPException(413, detail=message)
            return msg

        await self.app(scope, counting_receive, send)


class MetricsAndHeaders:
    """Counts requests by route template (not raw path: bounded label values) and times them to the
    last body byte; adds headers every response should carry, including an X-Request-Id to quote."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"no-referrer"),
                    ],
                }
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template, method).observe(time.perf_counter() - started)
