"""On PostgreSQL every statement is planned for its own parameters, however often it runs.

psycopg prepares a statement once it has run five times, and after five more PostgreSQL may
settle on one generic plan for it and keep it. With autovacuum off nothing re-plans it: a plan
made while a table was nearly empty went on scanning it whole once it held 300,000 entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text

from services.common.db import make_engine, make_read_only_engine
from tests.support.databases import fresh_postgres_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.parametrize("make", [make_engine, make_read_only_engine])
def test_a_statement_run_many_times_is_never_run_from_a_generic_plan(
    postgres_url: str, make: Callable[[str], Engine]
) -> None:
    owner = make_engine(postgres_url)
    with owner.begin() as conn:
        conn.execute(text("CREATE TABLE facts (key TEXT PRIMARY KEY, value TEXT NOT NULL)"))
    owner.dispose()
    engine = make(postgres_url)
    query = text("SELECT value FROM facts WHERE key = :key")
    try:
        with engine.connect() as conn:
            for i in range(15):
                conn.execute(query, {"key": f"key-{i}"}).all()
            generic, custom = conn.execute(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE '%FROM facts%'"
                )
            ).one()
    finally:
        engine.dispose()
    assert generic == 0
    assert custom >= 10  # prepared, and every run planned for its own parameters
