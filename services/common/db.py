"""Database engines for the services' own tables, on SQLite files or PostgreSQL."""

from __future__ import annotations

import fcntl
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy.exc
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Engine,
    Integer,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

# Log positions: 64-bit on PostgreSQL; SQLite's INTEGER is 64-bit already and only a column
# declared INTEGER becomes the rowid.
BIGINT = BigInteger().with_variant(Integer(), "sqlite")


def make_engine(url: str) -> Engine:
    """An engine for write transactions that read first.

    On SQLite the file's folder is created, the file is put in WAL mode (readers never wait for
    the writer) and every transaction starts with BEGIN IMMEDIATE, so a transaction that reads
    and then writes holds the write lock from its start: several processes queue instead of
    failing with SQLITE_BUSY.
    """
    # No pre-ping: it doubled the round trips of short queries. A connection the server
    # dropped fails one statement (the writer retries it); the pool then replaces it.
    kwargs: dict[str, Any] = {"pool_recycle": 3600}
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA journal_mode=WAL")

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


_SCHEMA_LOCK_KEY = 0x7463_7200  # "tcr\0": PostgreSQL advisory lock taken while creating tables


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Serialise table creation between processes opening a new store at the same moment.

    ``CREATE TABLE`` checked first is still a race: two processes may both see no table, and
    the second fails. PostgreSQL: an advisory lock; a SQLite file: a lock file beside it.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.schema-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class SingleHolderLock:
    """A database-wide lock at most one process holds, kept until released or the process
    ends: a PostgreSQL advisory lock on a connection of its own, or an exclusive ``flock`` on
    a file beside a SQLite database. :meth:`try_hold` never waits; a holder whose connection
    dropped has lost the lock and finds out on its next call."""

    def __init__(self, engine: Engine, key: int, suffix: str) -> None:
        self._engine = engine
        self._key = key
        self._suffix = suffix
        self._held: Any = None  # the connection or the open lock file
        self.holding = False

    def try_hold(self) -> bool:
        self.holding = self._try_hold()
        return self.holding

    def _try_hold(self) -> bool:
        if self._engine.dialect.name == "postgresql":
            return self._try_advisory()
        database = self._engine.url.database
        if not database or database == ":memory:":
            return True  # one process's own database: nobody to share it with
        if self._held is None:
            lock_file = open(f"{database}.{self._suffix}", "a")  # noqa: SIM115 (kept open)
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock_file.close()
                return False
            self._held = lock_file
        return True

    def _try_advisory(self) -> bool:
        try:
            if self._held is not None:
                self._held.execute(text("SELECT 1"))  # still our session, still our lock
                return True
            conn = self._engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
            if got.scalar_one():
                conn.commit()
                self._held = conn
                return True
            conn.close()
            return False
        except sqlalchemy.exc.DBAPIError:
            self.release()
            return False

    def release(self) -> None:
        self.holding = False
        held, self._held = self._held, None
        if held is None:
            return
        with suppress(Exception):  # a dropped session released it already
            if isinstance(held, Connection):
                held.invalidate()  # ends the session, and its lock: not back into the pool
            held.close()


def insert_columns(
    session: Session,
    table: Table,
    columns: dict[str, Sequence[Any]],
    *,
    returning: str | None = None,
) -> list[Any]:
    """Insert rows given column by column (equal lengths), in order, in the session's
    transaction; with ``returning``, that column's values in row order (PostgreSQL only).

    On PostgreSQL the rows travel as one array per column through ``unnest``: a single short
    statement whatever the count. A multi-row ``VALUES`` list is re-parsed by the driver for
    every new count and ``executemany`` pays a statement's work per row; for the registry's
    groups of a thousand events this took the writer from ~330 to ~160 µs of CPU per event.
    Ids drawn from a sequence are assigned in row order (``ORDER BY`` the array ordinality).
    """
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        if returning is not None:
            raise NotImplementedError("insert_columns(returning=…) is for PostgreSQL")
        names = list(columns)
        session.execute(
            insert(table),
            [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)],
        )
        return []
    statement = _unnest_insert(table, tuple(columns), returning, dialect)
    # Sent straight to the driver so that the arrays go in binary (``%b``): psycopg writes
    # text arrays element by element in Python, eight times slower.
    result = session.connection().exec_driver_sql(
        statement, {f"c{i}": list(values) for i, values in enumerate(columns.values())}
    )
    return list(result.scalars()) if returning is not None else []


@lru_cache(maxsize=64)
def _unnest_insert(
    table: Table, names: tuple[str, ...], returning: str | None, dialect: Dialect
) -> str:
    arrays = ", ".join(
        f"CAST(%(c{i})b AS {table.c[name].type.compile(dialect=dialect)}[])"
        for i, name in enumerate(names)
    )
    listed = ", ".join(f'"{name}"' for name in names)
    sql = (
        f'INSERT INTO "{table.name}" ({listed}) SELECT {listed} FROM unnest({arrays})'
        f" WITH ORDINALITY AS rows ({listed}, row_number) ORDER BY row_number"
    )
    if returning is not None:
        sql += f' RETURNING "{returning}"'
    return sql


def one_of(
    column: ColumnElement[Any], values: Collection[Any], dialect: Dialect
) -> ColumnElement[bool]:
    """``column IN (values)``, written ``column = ANY(array)`` on PostgreSQL: one parameter
    whatever the count, so the statement stays short and the driver's statement cache keeps it
    (an ``IN`` list of hundreds is a new statement for every count, parsed each time)."""
    if dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)
