"""Database engines on SQLite files or PostgreSQL, the locks that processes sharing one take,
and the breaker that stops a service from queueing work for a store it cannot reach."""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy.exc
from sqlalchemy import BigInteger, Engine, Integer, create_engine, event, make_url, text
from sqlalchemy.engine import Connection

from services.common.errors import Unavailable
from services.common.metrics import count_store_errors

log = logging.getLogger("tcr.db")

# Log positions: 64-bit on PostgreSQL; SQLite's INTEGER is 64-bit already and only a column
# declared INTEGER becomes the rowid.
BIGINT = BigInteger().with_variant(Integer(), "sqlite")


CONNECT_TIMEOUT_SECONDS = 5
# Every statement is planned for its own parameters. psycopg prepares a statement run five
# times, and PostgreSQL then settles on one generic plan, made once and kept: one made while a
# table was nearly empty (and with autovacuum off, never re-planned) scanned it whole ever after.
# On one connection, applying 300,000 entries to the subsidy store fell from 7,700 to 2,060
# entries/s, one query at 4 s a page; planned each time, it stays at 7,700.
_POSTGRESQL_OPTIONS = "-c plan_cache_mode=force_custom_plan"


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
    if url.startswith("postgresql"):
        # A server that does not answer fails a connection in seconds, not the system's minutes.
        kwargs["connect_args"] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": _POSTGRESQL_OPTIONS,
        }
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
            parsed,
            connect_args={"options": f"{_POSTGRESQL_OPTIONS} -c default_transaction_read_only=on"},
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
        if isinstance(held, Connection):
            # Unlocked now: ending the session below releases it too, but only once the server
            # has noticed, and a new holder asking at once was then refused.
            with suppress(Exception):  # a dropped session released it already
                held.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        with suppress(Exception):
            if isinstance(held, Connection):
                held.invalidate()  # ends the session, and its lock: not back into the pool
            held.close()


# PostgreSQL SQLSTATEs of a server going away: class 08 (connection exception), and shutdown,
# crash and start-up (57P01-57P03).
_GONE = ("08", "57P01", "57P02", "57P03")


def store_unreachable(exc: BaseException) -> bool:
    """Whether an error (SQLAlchemy's, or the event library's wrapping one) means the database
    could not be reached or the connection was lost, rather than a statement being refused."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlalchemy.exc.DBAPIError):
            if seen.connection_invalidated:
                return True
            orig = seen.orig
            sqlstate = getattr(orig, "sqlstate", None)
            if sqlstate is not None:
                return str(sqlstate).startswith(_GONE)
            # psycopg gives no SQLSTATE to a failure to connect or a connection lost
            return type(orig).__module__.startswith("psycopg") and isinstance(
                seen, sqlalchemy.exc.OperationalError
            )
        seen = seen.__cause__ or seen.__context__
    return False


def store_unavailable() -> Unavailable:
    """The refusal of work while the store is unreachable (HTTP 503): nothing was done."""
    return Unavailable(
        None,
        "the store is unreachable; nothing was done, retry later",
        "无法连接存储；未做任何操作，请稍后重试",
    )


class StoreBreaker:
    """A circuit breaker around a service's store.

    Closed, it lets everything through. Open (the store could not be reached), :meth:`check`
    refuses at once with 503, so a queue of requests is answered in milliseconds instead of each
    waiting for its own failed connection; a thread probes the store every ``probe_every``
    seconds and closes the breaker at the first answer. A lost connection alone does not open
    it: :meth:`failed` first asks the store on a fresh connection.
    """

    def __init__(self, engine: Engine, *, probe_every: float = 0.5) -> None:
        self._engine = engine
        self._probe_every = probe_every
        self._open = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._prober: threading.Thread | None = None

    @property
    def open(self) -> bool:
        return self._open.is_set()

    def check(self) -> None:
        """Raise :func:`store_unavailable` while the breaker is open."""
        if self._open.is_set():
            raise store_unavailable()

    def failed(self, exc: BaseException) -> bool:
        """Note an error from the store; whether the store is now taken as unreachable (the
        breaker is open). Errors that are not about reaching the store change nothing."""
        if not store_unreachable(exc):
            return False
        if self._open.is_set():
            return True
        if self.probe():  # one connection lost; the store itself answers
            return False
        with self._lock:
            if not self._open.is_set() and not self._stopping.is_set():
                log.error("store unreachable (%s); answering 503 until it answers again", exc)
                self._open.set()
                self._prober = threading.Thread(
                    target=self._probe_until_back, name="store-breaker", daemon=True
                )
                self._prober.start()
        return True

    def probe(self) -> bool:
        """Whether the store answers a query now."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except sqlalchemy.exc.DBAPIError:
            return False

    def _probe_until_back(self) -> None:
        while not self._stopping.wait(self._probe_every):
            if self.probe():
                log.warning("store reachable again; accepting work")
                self._open.clear()
                return

    def stop(self) -> None:
        self._stopping.set()
        prober = self._prober
        if prober is not None:
            prober.join()
