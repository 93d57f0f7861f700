"""Statements over many rows at once: one short statement on PostgreSQL, plain on SQLite."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    String,
    Table,
    TypeDecorator,
    any_,
    bindparam,
    insert,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

# Fewer rows than this go by one ``INSERT … unnest`` even where ``copy`` is asked: ``COPY``
# waits twice for the server (its start, then its end), the insert once, and for a few rows the
# formatting saved is nothing beside a wait (a Kafka batch of the subsidy consumer writes four
# tables of a handful of rows each).
COPY_FROM_ROWS = 100


def insert_columns(
    session: Session | Connection,
    table: Table,
    columns: dict[str, Sequence[Any]],
    *,
    returning: str | None = None,
    on_conflict_do_nothing: bool = False,
    copy: bool = False,
) -> list[Any]:
    """Insert rows given column by column (equal lengths), in order, in the session's (or
    connection's) transaction; with ``returning``, that column's values in row order
    (PostgreSQL only). With ``on_conflict_do_nothing``, a row that would break a unique
    constraint is skipped and the others inserted (``returning`` then answers the inserted).

    On PostgreSQL the rows travel as one array per column through ``unnest``: a single short
    statement whatever the count. With ``copy`` they go by ``COPY`` instead, from
    ``COPY_FROM_ROWS`` rows: the driver formats each row in C, where arrays are dumped element
    by element in Python (5,000 entitlement rows: 5.5 ms of CPU against 14 ms, and 82 against
    98 ms in all). It is for a writer that only appends (the subsidy store): its errors bypass
    SQLAlchemy's statement events.
    A multi-row ``VALUES`` list is re-parsed by the driver for every new count and
    ``executemany`` pays a statement's work per row; for the registry's groups of a thousand
    events this took the writer from ~330 to ~160 µs of CPU per event. Ids drawn from a
    sequence are assigned in row order (``ORDER BY`` the array ordinality; ``COPY`` keeps it).
    """
    conn = session.connection() if isinstance(session, Session) else session
    dialect = conn.dialect
    if dialect.name != "postgresql":
        if returning is not None:
            raise NotImplementedError("insert_columns(returning=…) is for PostgreSQL")
        names = list(columns)
        plain = insert(table)
        if on_conflict_do_nothing:  # the other store is SQLite
            plain = sqlite.insert(table).on_conflict_do_nothing()
        conn.execute(
            plain,
            [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)],
        )
        return []
    rows = len(next(iter(columns.values()), ()))
    if copy and rows >= COPY_FROM_ROWS and returning is None and not on_conflict_do_nothing:
        _copy(conn, table, columns)
        return []
    statement = _unnest_insert(table, tuple(columns), returning, on_conflict_do_nothing, dialect)
    # Sent straight to the driver so that the arrays go in binary (``%b``): psycopg writes
    # text arrays element by element in Python, eight times slower.
    result = conn.exec_driver_sql(
        statement, {f"c{i}": list(values) for i, values in enumerate(columns.values())}
    )
    return list(result.scalars()) if returning is not None else []


def _copy(conn: Connection, table: Table, columns: dict[str, Sequence[Any]]) -> None:
    listed = ", ".join(f'"{name}"' for name in columns)
    statement = f'COPY "{table.name}" ({listed}) FROM STDIN'
    driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in zip(*columns.values(), strict=True):
                copy.write_row(row)
    except psycopg.Error as exc:  # raised as SQLAlchemy raises its statements' errors
        lost = driver.closed or isinstance(exc, psycopg.OperationalError)
        if lost:  # the pool must not hand this connection out again
            conn.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, psycopg.Error, connection_invalidated=lost
        ) from exc


@lru_cache(maxsize=64)
def _unnest_insert(
    table: Table,
    names: tuple[str, ...],
    returning: str | None,
    on_conflict_do_nothing: bool,
    dialect: Dialect,
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
    if on_conflict_do_nothing:
        sql += " ON CONFLICT DO NOTHING"
    if returning is not None:
        sql += f' RETURNING "{returning}"'
    return sql


def update_columns(
    conn: Connection,
    table: Table,
    where: dict[str, Sequence[Any]],
    values: dict[str, Sequence[Any]],
) -> None:
    """Update one row per index of the given columns: the row whose ``where`` columns equal
    those values gets the ``values``. One ``UPDATE … FROM unnest(…)`` on PostgreSQL (an
    ``executemany`` paid a statement's work per row: a third of the subsidy consumer's time)."""
    if not next(iter(where.values())):
        return
    if conn.dialect.name != "postgresql":
        statement = (
            update(table)
            .where(*(table.c[n] == bindparam(f"w_{n}") for n in where))
            .values({n: bindparam(f"v_{n}") for n in values})
        )
        rows = zip(*where.values(), *values.values(), strict=True)
        names = [f"w_{n}" for n in where] + [f"v_{n}" for n in values]
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])
        return
    conn.exec_driver_sql(
        _unnest_update(table, tuple(where), tuple(values), conn.dialect),
        {f"c{i}": list(v) for i, v in enumerate([*where.values(), *values.values()])},
    )


@lru_cache(maxsize=64)
def _unnest_update(
    table: Table, where: tuple[str, ...], values: tuple[str, ...], dialect: Dialect
) -> str:
    names = [*where, *values]
    arrays = ", ".join(
        f"CAST(%(c{i})b AS {table.c[name].type.compile(dialect=dialect)}[])"
        for i, name in enumerate(names)
    )
    listed = ", ".join(f'"{n}"' for n in names)
    assigned = ", ".join(f'"{n}" = v."{n}"' for n in values)
    matched = " AND ".join(f't."{n}" = v."{n}"' for n in where)
    return (
        f'UPDATE "{table.name}" AS t SET {assigned} FROM unnest({arrays}) AS v ({listed}) '
        f"WHERE {matched}"
    )


class _BinaryList(list[Any]):
    """A list psycopg sends as a binary array."""


# Registered for the connections made from now on (the engines are made after this import).
psycopg.adapters.register_dumper(_BinaryList, ListBinaryDumper)


class TextArray(TypeDecorator[list[str]]):
    """A parameter of many strings, sent to PostgreSQL as a binary array.

    psycopg writes a text array element by element in Python, a regular expression each to
    see what needs quoting; in binary each is only encoded (3,000 credit codes through
    ``unnest``: 5.7 against 3.4 ms a query; a page of 1,000 revisions sends 11,000)."""

    impl = ARRAY(String)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        return _BinaryList if dialect.name == "postgresql" else None


def text_array(values: Iterable[str]) -> BindParameter[list[str]]:
    """Strings as one parameter (see :class:`TextArray`)."""
    return bindparam(None, list(values), type_=TextArray())


def one_of(
    column: ColumnElement[Any], values: Collection[Any], dialect: Dialect
) -> ColumnElement[bool]:
    """``column IN (values)``, written ``column = ANY(array)`` on PostgreSQL: one parameter
    whatever the count, so the statement stays short and the driver's statement cache keeps it
    (an ``IN`` list of hundreds is a new statement for every count, parsed each time)."""
    if dialect.name == "postgresql":
        if isinstance(column.type, String):
            return column == any_(text_array(values))
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)
