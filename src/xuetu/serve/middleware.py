"""ASGI middleware: request body limit, bearer-key auth, and metrics with a structured access log.

Written as plain ASGI (not BaseHTTPMiddleware) so streaming responses pass straight through and
their true end is what the latency metric sees.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid

from xuetu.serve.errors import error_response
from xuetu.serve.web import is_public

access_log = logging.getLogger("xuetu.access")


class _TooLarge(Exception):
    pass


class BodyLimit:
    """413 for bodies over `limit`; file uploads (knowledge-base documents, datasets) get the larger `upload_limit`."""

    def __init__(self, app, limit: int, upload_limit: int | None = None):
        self.app, self.default, self.upload_limit = app, limit, upload_limit or limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        upload = scope.get("method") == "PUT" and (path.startswith("/v1/datasets/")
                                                   or path.startswith("/v1/kb/") and "/documents/" in path)
        limit = self.upload_limit if upload else self.default
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = error_response(path, 413, f"request body is larger than {limit} bytes", code="request_too_large")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await too_large(scope, receive, send)
        seen, started = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def watch(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except _TooLarge:
            if not started:
                await too_large(scope, receive, send)


class Deadline:
    """Every request ends within `seconds`: one that has not answered by then gets 504; a stream is ended
    (cancelling its generation, which frees its place in the batch)."""

    def __init__(self, app, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = finished = False

        async def watch(message):
            nonlocal started, finished
            started = started or message["type"] == "http.response.start"
            finished = finished or message["type"] == "http.response.body" and not message.get("more_body", False)
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, watch)
        except TimeoutError:
            if not started:
                await error_response(scope["path"], 504, f"the request took longer than {self.seconds:g} s, this "
                                     "server's limit per request (xuetu serve --request-timeout)",
                                     type="server_error", code="timeout")(scope, receive, send)
            elif not finished:
                await send({"type": "http.response.body", "body": b"", "more_body": False})


class BearerAuth:
    OPEN = {"/health"}

    def __init__(self, app, keys: list[str]):
        self.app, self.keys = app, [k.encode() for k in keys]

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or not self.keys or scope["path"] in self.OPEN or scope["method"] == "OPTIONS"
                or scope["method"] in ("GET", "HEAD") and is_public(scope["path"])):
            return await self.app(scope, receive, send)
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        token = token.strip()
        if scheme.lower() == b"bearer" and token and any(hmac.compare_digest(token, k) for k in self.keys):
            return await self.app(scope, receive, send)
        msg = "missing API key: send 'Authorization: Bearer <key>'" if not header else "invalid API key"
        response = error_response(scope["path"], 401, msg, code="invalid_api_key",
                                  headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


class Observe:
    """Counts requests by route template and status, times them to the last byte, and logs each one."""

    def __init__(self, app, metrics, enabled_log: bool = True):
        self.app, self.metrics, self.enabled_log = app, metrics, enabled_log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500
        request_id = uuid.uuid4().hex[:12]

        async def watch(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - start
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            if self.enabled_log:
                client = scope.get("client") or ("", 0)
                access_log.info(json.dumps({
                    "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "id": request_id,
                    "method": scope["method"], "path": scope["path"], "route": route, "status": status,
                    "ms": round(elapsed * 1000, 1), "client": client[0]}))
