"""Each request counted, timed and logged: by route template, never by raw path.

Labels are the route's template (``/v1/contracts/{registration_no}``), the method and the
status, so the number of series stays bounded whatever clients send: unknown paths share the
label ``unmatched``, unknown methods ``OTHER``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import Counter, Histogram
from starlette.routing import Mount, Route

from services.common.metrics import exposition
from services.common.web import context
from services.common.web.asgi import ASGIApp, Receive, Send

log = logging.getLogger("tcr.http")

REQUESTS = Counter(
    "tcr_http_requests", "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)  # fmt: skip
LATENCY = Histogram(
    "tcr_http_request_duration_seconds", "Time to answer an HTTP request, by route template.",
    ["method", "route"],
)  # fmt: skip

METRICS_PATH = "/metrics"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A caller's id is kept if it is short and plain, so it cannot forge log lines or headers.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Observe:
    """Gives every request an id (``X-Request-ID``, the caller's or a new one, echoed back),
    counts and times it, and logs one line when it is answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        info = context.begin(request_id)
        status = 500  # what the client gets if the app raises before answering
        started = time.perf_counter()

        async def observed(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = _route(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(seconds)
            if route != METRICS_PATH and log.isEnabledFor(logging.INFO):
                extra: dict[str, Any] = {
                    "method": method,
                    "route": route,
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "principal": info.principal,
                }
                if info.error is not None:
                    extra.update(error=info.error, field=info.field)
                log.info("%s %s %d", method, route, status, extra=extra)


def add_metrics_route(app: FastAPI) -> None:
    """``GET /metrics`` in Prometheus text format: no token (restrict it at the proxy), and
    not in the OpenAPI document (it is for the scraper, not for clients)."""
    scrape = exposition()

    async def metrics() -> Response:
        body, content_type = scrape()
        return Response(body, media_type=content_type)

    app.add_api_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)


def _request_id(scope: MutableMapping[str, Any]) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given = bytes(value).decode("latin-1")
            if _REQUEST_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


def _route(scope: MutableMapping[str, Any]) -> str:
    route = scope.get("route")
    path: str = route.path if isinstance(route, Route | Mount) else "unmatched"
    return path
