"""Database engines on SQLite files or PostgreSQL, and the locks that processes sharing one take."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy.exc
from sqlalchemy import BigInteger, Engine, Integer, create_engine, event, make_url, text
from sqlalchemy.engine import Connection

from services.common.metrics import count_store_errors

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
    count_store_errors(engine)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA journal_mode=WAL")

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_read_only_engine(url: str) -> Engine:
    """An engine that cannot write, for checking a copy or through a role that may only read.

    A SQLite file is opened by a ``mode=ro`` URI (nothing created: no folder, no file, no WAL
    switch, no ``BEGIN IMMEDIATE``); PostgreSQL sessions start read-only, so that even a role
    allowed to write writes nothing. Raises ``FileNotFoundError`` for a SQLite file not there.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise ValueError("a read-only check needs a SQLite file, not an in-memory database")
        if not database.startswith("file:"):
            path = Path(database).absolute()
            if not path.is_file():
                raise FileNotFoundError(f"no SQLite database at {path}")
            database = f"file:{quote(str(path))}"
        parsed = parsed.set(database=database, query={**parsed.query, "mode": "ro", "uri": "true"})
        return create_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            parsed, connect_args={"options": "-c default_transaction_read_only=on"}
        )
    return create_engine(parsed)


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
