"""Fixtures of the integration tests beyond the top-level ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from services.common.db import make_engine
from services.registry.store import create_tables


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The registry's own tables on a fresh store, and nothing written to them."""
    write_engine = make_engine(database_url)
    create_tables(write_engine)
    try:
        yield write_engine
    finally:
        write_engine.dispose()
