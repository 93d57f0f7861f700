"""How refusals look on the wire: one JSON shape naming the field and the rule."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.common.errors import ApiError

MAX_BODY_BYTES = 1024 * 1024


def install_error_handlers(app: FastAPI) -> None:
    """Map the service's errors and request validation errors to JSON bodies."""

    @app.exception_handler(ApiError)
    async def _registry_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.as_json(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_describe(e) for e in exc.errors()]
        first = errors[0]
        body: dict[str, Any] = {
            "error": "invalid",
            "field": first["field"],
            "message": first["message"],
            "errors": errors,
        }
        if first.get("index") is not None:
            body["index"] = first["index"]
        return JSONResponse(body, status_code=422)


def _describe(error: Any) -> dict[str, Any]:
    loc = list(error.get("loc", ()))
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]
    index = None
    if len(loc) >= 3 and loc[0] == "commands" and isinstance(loc[1], int):
        # Inside a batch: name the command by index, the field relative to its body.
        index, loc = loc[1], loc[3:] if loc[2] == "body" else loc[2:]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "json_invalid":
        # Its location is a character offset, not a field.
        message = f"malformed JSON: {error.get('ctx', {}).get('error', message)}"
        loc = []
    described = {
        "field": ".".join(str(p) for p in loc) or None,
        "message": message,
        "type": error.get("type"),
    }
    if index is not None:
        described["index"] = index
    return described


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuses request bodies over 1 MiB with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", ())).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.limit:
                await self._refuse(send)
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
            if seen > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> MutableMapping[str, Any]:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps(
            {
                "error": "too_large",
                "field": None,
                "message": f"request body over {self.limit} bytes",
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
