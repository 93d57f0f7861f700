"""Many rows in one statement: inserted whole and in order, found by value, on both stores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.bulk import COPY_FROM_ROWS, insert_columns, one_of
from services.common.db import make_engine

metadata = MetaData()
rows = Table(
    "bulk_rows",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("ref", Uuid, nullable=False),
    Column("name", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
)
keyed_rows = Table(
    "bulk_keyed_rows",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("key", String(16), nullable=False, unique=True),
    Column("body", LargeBinary, nullable=False),
)
# Awkward values on purpose: quotes, commas, braces, backslashes and non-ASCII in text arrays;
# NUL and high bytes in binary ones.
NAMES = ["plain", 'with "quotes"', "a,b", "{braces}", "back\\slash", "平顶山", "NULL", ""]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def columns(count: int) -> dict[str, list[object]]:
    return {
        "ref": [uuid.uuid5(uuid.NAMESPACE_URL, str(i)) for i in range(count)],
        "name": [NAMES[i % len(NAMES)] for i in range(count)],
        "body": [bytes([i % 256, 0, 255]) * (i % 5) for i in range(count)],
    }


def stored(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        found = conn.execute(select(rows.c.ref, rows.c.name, rows.c.body).order_by(rows.c.id))
        return [tuple(r) for r in found]


# By COPY or by arrays: the same rows, the same errors. COPY is taken from COPY_FROM_ROWS
# rows (fewer go by arrays even when it is asked), so the tests of it give at least as many.
by_copy = pytest.mark.parametrize("copy", [False, True], ids=["arrays", "copy"])


@by_copy
@pytest.mark.parametrize("count", [1, 7, COPY_FROM_ROWS - 1, COPY_FROM_ROWS, 1000])
def test_rows_given_column_by_column_are_stored_whole_and_in_order(
    engine: Engine, count: int, copy: bool
) -> None:
    given = columns(count)
    with Session(engine) as session, session.begin():
        insert_columns(session, rows, given, copy=copy)

    assert stored(engine) == list(zip(given["ref"], given["name"], given["body"], strict=True))


def test_on_postgresql_the_ids_come_back_in_row_order(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("returning ids is for PostgreSQL")
    given = columns(500)
    with Session(engine) as session, session.begin():
        first = insert_columns(session, rows, given, returning="id")
        second = insert_columns(session, rows, given, returning="id")

    assert first == sorted(first) and len(set(first)) == 500
    assert second == sorted(second) and second[0] > first[-1]
    with engine.connect() as conn:
        by_id = dict(conn.execute(select(rows.c.id, rows.c.ref)).all())
    assert [by_id[i] for i in first] == given["ref"]


@by_copy
def test_nothing_is_stored_when_the_transaction_rolls_back(engine: Engine, copy: bool) -> None:
    with Session(engine) as session:
        session.begin()
        insert_columns(session, rows, columns(COPY_FROM_ROWS), copy=copy)
        session.rollback()

    assert stored(engine) == []


def keyed(first: int, count: int, body: bytes) -> dict[str, list[object]]:
    return {"key": [f"k{i}" for i in range(first, first + count)], "body": [body] * count}


def stored_keyed(engine: Engine) -> dict[str, bytes]:
    with engine.connect() as conn:
        return {k: bytes(b) for k, b in conn.execute(select(keyed_rows.c.key, keyed_rows.c.body))}


def test_with_on_conflict_do_nothing_rows_already_stored_are_kept_and_the_rest_inserted(
    engine: Engine,
) -> None:
    with Session(engine) as session, session.begin():
        insert_columns(session, keyed_rows, keyed(0, 10, b"first"))
    with Session(engine) as session, session.begin():
        insert_columns(session, keyed_rows, keyed(5, 10, b"second"), on_conflict_do_nothing=True)

    assert stored_keyed(engine) == {
        **{f"k{i}": b"first" for i in range(10)},
        **{f"k{i}": b"second" for i in range(10, 15)},
    }


@by_copy
def test_without_on_conflict_do_nothing_a_row_already_stored_fails_the_insert(
    engine: Engine, copy: bool
) -> None:
    with Session(engine) as session, session.begin():
        insert_columns(session, keyed_rows, keyed(0, 3, b"first"))

    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        insert_columns(session, keyed_rows, keyed(2, COPY_FROM_ROWS, b"second"), copy=copy)
    assert stored_keyed(engine) == {f"k{i}": b"first" for i in range(3)}


def test_on_postgresql_returning_with_on_conflict_do_nothing_answers_the_inserted_rows(
    engine: Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("returning ids is for PostgreSQL")
    with Session(engine) as session, session.begin():
        insert_columns(session, keyed_rows, keyed(0, 4, b"first"))
        ids = insert_columns(
            session,
            keyed_rows,
            keyed(2, 4, b"second"),
            returning="id",
            on_conflict_do_nothing=True,
        )

    with engine.connect() as conn:
        by_id = dict(conn.execute(select(keyed_rows.c.id, keyed_rows.c.key)).all())
    assert [by_id[i] for i in ids] == ["k4", "k5"]


@pytest.mark.parametrize("wanted", [0, 1, 300])
def test_one_of_finds_exactly_the_rows_with_those_values(engine: Engine, wanted: int) -> None:
    given = columns(1000)
    with Session(engine) as session, session.begin():
        insert_columns(session, rows, given)
    refs = [*given["ref"][::3][:wanted], uuid.uuid4()]  # and one that is not there

    with engine.connect() as conn:
        found = conn.execute(
            select(rows.c.ref).where(one_of(rows.c.ref, refs, engine.dialect))
        ).scalars()
        assert sorted(map(str, found)) == sorted(map(str, refs[:-1]))


@pytest.mark.parametrize("wanted", [0, 1, len(NAMES)])
def test_one_of_strings_finds_them_whatever_their_characters(engine: Engine, wanted: int) -> None:
    # On PostgreSQL strings go as a binary array: nothing to quote, nothing to escape.
    given = {"key": NAMES, "body": [b"x"] * len(NAMES)}
    with Session(engine) as session, session.begin():
        insert_columns(session, keyed_rows, given)
    asked = [*NAMES[:wanted], "not there", 'not "there"']

    with engine.connect() as conn:
        found = conn.execute(
            select(keyed_rows.c.key).where(one_of(keyed_rows.c.key, asked, engine.dialect))
        ).scalars()
        assert sorted(found) == sorted(NAMES[:wanted])
