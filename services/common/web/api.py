"""The FastAPI application every service builds the same way around its own routes."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from services.common.logs import configure_logging
from services.common.runtime import settle_heap
from services.common.settings import LogSettings
from services.common.tokens import TokenBook
from services.common.web.errors import BodyLimit, install_error_handlers
from services.common.web.headers import SecurityHeaders
from services.common.web.observe import Observe, add_metrics_route
from services.common.web.openapi import complete_document, serve_docs

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def build_api(
    *,
    title: str,
    description: str,
    router: APIRouter,
    tokens_file: Path,
    lifespan: Lifespan | None = None,
    parameters: dict[str, dict[str, Any]] | None = None,
) -> FastAPI:
    """Routes behind bearer tokens, refusals as JSON naming field and rule, bodies ≤ 1 MiB,
    every answer marked nosniff and no-store, counted, timed and logged; ``GET /metrics``;
    an OpenAPI document naming every refusal (``parameters``: see complete_document), and
    ``/docs`` served without a CDN."""
    # No trailing-slash redirects: Starlette builds their Location from the Host header, which
    # the client chooses (an open redirect, and a cache poisoner behind a proxy). No client of
    # these APIs needs one; a path with a stray slash is a 404 in the usual error shape.
    app = FastAPI(
        title=title,
        version="1",
        description=description,
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,  # served by serve_docs, from local assets
        redoc_url=None,
    )
    app.openapi = lambda: complete_document(app, parameters)  # type: ignore[method-assign]
    serve_docs(app)
    app.state.tokens = TokenBook(tokens_file)
    install_error_handlers(app)
    app.include_router(router)
    add_metrics_route(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)  # a 413 from BodyLimit carries them too
    app.add_middleware(Observe)  # outermost: every answer is counted and logged
    return app


def server_app(create_app: Callable[[Any], FastAPI], settings: Any) -> FastAPI:
    """What a uvicorn factory returns: logging set up, the app built, the heap settled."""
    log_settings = LogSettings()
    configure_logging(log_settings.log_format, access_log=log_settings.access_log)
    app = create_app(settings)
    settle_heap()  # what is built by now lives as long as the server process
    return app
