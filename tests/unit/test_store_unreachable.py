"""Which database errors mean the store is out of reach (the breaker opens), and which do not."""

from __future__ import annotations

import sqlite3

import eventsourcing.persistence
import psycopg
import psycopg.errors
import sqlalchemy.exc

from services.common.db import store_unreachable


def wrapped(orig: Exception, *, invalidated: bool = False) -> sqlalchemy.exc.DBAPIError:
    """``orig`` as SQLAlchemy raises it from the driver."""
    driver_error = sqlite3.Error if isinstance(orig, sqlite3.Error) else psycopg.Error
    error = sqlalchemy.exc.DBAPIError.instance(
        "SELECT 1", None, orig, driver_error, connection_invalidated=invalidated
    )
    assert isinstance(error, sqlalchemy.exc.DBAPIError)
    return error


def test_a_connection_that_cannot_be_made_means_the_store_is_unreachable() -> None:
    assert store_unreachable(wrapped(psycopg.OperationalError("connection refused")))


def test_a_connection_lost_on_use_means_the_store_is_unreachable() -> None:
    assert store_unreachable(wrapped(psycopg.OperationalError("closed"), invalidated=True))


def test_a_server_shutting_down_means_the_store_is_unreachable() -> None:
    assert store_unreachable(wrapped(psycopg.errors.AdminShutdown()))


def test_the_event_librarys_error_wrapping_an_outage_means_the_store_is_unreachable() -> None:
    outage = wrapped(psycopg.OperationalError("connection refused"))
    try:
        raise eventsourcing.persistence.OperationalError(str(outage)) from outage
    except eventsourcing.persistence.OperationalError as library_error:
        assert store_unreachable(library_error)


def test_statements_the_server_refused_are_not_an_outage() -> None:
    assert not store_unreachable(wrapped(psycopg.errors.DeadlockDetected()))
    assert not store_unreachable(wrapped(psycopg.errors.UniqueViolation()))
    assert not store_unreachable(wrapped(sqlite3.OperationalError("database is locked")))
    assert not store_unreachable(ValueError("not a database error"))
