"""Prometheus metrics every process shares: the exposition, store errors, a metrics server.

Several uvicorn workers of one service share a port, so a scrape reaches one of them at random:
numbers per worker would jump between scrapes. ``tcr … serve --workers N`` (N > 1) therefore
runs in prometheus-client's multiprocess mode: each worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (a fresh folder per start, unless the operator names one), and
whichever worker answers ``/metrics`` sums them all. One process needs no folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, event

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# A ``_created`` series per counter doubles a scrape and tells nothing a restart does not.
disable_created_metrics()  # type: ignore[no-untyped-call]

STORE_ERRORS = Counter(
    "tcr_store_errors",
    "Errors the database driver raised, by class (OperationalError: unreachable or failed; "
    "IntegrityError: mostly races the writer retries).",
    ["error"],
)


def count_store_errors(engine: Engine) -> None:
    """Count every error the driver raises on ``engine``, whoever ran the statement."""

    @event.listens_for(engine, "handle_error")
    def _count(context: Any) -> None:
        STORE_ERRORS.labels(type(context.original_exception).__name__).inc()


def exposition() -> Callable[[], tuple[bytes, str]]:
    """What answers a scrape: this process's metrics, or every worker's in multiprocess mode."""
    registry: CollectorRegistry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]

    def scrape() -> tuple[bytes, str]:
        return generate_latest(registry), CONTENT_TYPE_LATEST

    return scrape


def prepare_workers(workers: int) -> Callable[[], None]:
    """Before starting ``workers`` server processes: a fresh multiprocess folder when there
    are several and the operator named none; returns what removes it afterwards."""
    if workers <= 1 or os.environ.get(MULTIPROC_ENV):
        return lambda: None
    folder = tempfile.mkdtemp(prefix="tcr-metrics-")
    os.environ[MULTIPROC_ENV] = folder  # inherited by the workers uvicorn spawns
    return lambda: shutil.rmtree(folder, ignore_errors=True)


def serve_metrics(port: int | None, host: str) -> None:
    """Expose this process's metrics on ``host:port`` from a daemon thread; None: not at all."""
    if port is not None:
        start_http_server(port, addr=host)
