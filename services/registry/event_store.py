"""The registry's one adapter over ``eventsourcing`` and ``eventsourcing-sqlalchemy`` internals.

Every use the registry makes of the libraries beyond their documented application API is here,
and ``tests/integration/test_event_store_contract.py`` pins the behaviour each relies on, so a
version bump that changes one fails there, loudly, in one place. The surface:

- :data:`FACTORY_TOPIC`: the registry's ``PERSISTENCE_MODULE``; :class:`RegistryFactory` builds
  the library's factory with :class:`GroupRecorder` and :class:`OrjsonTranscoder`.
- :class:`EventStore`, over a started application: ``events``, the library's table
  (``id`` = log position, ``originator_id``, ``originator_version``, ``topic``, ``state``);
  :meth:`~EventStore.lock`, the library's table lock; :meth:`~EventStore.insert`, a group of
  stored events in the caller's transaction; :meth:`~EventStore.load`, aggregates rebuilt from
  their stored events in one query; :meth:`~EventStore.close`, the library's own engine.
- :func:`rebuilt`: an aggregate replayed from a base, the replayed events left pending.
- :data:`EVENTS_TABLE`, the table as the library declares it, for a reader that opens the
  store without the library (verification of a read-only copy); :func:`registry_transcoder`.
- :func:`stored_event`, :func:`notification`: a row of ``events`` as the library's types.
- :func:`decode_state` and :func:`restamped`, which read and rewrite the encoded state in the
  library's own tagged JSON without a full decode.
- :data:`INTEGRITY_ERRORS`: what an insert raises when another writer stored the same version.
- :func:`library_now`: the library's clock, which stamps events.

The writer stores groups of up to a few thousand events, and two parts of the library cost
more there than everything else it does:

- the recorder inserts stored events as ORM objects, which the driver then sends as a
  multi-row ``VALUES`` list it re-parses for every new count. On PostgreSQL,
  :class:`GroupRecorder` inserts the group as one ``unnest`` statement instead, under the
  library's own table lock, so notification ids are still assigned and committed in order;
- the transcoder encodes with the standard ``json`` module. :class:`OrjsonTranscoder` writes
  the same bytes with orjson, and :func:`restamped` changes an encoded event's timestamp
  without encoding it again (the writer stamps events once it holds the lock).

Everything else is the library's, except ``subscribe()``, which relies on notifications the
group recorder does not send.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import eventsourcing.domain
import orjson
import sqlalchemy.exc
from eventsourcing.application import Application, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    Notification,
    StoredEvent,
    Subscription,
    Transcoder,
    UUIDAsHex,
)
from eventsourcing.persistence import IntegrityError as StoreIntegrityError
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Column, LargeBinary, MetaData, Table, Text, select
from sqlalchemy.orm import Session
from sqlalchemy_utils.types.uuid import UUIDType  # type: ignore[import-untyped]

from services.common.bulk import insert_columns, one_of
from services.common.db import BIGINT

A = TypeVar("A", bound=Aggregate)

# The value of the registry's PERSISTENCE_MODULE setting.
FACTORY_TOPIC = "services.registry.event_store:RegistryFactory"

# What inserting a version another writer stored first raises: the library's error through its
# own transactions, SQLAlchemy's in a session of ours.
INTEGRITY_ERRORS = (StoreIntegrityError, sqlalchemy.exc.IntegrityError)

# The event store's table, as eventsourcing-sqlalchemy's StoredEventRecord declares it for the
# application named registry: declared, not reflected (SQLite's reflected types do not decode
# the UUIDs), and never created from here.
EVENTS_TABLE = Table(
    "registry_events",
    MetaData(),
    Column("id", BIGINT, primary_key=True),
    Column("originator_id", UUIDType(), nullable=False),
    Column("originator_version", BIGINT, nullable=False),
    Column("topic", Text(), nullable=False),
    Column("state", LargeBinary(), nullable=False),
)

# orjson writes datetimes and dataclasses itself unless told to pass them to ``default``, which
# tags them as the library does. (It also writes UUIDs itself, untagged; events hold none.)
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonTranscoder(JSONTranscoder):
    """The library's JSON transcoder, encoding with orjson: the same bytes, several times
    faster (a tenth of the writer's time went to encoding). Decoding is the library's."""

    def encode(self, obj: Any) -> bytes:
        encoded = orjson.dumps(obj, default=self._encode_obj, option=_ORJSON_OPTIONS)
        # Copied to its own size: orjson's result keeps the ~4 KiB it was written into, and a
        # transaction holding 60,000 events (a spreadsheet import) held 240 MB of it.
        return memoryview(encoded).tobytes()


def library_now() -> datetime:
    """Now, by the library's clock (in its TZINFO): the instant it stamps new events with."""
    # Looked up at each call, so that whoever sets the library's clock sets ours too.
    return eventsourcing.domain.datetime_now_with_tzinfo()


def registry_transcoder() -> Transcoder:
    """The transcoder the registry application decodes its events with."""
    transcoder = OrjsonTranscoder()
    # The transcodings eventsourcing's Application.register_transcodings gives every
    # application; the registry adds none.
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


# How the mapper and OrjsonTranscoder begin an event's state: with its timestamp (the first
# attribute kept once the originator's id and version are taken out), tagged as the library does.
_TIMESTAMP_PREFIX = b'{"timestamp":{"_type_":"datetime_iso","_data_":"'


def restamped(state: bytes, timestamp: datetime) -> bytes:
    """An event's stored state with its timestamp replaced: the bytes the mapper writes for
    the event so stamped, for a tenth of the cost of encoding it again."""
    end = state.find(b'"', len(_TIMESTAMP_PREFIX)) if state.startswith(_TIMESTAMP_PREFIX) else -1
    if end < 0:  # compressed or encrypted: then nothing of the registry's log would decode
        raise ValueError("not an event state as the registry's transcoder writes it")
    return _TIMESTAMP_PREFIX + timestamp.isoformat().encode() + state[end:]


def marked(stored: StoredEvent, marks: dict[str, str] | None) -> StoredEvent:
    """A stored event with ``marks`` (string attributes the log shows in the envelope, never in
    the payload) written at the end of its state; replay ignores them (the library passes an
    event method only its own parameters)."""
    if not marks:
        return stored
    if not stored.state.endswith(b"}"):
        raise ValueError("not an event state as the registry's transcoder writes it")
    extra = orjson.dumps(marks)[1:-1]
    return replace(stored, state=stored.state[:-1] + b"," + extra + b"}")


def decode_state(state: bytes, transcoder: Transcoder) -> dict[str, Any]:
    """A stored event's attributes.

    Our events hold only JSON values but the library's timestamp, so orjson reads them (the
    library's transcoder, on the standard json module, was the feed's main cost) and the one
    tagged value is converted here; anything else tagged goes through the transcoder.
    """
    if state.count(b'"_type_"') != 1:
        decoded: dict[str, Any] = transcoder.decode(state)
        return decoded
    fast: dict[str, Any] = orjson.loads(state)
    stamp = fast.get("timestamp")
    if not isinstance(stamp, dict) or stamp.get("_type_") != "datetime_iso":
        decoded = transcoder.decode(state)
        return decoded
    fast["timestamp"] = datetime.fromisoformat(stamp["_data_"])
    return fast


def _bytes(state: Any) -> bytes:
    return bytes(state) if isinstance(state, memoryview) else state  # bytes whatever the driver


def stored_event(row: Any) -> StoredEvent:
    """The stored event of a row selected from the events table."""
    return StoredEvent(
        originator_id=row.originator_id,
        originator_version=row.originator_version,
        topic=row.topic,
        state=_bytes(row.state),
    )


def notification(row: Any) -> Notification:
    """The notification of a row selected from the events table, ``id`` included."""
    return Notification(
        id=row.id,
        originator_id=row.originator_id,
        originator_version=row.originator_version,
        topic=row.topic,
        state=_bytes(row.state),
    )


def rebuilt(base: A | None, events: Sequence[Any]) -> A:
    """``base`` with ``events`` applied, those events still pending (to be saved), as the
    aggregate was when it triggered them."""
    aggregate = project_aggregate(base, events)
    assert aggregate is not None
    aggregate._pending_events.extend(events)
    return aggregate


class GroupRecorder(SQLAlchemyApplicationRecorder):
    """Inserts a group of stored events in one statement on PostgreSQL."""

    def lock(self, session: Session) -> None:
        """Hold the event store's lock until the session's transaction ends: from then on no
        other writer inserts, so what the log ends with now stays its end until we insert.

        PostgreSQL: the library's table lock. SQLite: the registry's engine begins every
        transaction with BEGIN IMMEDIATE, which holds the database's write lock already.
        """
        if session.get_bind().dialect.name == "postgresql":
            self._lock_table(session)

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        if session.get_bind().dialect.name != "postgresql":
            return super()._insert_stored_events(session, stored_events, **kwargs)
        table: Table = self.events_record_cls.__table__
        self.lock(session)  # again, for callers that did not: granted at once if held
        # No NOTIFY (the library's, for its subscriptions): nothing here listens; the relay and
        # the checkpointer poll. It was a round trip per group and work at every commit.
        return insert_columns(
            session,
            table,
            {
                "originator_id": [e.originator_id for e in stored_events],
                "originator_version": [e.originator_version for e in stored_events],
                "topic": [e.topic for e in stored_events],
                "state": [e.state for e in stored_events],
            },
            returning="id",
        )

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        raise NotImplementedError("the registry sends no notifications: poll the log instead")


class RegistryFactory(SQLAlchemyFactory):
    """The library's factory, with the group recorder and the orjson transcoder."""

    application_recorder_class = GroupRecorder

    def transcoder(self) -> Transcoder:
        return OrjsonTranscoder()


class EventStore:
    """The event store of a registry application built on :data:`FACTORY_TOPIC`."""

    def __init__(self, app: Application[UUID]) -> None:
        recorder = app.recorder
        if not isinstance(recorder, GroupRecorder):
            raise TypeError("the registry's event store needs the group recorder (RegistryFactory)")
        self._recorder = recorder
        self.events: Table = recorder.events_record_cls.__table__
        self.mapper: Mapper[UUID] = app.mapper
        self._library_engine = app.factory.datastore.engine  # type: ignore[attr-defined]

    def lock(self, session: Session) -> None:
        """Hold the event store's lock until the session's transaction ends
        (:meth:`GroupRecorder.lock`)."""
        self._recorder.lock(session)

    def insert(self, session: Session, stored: Sequence[StoredEvent]) -> list[int]:
        """Insert stored events in the session's transaction, in order; their log positions,
        ascending. Raises one of :data:`INTEGRITY_ERRORS` for a version already stored."""
        positions = self._recorder.insert_events(stored, session=session)
        assert positions is not None and list(positions) == sorted(positions), positions
        return list(positions)

    def load(self, session: Session, aggregate_ids: Iterable[UUID]) -> dict[UUID, Aggregate | None]:
        """The aggregates as stored, rebuilt from their events in one query; None for an id
        with no events. The library's repository reads one aggregate per query."""
        ids = set(aggregate_ids)
        e = self.events
        rows = session.execute(
            select(e.c.originator_id, e.c.originator_version, e.c.topic, e.c.state)
            .where(one_of(e.c.originator_id, ids, session.get_bind().dialect))
            .order_by(e.c.originator_id, e.c.originator_version)
        )
        events: dict[UUID, list[Any]] = defaultdict(list)
        for row in rows:
            events[row.originator_id].append(self.mapper.to_domain_event(stored_event(row)))
        return {i: project_aggregate(None, events[i]) if i in events else None for i in ids}

    def close(self) -> None:
        """Release the library's own engine's pooled connections (the application's ``close``
        leaves them)."""
        self._library_engine.dispose()
