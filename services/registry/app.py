"""The registry's composition root: settings in, a FastAPI application out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from services.common.signing import load_or_create_key
from services.common.web.api import build_api
from services.registry.api.routes import router
from services.registry.application import Registry
from services.registry.imports.routes import UPLOAD_LIMIT
from services.registry.imports.routes import router as imports_router
from services.registry.settings import RegistrySettings
from services.registry.web import mount_page

log = logging.getLogger("tcr.registry")


def create_app(settings: RegistrySettings) -> FastAPI:
    """Wire the registry: its store and writer open at start-up and close at shutdown; the
    station page at ``/``."""
    schedule = settings.schedule()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database_url = settings.registry_database_url.get_secret_value()
        registry = Registry(
            database_url,
            max_group_events=settings.registry_max_group_events,
            signing_key=load_or_create_key(settings.signing_key_file),
            checkpoint_every=settings.checkpoint_every,
            schedule=schedule,
            # The bureau registers only under station ids that hold a token, as read now.
            stations=app.state.tokens.station_ids,
        )
        registry.start()
        app.state.registry = registry
        log.info(
            "registry ready: store %s, log head %d, tokens %s",
            _redact(database_url),
            registry.head(),
            settings.tokens_file,
        )
        try:
            yield
        finally:
            registry.close()

    routes = APIRouter()
    routes.include_router(router)
    routes.include_router(imports_router)
    app = build_api(
        title="Technology contract registry",
        description=(
            "Registration stations post contract registrations, invoices and bank transfer "
            "proofs; the science bureau files brokers and provincial funding. Every fact is an "
            "event in an append-only, hash-chained log (`GET /v1/events`). Amounts are yuan "
            'strings with at most two decimals ("1200000.00"); dates are YYYY-MM-DD.'
        ),
        router=routes,
        tokens_file=settings.tokens_file,
        lifespan=lifespan,
        body_limits={"/v1/imports": UPLOAD_LIMIT, "/upload": UPLOAD_LIMIT},
    )
    mount_page(app, settings.session_secret.get_secret_value())
    return app


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
