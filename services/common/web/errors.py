"""How refusals look on the wire: one JSON shape naming the field and the rule, on every route."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import orjson
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from services.common.db import store_unavailable, store_unreachable
from services.common.errors import DomainError
from services.common.web.asgi import ASGIApp, Receive, Send
from services.common.web.context import note_refusal
from services.common.web.headers import SECURITY_HEADERS
from services.common.web.refusals import refusal
from services.common.wording import schema_error_in_chinese

MAX_BODY_BYTES = 1024 * 1024
MAX_ERRORS_LISTED = 20  # a body with 70,000 unknown keys once got a 6 MB list back

log = logging.getLogger("tcr.web")

# What the framework's own refusals (no route, wrong method, unparsable body) are called.
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI) -> None:
    """Map the service's errors, request validation errors and the framework's own refusals
    (404, 405, unparsable bodies, unexpected failures) to the one JSON shape."""

    @app.exception_handler(DomainError)
    async def _refused(_: Request, exc: DomainError) -> JSONResponse:
        status, body = refusal(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        note_refusal(body)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        body = validation_body(exc.errors())
        note_refusal(body)
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
            message_zh = f"没有此路径：{request.method} {request.url.path}"
        elif exc.status_code == 405:
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; {', '.join(allowed)} is"
            message_zh = f"此路径不接受 {request.method}；可用：{'、'.join(allowed)}"
        else:
            message = str(exc.detail)
            message_zh = f"请求无法处理：{message}"
        body = {
            "error": _HTTP_CODES.get(exc.status_code, "bad_request"),
            "field": None,
            "message": message,
            "message_zh": message_zh,
        }
        note_refusal(body)
        return JSONResponse(body, status_code=exc.status_code, headers=headers or None)

    @app.exception_handler(sqlalchemy.exc.DBAPIError)
    async def _store_error(request: Request, exc: sqlalchemy.exc.DBAPIError) -> JSONResponse:
        # Here, not in the catch-all below: the server-error middleware that runs that one
        # re-raises after answering, and the server then logs a traceback and drops the
        # connection. An outage is no fault of the request: one line, and a 503.
        if not store_unreachable(exc):
            raise exc
        log.warning("store unreachable on %s %s: %s", request.method, request.url.path, exc)
        status, body = refusal(store_unavailable())
        return JSONResponse(body, status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected failure on %s %s", request.method, request.url.path, exc_info=exc)
        body = {
            "error": "internal",
            "field": None,
            "message": "the service failed; see its log",
            "message_zh": "服务内部出错；请查看服务日志",
        }
        # Answered outside the middlewares (by the server-error one): set its headers here.
        headers = {n.decode(): v.decode() for n, v in SECURITY_HEADERS}
        return JSONResponse(body, status_code=500, headers=headers)


def validation_body(errors: Any) -> dict[str, Any]:
    """The refusal of a request that failed validation: the first error as field and message,
    then at most ``MAX_ERRORS_LISTED`` errors and how many there were in all."""
    listed = [_describe(e) for e in errors[:MAX_ERRORS_LISTED]]
    first = listed[0]
    body: dict[str, Any] = {
        "error": "invalid",
        "field": first["field"],
        "message": first["message"],
        "message_zh": first["message_zh"],
        "errors": listed,
        "error_count": len(errors),
    }
    if first.get("index") is not None:
        body["index"] = first["index"]
    return body


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at this path: several routes may share a
    path, and an included router is one route to Starlette, so each method is tried."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def described(errors: Any) -> list[dict[str, Any]]:
    """Each schema error of a body as ``{field, rule, message, message_zh}``."""
    return [
        {"field": d["field"], "rule": d["type"], "message": d["message"], "message_zh": zh}
        for d, zh in ((_describe(e), schema_error_in_chinese(e)) for e in errors)
    ]


def _describe(error: Any) -> dict[str, Any]:
    loc = list(error.get("loc", ()))
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]
    index = None
    if len(loc) >= 3 and loc[0] == "commands" and isinstance(loc[1], int):
        # Inside a batch: name the command by index, the field relative to its body.
        index, loc = loc[1], loc[3:] if loc[2] == "body" else loc[2:]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    message_zh = schema_error_in_chinese(error)
    if error.get("type") == "json_invalid":
        # Its location is a character offset, not a field.
        message = f"malformed JSON: {error.get('ctx', {}).get('error', message)}"
        message_zh = f"JSON 格式错误：{error.get('ctx', {}).get('error', message)}"
        loc = []
    described = {
        "field": ".".join(str(p) for p in loc) or None,
        "message": message,
        "message_zh": message_zh,
        "type": error.get("type"),
    }
    if index is not None:
        described["index"] = index
    return described


class BodyLimit:
    """Refuses request bodies over 1 MiB with 413, whether or not Content-Length is sent."""

    def __init__(
        self, app: ASGIApp, limit: int = MAX_BODY_BYTES, larger: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.larger = larger or {}  # path → its own limit (a spreadsheet upload)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.limit)
        length = dict(scope.get("headers", ())).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > limit:
                await self._refuse(send, limit)
                return
            await self.app(scope, receive, send)  # the server holds the body to its length
            return
        # No length given (chunked): read the body here, so an oversized one never reaches
        # the route, then hand it on as it came.
        messages: list[MutableMapping[str, Any]] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > limit:
                await self._refuse(send, limit)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> MutableMapping[str, Any]:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = orjson.dumps(
            {
                "error": "too_large",
                "field": None,
                "message": f"request body over {limit} bytes",
                "message_zh": f"请求体超过 {limit} 字节",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
