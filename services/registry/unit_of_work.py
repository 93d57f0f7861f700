"""A unit of work: the aggregates and claims that one write transaction touches."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.registry.errors import Conflict
from services.registry.store import claims

A = TypeVar("A", bound=Aggregate)


class UnitOfWork:
    """Loads each aggregate once, holds new ones, and stages uniqueness claims.

    Everything staged is written by :meth:`flush_claims` and the application's ``save`` in the
    caller's transaction; if that rolls back, the unit of work is simply dropped.
    """

    def __init__(self, repository: Repository[Any], session: Session) -> None:
        self._repository = repository
        self._session = session
        self._aggregates: dict[UUID, Aggregate | None] = {}
        self._claims: dict[tuple[str, str], str] = {}
        self.events: list[Any] = []

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        """The aggregate as this unit of work has made it, or None if it does not exist."""
        if aggregate_id not in self._aggregates:
            try:
                self._aggregates[aggregate_id] = self._repository.get(aggregate_id)
            except AggregateNotFoundError:
                self._aggregates[aggregate_id] = None
        return self._aggregates[aggregate_id]

    def add(self, aggregate: A) -> A:
        """Hold a new aggregate so that later commands in this unit of work see it."""
        self._aggregates[aggregate.id] = aggregate
        return aggregate

    def claim(self, kind: str, key: str, owner: str, *, field: str) -> None:
        """Reserve a registry-wide unique key (an invoice number, a bank serial) for ``owner``."""
        holder = self._claims.get((kind, key))
        if holder is None:
            holder = self._session.execute(
                select(claims.c.registration_no).where(claims.c.kind == kind, claims.c.key == key)
            ).scalar()
        if holder is not None:
            raise Conflict(field, f"{key} is already recorded on contract {holder}")
        self._claims[(kind, key)] = owner

    def took_event(self, aggregate: Aggregate) -> tuple[UUID, int]:
        """Note the event a command just triggered, keeping the order commands ran in."""
        self.events.append(aggregate.pending_events[-1])
        return aggregate.id, aggregate.version

    def flush_claims(self) -> None:
        """Insert the staged claims; a racing writer's claim makes this raise IntegrityError."""
        if self._claims:
            self._session.execute(
                insert(claims),
                [
                    {"kind": k, "key": key, "registration_no": o}
                    for (k, key), o in self._claims.items()
                ],
            )
