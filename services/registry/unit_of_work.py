"""A unit of work: the aggregates and claims that one write transaction touches.

A group's reads are the writer's bottleneck when made one by one (a round trip per aggregate
and per claim), so the writer prefetches everything a group names in two queries, and keeps
recently committed aggregates in a cache across groups.

A submission that breaks a rule is undone in memory (:meth:`UnitOfWork.savepoint`,
:meth:`UnitOfWork.roll_back`): its staged events and claims are dropped and the aggregates it
created forgotten, so the rest of the group keeps its working state and goes on.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common.bulk import insert_columns, one_of
from services.registry.domain import number_key
from services.registry.errors import Conflict
from services.registry.event_store import EventStore, rebuilt
from services.registry.store import chain, claims

A = TypeVar("A", bound=Aggregate)

_TAKEN = {
    "registration": "registration number {number} is already used, written {holder} "
    "(numbers are unique ignoring case, width and surrounding spaces)",
    "payout": "payout number {number} is already used, written {holder} "
    "(numbers are unique ignoring case, width and surrounding spaces)",
    "grant": "grant number {number} is already used, written {holder} "
    "(numbers are unique ignoring case, width and surrounding spaces)",
}


_SAME_NUMBER_ZH = "（编号不区分大小写、全半角和首尾空格）"
_TAKEN_ZH = {
    "registration": "登记号 {number} 已被使用，已登记为 {holder}" + _SAME_NUMBER_ZH,
    "payout": "兑付编号 {number} 已被使用，已登记为 {holder}" + _SAME_NUMBER_ZH,
}
# Something accepted that its poster should know of: {field, rule, message, message_zh}.
CommandWarning = dict[str, str]


class StaleAggregate(Exception):
    """An aggregate this unit of work started from is no longer the stored one (another
    process moved it on): the group cannot commit as it stands."""


_ABSENT = object()  # "not looked up yet" among a savepoint's earlier entries


@dataclass
class Savepoint:
    """Where a submission started: how many events were staged, and what it changed since."""

    events: int
    claims: list[tuple[str, str]] = field(default_factory=list)
    entries: dict[UUID, object] = field(default_factory=dict)  # id -> aggregate, None or _ABSENT


class AggregateCache:
    """Aggregates as last committed by this process, least recently used evicted first.

    Another process may have moved an aggregate on since; then saving a change to it fails
    on the event store's version constraint, the writer evicts it and runs the command again.
    """

    def __init__(self, maxsize: int = 20_000) -> None:
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._maxsize = maxsize

    def take(self, aggregate_id: UUID) -> Aggregate | None:
        """Remove and return a cached aggregate: while a unit of work changes it, it is not
        committed state, and goes back only with :meth:`put` after the commit."""
        return self._items.pop(aggregate_id, None)

    def put(self, aggregates: Iterable[Aggregate]) -> None:
        for aggregate in aggregates:
            self._items[aggregate.id] = aggregate
            self._items.move_to_end(aggregate.id)
        while len(self._items) > self._maxsize:
            self._items.popitem(last=False)

    def __contains__(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self._items


class UnitOfWork:
    """Loads each aggregate once, holds new ones, and stages uniqueness claims.

    Everything staged is written by :meth:`flush_claims` and the application's ``save`` in the
    caller's transaction; if that rolls back, the unit of work is simply dropped.
    """

    def __init__(
        self,
        session: Session,
        store: EventStore,
        cache: AggregateCache,
        years: range = range(0),
        stations: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self._session = session
        self.years = years  # the turnover years of the policy in force
        self._stations = stations  # the station ids that hold a token; None: any
        self._warnings: list[CommandWarning] = []
        self._dialect = session.get_bind().dialect
        self._store = store
        self._cache = cache
        self._aggregates: dict[UUID, Aggregate | None] = {}
        self._known_claims: dict[tuple[str, str], str] = {}
        self._claims: dict[tuple[str, str], str] = {}
        self._savepoint: Savepoint | None = None
        self.events: list[Any] = []

    def prefetch(
        self, aggregate_ids: Iterable[UUID], claim_keys: Iterable[tuple[str, str]]
    ) -> None:
        """Load in one query each the aggregates and claims the coming commands will ask for."""
        wanted = {i for i in aggregate_ids if i not in self._aggregates}
        for aggregate_id in list(wanted):
            cached = self._cache.take(aggregate_id)
            if cached is not None:
                self._aggregates[aggregate_id] = cached
                wanted.discard(aggregate_id)
        if wanted:
            self._aggregates.update(self._store.load(self._session, wanted))
        by_kind: dict[str, set[str]] = defaultdict(set)
        for kind, number in claim_keys:
            key = number_key(number)
            if (kind, key) not in self._known_claims:
                by_kind[kind].add(key)
        for kind, keys in by_kind.items():
            # One kind at a time: `key IN (…) AND kind = …` walks the (key, kind) index,
            # where a row-value IN list does not (measured: 15× slower on PostgreSQL).
            rows = self._session.execute(
                select(claims.c.key, claims.c.registration_no).where(
                    claims.c.kind == kind, one_of(claims.c.key, keys, self._dialect)
                )
            )
            held = {r.key: r.registration_no for r in rows}
            for key in keys:
                self._known_claims[(kind, key)] = held.get(key, "")  # "": looked up, not held

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        """The aggregate as this unit of work has made it, or None if it does not exist."""
        if aggregate_id not in self._aggregates:
            self.prefetch([aggregate_id], [])
        return self._aggregates[aggregate_id]

    def add(self, aggregate: A) -> A:
        """Hold a new aggregate so that later commands in this unit of work see it."""
        if self._savepoint is not None:
            self._savepoint.entries.setdefault(
                aggregate.id, self._aggregates.get(aggregate.id, _ABSENT)
            )
        self._aggregates[aggregate.id] = aggregate
        return aggregate

    def claim(self, kind: str, number: str, owner: str, *, field: str) -> None:
        """Reserve a registry-wide unique number (a registration or invoice number, a bank
        serial) for the contract ``owner``; numbers equal under :func:`number_key` are one."""
        key = number_key(number)
        holder = self._claims.get((kind, key))
        if holder is None:
            if (kind, key) not in self._known_claims:
                self.prefetch([], [(kind, number)])
            holder = self._known_claims[(kind, key)] or None
        if holder is not None:
            taken = _TAKEN.get(kind, "{number} is already recorded on contract {holder}")
            taken_zh = _TAKEN_ZH.get(kind, "{number} 已登记在合同 {holder} 上")
            raise Conflict(
                field,
                taken.format(number=number, holder=holder),
                taken_zh.format(number=number, holder=holder),
            )
        self._claims[(kind, key)] = owner
        if self._savepoint is not None:
            self._savepoint.claims.append((kind, key))

    def holder(self, kind: str, number: str) -> str | None:
        """Who holds a claim now (staged in this unit of work or stored), or None."""
        key = number_key(number)
        staged = self._claims.get((kind, key))
        if staged is not None:
            return staged
        if (kind, key) not in self._known_claims:
            self.prefetch([], [(kind, number)])
        return self._known_claims[(kind, key)] or None

    def station_exists(self, station_id: str) -> bool:
        """Whether a registration station of this id holds a token (any id, when the
        registry was opened without a tokens file to ask)."""
        return self._stations is None or station_id in self._stations()

    def warn(self, field: str, rule: str, message: str, message_zh: str) -> None:
        """Note something accepted that its poster should know of (a broker not filed yet)."""
        self._warnings.append(
            {"field": field, "rule": rule, "message": message, "message_zh": message_zh}
        )

    def take_warnings(self) -> list[CommandWarning]:
        """The warnings noted since the last call, which are then forgotten."""
        taken, self._warnings = self._warnings, []
        return taken

    def head(self) -> int:
        """The log's head as a command sees it: the last committed position, as this
        transaction sees it, and the events staged before it (positions only grow, so they
        are stored at or beyond it)."""
        committed = self._session.execute(select(func.coalesce(func.max(chain.c.position), 0)))
        return int(committed.scalar_one()) + len(self.events)

    def took_event(self, aggregate: Aggregate) -> tuple[UUID, int]:
        """Note the event a command just triggered, keeping the order commands ran in."""
        self.events.append(aggregate.pending_events[-1])
        return aggregate.id, aggregate.version

    def savepoint(self) -> Savepoint:
        """Mark where a submission starts; :meth:`roll_back` returns to it."""
        self._savepoint = Savepoint(len(self.events))
        return self._savepoint

    def roll_back(self, savepoint: Savepoint) -> None:
        """Undo everything since ``savepoint``: its events, claims and new aggregates, in
        memory, at a cost that depends on the undone submission alone.

        A refused command changed nothing: the library applies an event to its aggregate
        before it counts it (version, pending events), and every domain method checks its
        invariants before it assigns anything. So only aggregates changed by the submission's
        earlier, accepted commands need rebuilding: from the store, plus this group's events
        before the savepoint. Raises :class:`StaleAggregate` if the store has moved on."""
        undone = self.events[savepoint.events :]
        del self.events[savepoint.events :]
        for claim in savepoint.claims:
            self._claims.pop(claim, None)
        for aggregate_id, before in savepoint.entries.items():
            if before is _ABSENT:
                self._aggregates.pop(aggregate_id, None)
            else:
                self._aggregates[aggregate_id] = before  # type: ignore[assignment]
        self._savepoint = None
        changed: dict[UUID, int] = defaultdict(int)
        for e in undone:
            if e.originator_id not in savepoint.entries:
                changed[e.originator_id] += 1
        if changed:
            self._rebuild(changed)

    def _rebuild(self, undone_by_id: dict[UUID, int]) -> None:
        kept: dict[UUID, list[Any]] = {}
        from_store = set()
        for aggregate_id, undone in undone_by_id.items():
            current = self._aggregates[aggregate_id]
            assert current is not None
            pending = current.pending_events
            kept[aggregate_id] = list(pending[: len(pending) - undone])
            if current.version > len(pending):  # stored before this group
                from_store.add(aggregate_id)
        stored = self._store.load(self._session, from_store) if from_store else {}
        for aggregate_id, events in kept.items():
            current = self._aggregates[aggregate_id]
            assert current is not None
            base = stored.get(aggregate_id)
            if (base.version if base else 0) != current.version - len(current.pending_events):
                raise StaleAggregate(aggregate_id)
            # The group's earlier events on it are still to be saved: pending, as they were.
            self._aggregates[aggregate_id] = rebuilt(base, events)

    def release(self, savepoint: Savepoint) -> None:
        """The submission since ``savepoint`` stands; nothing of it will be undone."""
        if self._savepoint is savepoint:
            self._savepoint = None

    def recorded(self, recorded_at: datetime) -> None:
        """Note that the store records this unit's events at ``recorded_at``, a few
        milliseconds after their commands stamped them: it is the changed aggregates'
        ``modified_on`` from now on, as a reload from the store would say. (A new aggregate's
        ``created_on`` keeps its command's instant: the library gives it no setter, and
        nothing here reads it.)"""
        for aggregate in self._aggregates.values():
            if aggregate is not None and aggregate.pending_events:
                aggregate.modified_on = recorded_at

    def changed(self, kind: type[A]) -> list[A]:
        """The aggregates of ``kind`` whose events this unit of work is about to store."""
        return [a for a in self._aggregates.values() if isinstance(a, kind) and a.pending_events]

    def flush_claims(self) -> None:
        """Insert the staged claims; a racing writer's claim makes this raise IntegrityError."""
        if self._claims:
            insert_columns(
                self._session,
                claims,
                {
                    "kind": [kind for kind, _ in self._claims],
                    "key": [key for _, key in self._claims],
                    "registration_no": list(self._claims.values()),
                },
            )

    def committed(self) -> None:
        """After the commit: the aggregates as now stored are what the next groups start from."""
        for aggregate in self._aggregates.values():
            if aggregate is not None:
                aggregate.collect_events()  # saved already; drop them from the pending list
        self._cache.put(a for a in self._aggregates.values() if a is not None)
