"""The event store's recorder, made for the writer's groups of up to a few thousand events.

``eventsourcing-sqlalchemy`` inserts stored events as ORM objects: fine for a few, but for a
group of a thousand the ORM's unit of work and the driver's parsing of a multi-row ``VALUES``
list cost more than everything else the writer does. On PostgreSQL this recorder inserts the
group as one ``unnest`` statement under the library's own table lock, so notification ids are
still assigned in order and committed in order. Everything else is the library's, except
``subscribe()``, which relies on notifications this recorder does not send.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, StoredEvent, Subscription
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Table
from sqlalchemy.orm import Session

from services.common.db import insert_columns

# The value of the registry's PERSISTENCE_MODULE setting.
FACTORY_TOPIC = "services.registry.recorder:RegistryFactory"


class GroupRecorder(SQLAlchemyApplicationRecorder):
    """Inserts a group of stored events in one statement on PostgreSQL."""

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        if session.get_bind().dialect.name != "postgresql":
            return super()._insert_stored_events(session, stored_events, **kwargs)
        table: Table = self.events_record_cls.__table__
        self._lock_table(session)
        ids = insert_columns(
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
        # No NOTIFY (the library's, for its subscriptions): nothing here listens; the relay and
        # the checkpointer poll. It was a round trip per group and work at every commit.
        return ids

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        raise NotImplementedError("the registry sends no notifications: poll the log instead")


class RegistryFactory(SQLAlchemyFactory):
    """The library's factory, with the group recorder."""

    application_recorder_class = GroupRecorder
