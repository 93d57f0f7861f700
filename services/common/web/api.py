"""The FastAPI application every service builds the same way around its own routes."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI

from services.common.logs import configure_logging
from services.common.metrics import prepare_workers
from services.common.runtime import settle_heap
from services.common.settings import LogSettings, TcrSettings
from services.common.tokens import TokenBook
from services.common.web.errors import BodyLimit, install_error_handlers
from services.common.web.headers import SecurityHeaders
from services.common.web.observe import Observe, add_metrics_route
from services.common.web.openapi import complete_document, serve_docs

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
Settings = TypeVar("Settings", bound=TcrSettings)


def build_api(
    *,
    title: str,
    description: str,
    router: APIRouter,
    tokens_file: Path,
    lifespan: Lifespan | None = None,
    parameters: dict[str, dict[str, Any]] | None = None,
    body_limits: dict[str, int] | None = None,
) -> FastAPI:
    """Routes behind bearer tokens, refusals as JSON naming field and rule, bodies ≤ 1 MiB,
    every answer marked nosniff and no-store, counted, timed and logged; ``GET /metrics``;
    an OpenAPI document naming every refusal (``parameters``: see complete_document), and
    ``/docs`` served without a CDN. ``body_limits``: paths taking larger bodies (uploads)."""
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
    app.add_middleware(BodyLimit, larger=body_limits)
    app.add_middleware(SecurityHeaders)  # a 413 from BodyLimit carries them too
    app.add_middleware(Observe)  # outermost: every answer is counted and logged
    return app


def server_app(
    create_app: Callable[[Settings], FastAPI], settings: Settings, log_settings: LogSettings
) -> FastAPI:
    """What a server process runs: logging set up, the app built, the heap settled."""
    configure_logging(log_settings.log_format, access_log=log_settings.access_log)
    app = create_app(settings)
    settle_heap()  # what is built by now lives as long as the server process
    return app


def serve(create_app: Callable[[Settings], FastAPI], settings: Settings, args: Any) -> int:
    """Serve ``create_app(settings)`` with the CLI's --host, --port, --workers, --log-level and
    --no-access-log.

    Uvicorn's own records go through our handler (JSON by default) and its access log stays
    off: the application logs each request itself, with its id, route, principal and duration.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    quiet = not getattr(args, "access_log", True)
    log_settings = LogSettings(access_log=False) if quiet else LogSettings()
    configure_logging(log_settings.log_format, access_log=log_settings.access_log)
    factory = partial(server_app, create_app, settings, log_settings)
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "log_config": None,
        "access_log": False,
    }
    workers: int = getattr(args, "workers", 1)
    remove_metrics_folder = prepare_workers(workers)
    try:
        if workers == 1:
            uvicorn.run(factory, **options)
        else:
            # uvicorn.run() starts workers only from an import string, which would leave their
            # settings to the environment; its supervisor hands each worker the pickled config,
            # our settings inside. tests/integration/test_metrics_workers.py and
            # test_settings.py start two workers: a uvicorn that changes this fails there.
            config = uvicorn.Config(factory, workers=workers, **options)
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        remove_metrics_folder()
    return 0
