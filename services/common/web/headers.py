"""Headers every answer of every service carries."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from services.common.web.asgi import ASGIApp, Receive, Send

# Answers are per caller and change with the log: no cache may keep them, and no browser may
# read a JSON body (or a CSV a name like "<script>" reached) as anything but what it says.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
)


class SecurityHeaders:
    """Adds ``X-Content-Type-Options: nosniff`` and ``Cache-Control: no-store`` to every
    answer that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
