"""The subsidy service's composition root: the finance API, and the projector that feeds it."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from kafka import KafkaConsumer

from services.common.kafka import make_consumer
from services.common.logs import configure_logging
from services.common.policy.loader import load_policy
from services.common.runtime import settle_heap
from services.common.tokens import TokenBook
from services.common.web.errors import BodyLimit, install_error_handlers
from services.subsidy.api.routes import router
from services.subsidy.application import Subsidy
from services.subsidy.feed import RegistryFeed
from services.subsidy.projector import Projector
from services.subsidy.settings import SubsidySettings
from services.subsidy.store import EntryStore

log = logging.getLogger("tcr.subsidy")


def create_app(settings: SubsidySettings) -> FastAPI:
    """Wire the finance API over the subsidy store; opened at start-up, closed at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = EntryStore(settings.subsidy_database_url)
        feed = RegistryFeed(settings.registry_url, settings.registry_token, timeout=2.0)
        app.state.subsidy = Subsidy(store, load_policy(settings.policy_file), _cached_head(feed))
        log.info("finance API ready: applied position %d", store.head().position)
        try:
            yield
        finally:
            feed.close()
            store.close()

    app = FastAPI(
        title="Technology contract subsidies",
        version="1",
        description=(
            "Yearly entitlements of the technology-transfer subsidy programme, computed from the "
            "registry's log by the policy in force and explained contract by contract. Amounts "
            'are yuan strings ("1200.00"). Finance and auditor tokens read.'
        ),
        lifespan=lifespan,
    )
    app.state.tokens = TokenBook(settings.tokens_file)
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(BodyLimit)
    return app


def app_from_environment() -> FastAPI:
    """Factory for uvicorn: settings from the environment."""
    configure_logging()
    app = create_app(SubsidySettings())
    settle_heap()  # what is built by now lives as long as the server process
    return app


def create_projector(settings: SubsidySettings) -> tuple[Projector, EntryStore, RegistryFeed]:
    """The consumer side: Kafka and the registry feed into the subsidy store."""
    store = EntryStore(settings.subsidy_database_url)
    feed = RegistryFeed(settings.registry_url, settings.registry_token)
    factory: Callable[[], KafkaConsumer] = partial(
        make_consumer, settings.kafka_bootstrap, settings.kafka_topic, settings.kafka_group
    )
    projector = Projector(store, feed, factory, gap_grace=settings.gap_grace_seconds)
    return projector, store, feed


def _cached_head(feed: RegistryFeed, ttl: float = 1.0) -> Callable[[], int | None]:
    """The registry's head, asked at most once a second; None while it cannot be reached."""
    last: list[float | int | None] = [0.0, None]

    def head() -> int | None:
        now = time.monotonic()
        if now - float(last[0] or 0.0) >= ttl:
            try:
                last[1] = feed.head()
            except Exception:  # the registry being down must not break finance's reads
                last[1] = None
            last[0] = now
        value = last[1]
        return int(value) if value is not None else None

    return head
