"""The subsidy service's composition root: the finance API, and the projector that feeds it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from kafka import KafkaConsumer

from services.common.kafka import make_consumer
from services.common.web.api import build_api
from services.subsidy.api import payout_routes, simulation_routes
from services.subsidy.api.routes import router
from services.subsidy.application import Subsidy
from services.subsidy.balances import Balances
from services.subsidy.feed import CachedHead, RegistryFeed
from services.subsidy.projector import Projector
from services.subsidy.settings import SubsidySettings
from services.subsidy.simulations import Simulations
from services.subsidy.store import EntryStore
from services.subsidy.web import mount_page
from services.subsidy.workbook_cache import WorkbookCache

log = logging.getLogger("tcr.subsidy")


def create_app(settings: SubsidySettings) -> FastAPI:
    """Wire the finance API over the subsidy store; opened at start-up, closed at shutdown."""
    schedule = settings.schedule()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = EntryStore(settings.subsidy_database_url.get_secret_value(), schedule)
        token = settings.registry_token.get_secret_value()
        feed = RegistryFeed(settings.registry_url, token, timeout=2.0)
        folder = settings.exports_cache_dir
        workbooks = WorkbookCache(folder) if folder is not None else None
        app.state.subsidy = Subsidy(store, schedule, CachedHead(feed), workbooks)
        app.state.balances = Balances(store, schedule)
        app.state.simulations = Simulations(store.engine, schedule)
        log.info("finance API ready: applied position %d", store.head().position)
        try:
            yield
        finally:
            feed.close()
            store.close()

    app = build_api(
        title="Technology contract subsidies",
        description=(
            "Yearly entitlements of the technology-transfer subsidy programme, computed from the "
            "registry's log by the policy in force and explained contract by contract. Amounts "
            'are yuan strings ("1200.00"). Finance and auditor tokens read.'
        ),
        router=router,
        tokens_file=settings.tokens_file,
        lifespan=lifespan,
        # The years a policy version is in force: any other is a 404, so the document says which.
        parameters={
            "year": {
                "minimum": schedule.first_year,
                "maximum": schedule.last_year,
                "examples": [schedule.last_year - 1],
            }
        },
    )
    app.include_router(payout_routes.router)
    app.include_router(simulation_routes.router)
    mount_page(app, settings.registry_url, settings.session_secret.get_secret_value())
    return app


def create_projector(settings: SubsidySettings) -> tuple[Projector, EntryStore, RegistryFeed]:
    """The consumer side: Kafka and the registry feed into the subsidy store."""
    store = EntryStore(settings.subsidy_database_url.get_secret_value(), settings.schedule())
    # A registry that hangs holds the loop (Kafka included) for at most this long; a page of
    # 5,000 entries (the feed's) takes well under a second.
    token = settings.registry_token.get_secret_value()
    feed = RegistryFeed(settings.registry_url, token, timeout=10.0)
    factory: Callable[[], KafkaConsumer] = partial(
        make_consumer, settings.kafka_bootstrap, settings.kafka_topic, settings.kafka_group
    )
    projector = Projector(store, feed, factory, gap_grace=settings.gap_grace_seconds)
    return projector, store, feed
