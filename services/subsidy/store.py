"""The subsidy service's own store: the log entries it has received, and how far they reach.

Entries arrive from Kafka (several partitions, so out of log order) and from the registry
feed. Each is stored once by position; a duplicate changes nothing. The *applied* head moves
only along the hash chain: entry N+1 is applied when its ``prev_hash`` is the applied head's
hash. So "everything at or below ``applied_position`` is here" holds even though the registry's
positions may have gaps, and an entry stored beyond a hole waits until the hole is filled.
Storing entries and moving the head happen in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from services.common.db import BIGINT, make_engine, schema_lock
from services.common.envelope import GENESIS_HASH, format_instant

metadata = MetaData()

entries = Table(
    "subsidy_entries",
    metadata,
    Column("position", BIGINT, primary_key=True, autoincrement=False),
    Column("subject", String(128), nullable=False, index=True),
    Column("type", String(64), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
)

head = Table(
    "subsidy_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("position", BIGINT, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("recorded_at", String(32), nullable=True),
)


@dataclass(frozen=True)
class Head:
    """The applied head: every entry at or below ``position`` is stored."""

    position: int
    hash: str
    recorded_at: str | None


class EntryStore:
    """Idempotent storage of log entries with a chain-checked applied head."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        with schema_lock(self.engine):  # processes opening a new store together take turns
            metadata.create_all(self.engine)
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        self._insert_entry = insert(entries).on_conflict_do_nothing(index_elements=["position"])
        self._insert_head = insert(head).on_conflict_do_nothing(index_elements=["id"])

    def close(self) -> None:
        self.engine.dispose()

    def head(self) -> Head:
        with self.engine.connect() as conn:
            row = conn.execute(select(head.c.position, head.c.hash, head.c.recorded_at)).first()
        return Head(row.position, row.hash, row.recorded_at) if row else Head(0, GENESIS_HASH, None)

    def highest_stored(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(entries.c.position), 0))).scalar_one()
            )

    def add(self, envelopes: Sequence[dict[str, Any]]) -> Head:
        """Store the entries not yet stored and move the applied head as far as the chain allows."""
        with self.engine.begin() as conn:
            conn.execute(self._insert_head.values(id=1, position=0, hash=GENESIS_HASH))
            lock = select(head.c.position, head.c.hash, head.c.recorded_at).where(head.c.id == 1)
            if self.engine.dialect.name == "postgresql":
                lock = lock.with_for_update()
            current = conn.execute(lock).one()
            fresh = [e for e in envelopes if e["position"] > current.position]
            if fresh:
                conn.execute(
                    self._insert_entry,
                    [
                        {
                            "position": e["position"],
                            "subject": e["subject"],
                            "type": e["type"],
                            "recorded_at": e["recorded_at"],
                            "prev_hash": e["prev_hash"],
                            "hash": e["hash"],
                            "envelope": orjson.dumps(e),
                        }
                        for e in fresh
                    ],
                )
            position, hash_, recorded_at = current.position, current.hash, current.recorded_at
            while True:
                rows = conn.execute(
                    select(
                        entries.c.position,
                        entries.c.prev_hash,
                        entries.c.hash,
                        entries.c.recorded_at,
                    )
                    .where(entries.c.position > position)
                    .order_by(entries.c.position)
                    .limit(5000)
                ).all()
                advanced = False
                for row in rows:
                    if row.prev_hash != hash_:
                        break
                    position, hash_, recorded_at = row.position, row.hash, row.recorded_at
                    advanced = True
                else:
                    if advanced and len(rows) == 5000:
                        continue
                break
            if position != current.position:
                conn.execute(
                    update(head)
                    .where(head.c.id == 1)
                    .values(position=position, hash=hash_, recorded_at=recorded_at)
                )
        return Head(position, hash_, recorded_at)

    def envelopes(self, upto: int, recorded_by: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Stored entries at or below ``upto`` in log order; with ``recorded_by``, only those
        recorded at or before that instant (what was known then)."""
        query = (
            select(entries.c.envelope)
            .where(entries.c.position <= upto)
            .order_by(entries.c.position)
        )
        if recorded_by is not None:
            query = query.where(entries.c.recorded_at <= _instant(recorded_by))
        with self.engine.connect() as conn:
            for (raw,) in conn.execution_options(yield_per=5000).execute(query):
                yield orjson.loads(raw)

    def first_recorded_after(self, position: int) -> datetime | None:
        """When the first stored entry beyond ``position`` was recorded, if one is stored."""
        query = (
            select(entries.c.recorded_at)
            .where(entries.c.position > position)
            .order_by(entries.c.position)
            .limit(1)
        )
        with self.engine.connect() as conn:
            text = conn.execute(query).scalar()
        return datetime.fromisoformat(text) if text else None

    def entries_after(self, recorded_after: datetime, upto: int) -> list[dict[str, Any]]:
        """Entries recorded after an instant, at or below ``upto``, in log order."""
        query = (
            select(entries.c.envelope)
            .where(entries.c.position <= upto, entries.c.recorded_at > _instant(recorded_after))
            .order_by(entries.c.position)
        )
        with self.engine.connect() as conn:
            return [orjson.loads(raw) for (raw,) in conn.execute(query)]


def _instant(moment: datetime) -> str:
    """The registry's ``recorded_at`` text form, which orders correctly as text."""
    return format_instant(moment)
