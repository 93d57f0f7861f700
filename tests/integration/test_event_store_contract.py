"""What the registry relies on in eventsourcing and eventsourcing-sqlalchemy, pinned through
services/registry/event_store.py, the one module that uses their internals: a version of either
library that changes any of it fails here first. Each test runs on a SQLite file and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any
from unittest.mock import patch
from uuid import uuid4

import pytest
import sqlalchemy
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from services.registry.application import Registry
from services.registry.domain import Contract
from services.registry.event_store import (
    EVENTS_TABLE,
    INTEGRITY_ERRORS,
    EventStore,
    GroupRecorder,
    OrjsonTranscoder,
    decode_state,
    library_now,
    rebuilt,
    registry_transcoder,
)
from tests.unit.test_contract_aggregate import invoice, registration


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    """A registry application over a fresh store, its writer not started."""
    with closing(Registry(database_url)) as opened:
        yield opened


def contract_with_invoices(count: int = 2) -> Contract:
    contract = Contract(**registration())
    for n in range(count):
        contract.record_invoice(**invoice(f"INV-{n}", 1_000))
    return contract


def store_events(registry: Registry, aggregate: Aggregate) -> list[int]:
    """Insert the aggregate's pending events in one transaction of the registry's engine."""
    store = registry.event_store
    stored = [store.mapper.to_stored_event(e) for e in aggregate.collect_events()]
    with Session(registry.engine) as session, session.begin():
        store.lock(session)
        return store.insert(session, stored)


def _state(aggregate: Aggregate) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


# -- the factory, the table ----------------------------------------------------------------------


def test_the_factory_topic_builds_the_group_recorder_and_the_orjson_transcoder(
    registry: Registry,
) -> None:
    assert isinstance(registry.recorder, GroupRecorder)
    assert isinstance(registry.mapper.transcoder, OrjsonTranscoder)
    assert isinstance(registry.factory.datastore.engine, sqlalchemy.Engine)  # type: ignore[attr-defined]


def test_the_library_declares_the_events_table_as_the_registry_reads_it(
    registry: Registry,
) -> None:
    table = registry.event_store.events
    declared = {c.name: type(c.type) for c in EVENTS_TABLE.columns}

    assert table.name == EVENTS_TABLE.name == "registry_events"
    assert {c.name: type(c.type) for c in table.columns} == declared
    in_database = inspect(registry.engine).get_columns("registry_events")
    assert {c["name"] for c in in_database} == set(declared)


# -- writing a group -----------------------------------------------------------------------------


def test_a_group_inserted_in_our_transaction_is_what_the_library_reads_back(
    registry: Registry,
) -> None:
    contract = contract_with_invoices(2)
    expected = _state(contract)

    positions = store_events(registry, contract)

    assert positions == [1, 2, 3]
    notifications = registry.recorder.select_notifications(start=1, limit=10)
    assert [(n.id, n.originator_id, n.originator_version) for n in notifications] == [
        (1, contract.id, 1),
        (2, contract.id, 2),
        (3, contract.id, 3),
    ]
    assert _state(registry.repository.get(contract.id)) == expected


def test_the_insert_goes_through_the_recorders_insert_stored_events(registry: Registry) -> None:
    original = GroupRecorder._insert_stored_events
    with patch.object(
        GroupRecorder, "_insert_stored_events", autospec=True, side_effect=original
    ) as spied:
        store_events(registry, contract_with_invoices(1))

    assert spied.call_count == 1
    assert [e.originator_version for e in spied.call_args.args[2]] == [1, 2]


def test_a_version_stored_already_raises_an_integrity_error(registry: Registry) -> None:
    contract = contract_with_invoices(0)
    stored = registry.event_store.mapper.to_stored_event(contract.pending_events[0])
    store_events(registry, contract)
    again = StoredEvent(stored.originator_id, stored.originator_version, stored.topic, stored.state)

    with pytest.raises(INTEGRITY_ERRORS), Session(registry.engine) as session, session.begin():
        registry.event_store.insert(session, [again])


def test_on_postgresql_positions_are_never_given_twice_even_after_a_rollback(
    registry: Registry,
) -> None:
    if registry.engine.dialect.name != "postgresql":
        pytest.skip("SQLite may give a rolled-back position again; the writer compares bytes")
    store = registry.event_store
    first = contract_with_invoices(0)
    stored = [store.mapper.to_stored_event(e) for e in first.collect_events()]
    with Session(registry.engine) as session:
        session.begin()
        (rolled_back,) = store.insert(session, stored)
        session.rollback()

    (position,) = store_events(registry, contract_with_invoices(0))

    assert position > rolled_back


# -- the lock ------------------------------------------------------------------------------------


def test_the_lock_keeps_every_other_writer_out_until_the_transaction_ends(
    registry: Registry, database_url: str
) -> None:
    other = sqlalchemy.create_engine(database_url)
    try:
        with Session(registry.engine) as session, session.begin():
            registry.event_store.lock(session)
            session.execute(text("SELECT 1"))  # SQLite: BEGIN IMMEDIATE is sent with it
            with other.connect() as conn:
                if other.dialect.name == "postgresql":
                    conn.execute(text("SET lock_timeout = '100ms'"))
                    locked = "LOCK TABLE registry_events IN ROW EXCLUSIVE MODE"
                else:
                    conn.execute(text("PRAGMA busy_timeout = 100"))
                    locked = "INSERT INTO registry_claims VALUES ('k', 'x', 'R')"
                with pytest.raises(sqlalchemy.exc.OperationalError):
                    conn.execute(text(locked))
    finally:
        other.dispose()


# -- reading aggregates --------------------------------------------------------------------------


def test_load_rebuilds_aggregates_as_the_librarys_repository_does(registry: Registry) -> None:
    contract = contract_with_invoices(2)
    store_events(registry, contract)
    absent = uuid4()

    with Session(registry.engine) as session:
        loaded = registry.event_store.load(session, [contract.id, absent])

    assert loaded[absent] is None
    assert loaded[contract.id] is not None
    assert _state(loaded[contract.id]) == _state(registry.repository.get(contract.id))
    assert loaded[contract.id].pending_events == []


def test_rebuilt_replays_events_onto_a_base_and_leaves_them_pending() -> None:
    contract = contract_with_invoices(2)
    events = contract.collect_events()
    base = rebuilt(None, events[:1])
    base.collect_events()  # stored

    again = rebuilt(base, events[1:])

    assert _state(again) == _state(contract)
    assert again.pending_events == events[1:]


# -- encoded states ------------------------------------------------------------------------------


def test_the_registrys_transcoder_reads_and_writes_what_the_applications_does(
    registry: Registry,
) -> None:
    contract = contract_with_invoices(1)
    store_events(registry, contract)
    ours = registry_transcoder()
    for n in registry.recorder.select_notifications(start=1, limit=10):
        state = registry.mapper.transcoder.decode(n.state)
        assert ours.encode(state) == n.state
        assert decode_state(n.state, ours) == state


def test_events_are_stamped_by_the_librarys_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import eventsourcing.domain

    instant = library_now()
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", lambda: instant)

    assert library_now() == instant
    assert Contract(**registration()).pending_events[0].timestamp == instant


def test_the_group_recorder_refuses_subscriptions(registry: Registry) -> None:
    with pytest.raises(NotImplementedError, match="poll"):
        registry.recorder.subscribe(gt=0)


def test_close_releases_the_librarys_own_engine(database_url: str) -> None:
    opened = Registry(database_url)
    library_engine = opened.factory.datastore.engine  # type: ignore[attr-defined]
    store_events(opened, contract_with_invoices(0))
    opened.recorder.select_notifications(start=1, limit=1)  # checks a connection out and in
    assert library_engine.pool.checkedin() == 1

    opened.close()

    assert library_engine.pool.checkedin() == 0


def test_an_event_store_needs_the_group_recorder() -> None:
    class Plain:
        recorder = object()

    with pytest.raises(TypeError, match="group recorder"):
        EventStore(Plain())  # type: ignore[arg-type]
