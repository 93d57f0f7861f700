"""Real databases for tests: SQLite files, and PostgreSQL databases created per test.

PostgreSQL comes from TEST_DATABASE_URL, else 127.0.0.1:5432 (user postgres), else a
testcontainers container where Docker runs; failing all three, the tests that need it skip
and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import psycopg
from psycopg import sql

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@cache
def postgres_server() -> tuple[str | None, str]:
    """(admin URL of a reachable server, or None; why not)."""
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_SERVER)
    try:
        with psycopg.connect(url, connect_timeout=3):
            return url, ""
    except psycopg.Error as exc:
        reason = f"no PostgreSQL at {url} ({exc.__class__.__name__})"
    try:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16")
        container.start()
        return container.get_connection_url(driver=None), ""
    except Exception as exc:  # no Docker here: say so and skip
        return None, f"{reason}; testcontainers: {exc.__class__.__name__}"


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards (SQLAlchemy URL)."""
    server, why = postgres_server()
    if server is None:
        import pytest

        pytest.skip(why)
    name = f"tcr_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
