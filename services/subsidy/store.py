"""The subsidy service's own store: the log entries it has applied, and the projection they
made, written in the same transaction as the head that says how far it reaches.

Entries arrive from Kafka (several partitions, so out of log order) and from the registry
feed. The *applied* head moves only along the hash chain: entry N+1 is applied when its
``prev_hash`` is the applied head's hash. So "everything at or below ``applied_position`` is
applied" holds even though the registry's positions may have gaps; an entry that arrives beyond
a hole waits, whole, in ``subsidy_pending`` until the hole is filled. Each entry is applied
once: one at or below the head changes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any

import orjson
from sqlalchemy import Engine, Executable, Row, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from services.common.bulk import one_of
from services.common.db import make_engine, schema_lock
from services.common.envelope import GENESIS_HASH
from services.common.payloads import now_read
from services.common.policy.loader import load_schedule
from services.common.policy.schedule import PolicySchedule
from services.common.runtime import collector_paused
from services.subsidy import metrics
from services.subsidy import tables as t
from services.subsidy.projection import (
    KNOWN_EVENTS,
    BrokerFacts,
    ClaimKey,
    ClaimValue,
    EntitlementKey,
    EntitlementValue,
    Fen,
    Projection,
    TotalKey,
    TotalValue,
)
from services.subsidy.run_rows import RunRows

log = logging.getLogger("tcr.subsidy.store")

_CHUNK = 5000  # values per IN list: well inside SQLite's limit of bound parameters


@dataclass(frozen=True)
class Head:
    """The applied head: every entry at or below ``position`` is applied."""

    position: int
    hash: str
    recorded_at: str | None


def _add_missing_indexes(engine: Engine) -> None:
    """Indexes added to a table after a store was made (create_all makes only new tables'):
    an index is only a faster read, so it is built rather than the store rebuilt."""
    with engine.begin() as conn:
        for table in t.metadata.sorted_tables:
            for index in table.indexes:
                index.create(conn, checkfirst=True)


class EntryStore:
    """Idempotent, chain-checked application of log entries to the projection."""

    def __init__(self, url: str, schedule: PolicySchedule | None = None) -> None:
        self.engine: Engine = make_engine(url)
        self.schedule = schedule or load_schedule()
        with schema_lock(self.engine):  # processes opening a new store together take turns
            t.metadata.create_all(self.engine)
            _add_missing_indexes(self.engine)
            self._check_version()
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        self._insert_pending = insert(t.pending).on_conflict_do_nothing(index_elements=["position"])
        # The head and the entries waiting beyond it, read in one statement that locks the
        # head until the transaction ends: a Kafka batch of a few entries is a round trip
        # shorter (its transaction is a dozen of them, each a wait on a busy machine).
        h, p = t.head.c, t.pending.c
        self._lock_head = select(h.position, h.hash, h.recorded_at).where(h.id == 1)
        self._lock_head_and_waiting = (
            select(h.position, h.hash, h.recorded_at, p.position.label("waiting"), p.envelope)
            .select_from(t.head.outerjoin(t.pending, p.position > h.position))
            .where(h.id == 1)
            .order_by(p.position)
        )
        if self.engine.dialect.name == "postgresql":
            self._lock_head = self._lock_head.with_for_update()
            self._lock_head_and_waiting = self._lock_head_and_waiting.with_for_update(of=t.head)

    def close(self) -> None:
        self.engine.dispose()

    def _check_version(self) -> None:
        with self.engine.begin() as conn:
            version = conn.execute(select(t.meta.c.projection_version)).scalar()
            # Entries of a type this version applies but an older one skipped: the store
            # lacks what they say, so it is rebuilt as if its version were another.
            skipped = conn.execute(select(t.skipped.c.type)).scalars()
            learnt = {kind for kind in skipped if now_read(kind, KNOWN_EVENTS)}
            # A store from before schedules has no digest: it was computed under the one
            # policy file, which is the first version of the schedule.
            stored = conn.execute(select(t.schedule.c.fingerprint)).scalar()
            fingerprint = self.schedule.fingerprint()
            other_schedule = stored is not None and stored != fingerprint
            if stored != fingerprint:
                conn.execute(delete(t.schedule))
                conn.execute(t.schedule.insert().values(id=1, fingerprint=fingerprint))
            if version == t.PROJECTION_VERSION and not learnt and not other_schedule:
                return
            position = conn.execute(select(t.head.c.position)).scalar()
            if position:
                log.warning(
                    "the subsidy store was written by projection version %s, not %d, or "
                    "under another policy schedule (%s), or skipped entries this one applies "
                    "(%s): rebuilding it from the registry feed",
                    version,
                    t.PROJECTION_VERSION,
                    "yes" if other_schedule else "no",
                    ", ".join(sorted(learnt)) or "none",
                )
            _clear(conn)
            conn.execute(delete(t.meta))
            conn.execute(t.meta.insert().values(id=1, projection_version=t.PROJECTION_VERSION))

    def reset(self) -> None:
        """Forget everything applied: the next entries rebuild the projection from position 1."""
        with self.engine.begin() as conn:
            _clear(conn)

    # -- applying entries ------------------------------------------------------------------------

    def head(self) -> Head:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.head.c.position, t.head.c.hash, t.head.c.recorded_at)
            ).first()
        return Head(row.position, row.hash, row.recorded_at) if row else Head(0, GENESIS_HASH, None)

    def highest_stored(self) -> int:
        """The highest position received: the head, or an entry waiting beyond a hole."""
        with self.engine.connect() as conn:
            waiting = conn.execute(
                select(t.pending.c.position).order_by(t.pending.c.position.desc()).limit(1)
            ).scalar()
        return max(int(waiting or 0), self.head().position)

    def skipped_events(self) -> int:
        """How many applied entries were of types this projection does not know."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.coalesce(func.sum(t.skipped.c.entries), 0))).scalar_one()
            )

    def first_recorded_after(self, position: int) -> str | None:
        """When the first entry waiting beyond ``position`` was recorded, if one is waiting."""
        query = (
            select(t.pending.c.recorded_at)
            .where(t.pending.c.position > position)
            .order_by(t.pending.c.position)
            .limit(1)
        )
        with self.engine.connect() as conn:
            text: str | None = conn.execute(query).scalar()
        return text

    def add(self, envelopes: Sequence[dict[str, Any]]) -> Head:
        """Apply the entries that extend the chain, keep those beyond a hole, and move the head."""
        skipped: Counter[str] = Counter()
        with collector_paused(), self.engine.begin() as conn:
            current, waiting = self._locked_head(conn, with_waiting=True)
            candidates = waiting | {
                e["position"]: e for e in envelopes if e["position"] > current.position
            }
            run: list[dict[str, Any]] = []
            position, hash_, recorded_at = current.position, current.hash, current.recorded_at
            for at in sorted(candidates):
                envelope = candidates[at]
                if envelope["prev_hash"] != hash_:
                    break
                run.append(envelope)
                position, hash_, recorded_at = at, envelope["hash"], envelope["recorded_at"]
            if run:
                projection = Projection(StoredRows(conn), self.schedule).apply_all(run)
                RunRows.of(projection, run).write(conn)
                skipped = projection.skipped
                conn.execute(
                    update(t.head)
                    .where(t.head.c.id == 1)
                    .values(position=position, hash=hash_, recorded_at=recorded_at)
                )
            if waiting:
                conn.execute(delete(t.pending).where(t.pending.c.position <= position))
            later = [e for at, e in candidates.items() if at > position and at not in waiting]
            if later:
                conn.execute(
                    self._insert_pending,
                    [
                        {
                            "position": e["position"],
                            "prev_hash": e["prev_hash"],
                            "recorded_at": e["recorded_at"],
                            "envelope": orjson.dumps(e),
                        }
                        for e in later
                    ],
                )
        _count_skipped(skipped)  # once committed
        return Head(position, hash_, recorded_at)

    def write_run(self, start: Head, end: Head, rows: RunRows) -> Head:
        """Write the rows of a run computed apart, from the store at ``start``, and move the head
        to ``end`` (entries waiting up to there are dropped: the run holds them). Raises
        :class:`HeadMoved`, writing nothing, when the head is not at ``start``."""
        with self.engine.begin() as conn:
            current, _ = self._locked_head(conn)
            if (current.position, current.hash) != (start.position, start.hash):
                raise HeadMoved(
                    f"the run was computed from position {start.position}, and the store's "
                    f"head is at {current.position}"
                )
            rows.write(conn)
            conn.execute(
                update(t.head)
                .where(t.head.c.id == 1)
                .values(position=end.position, hash=end.hash, recorded_at=end.recorded_at)
            )
            conn.execute(delete(t.pending).where(t.pending.c.position <= end.position))
        _count_skipped(rows.skipped)
        return end

    def _locked_head(
        self, conn: Connection, *, with_waiting: bool = False
    ) -> tuple[Head, dict[int, dict[str, Any]]]:
        """The head, locked until the transaction ends, and (``with_waiting``) the entries
        waiting beyond it (a run written apart holds them: they are not read for it)."""
        lock = self._lock_head_and_waiting if with_waiting else self._lock_head
        rows = conn.execute(lock).all()
        if not rows:  # a store made before the head's row was made with it
            _start_head(conn)
            rows = conn.execute(lock).all()
        first = rows[0]
        waiting = {
            int(row.waiting): orjson.loads(row.envelope)
            for row in rows
            if with_waiting and row.waiting is not None
        }
        return Head(first.position, first.hash, first.recorded_at), waiting


class HeadMoved(RuntimeError):
    """The store's head moved while a run was computed apart from it (another writer)."""


def _count_skipped(skipped: Counter[str]) -> None:
    if skipped:
        metrics.skipped(skipped)
        log.warning(
            "skipped entries of event types this subsidy service does not know (%s): "
            "upgrade it to apply them",
            ", ".join(f"{kind} ×{count}" for kind, count in sorted(skipped.items())),
        )


def _clear(conn: Connection) -> None:
    for table in (*t.PROJECTION_TABLES, t.log, t.pending, t.skipped, t.head):
        conn.execute(delete(table))
    _start_head(conn)


def _start_head(conn: Connection) -> None:
    """The head's one row, at position 0, unless another writer made it: a store is made, or
    cleared, with it."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(t.head)
        .values(id=1, position=0, hash=GENESIS_HASH)
        .on_conflict_do_nothing(index_elements=["id"])
    )


# -- what the projection reads -----------------------------------------------------------------


class StoredRows:
    """The projection's :class:`~services.subsidy.projection.StoredState`, read in the
    transaction that will write its changes."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._dialect = conn.dialect

    def _all(self, query: Executable) -> Sequence[Row[Any]]:
        # Fetched at once: a result iterated fetches row by row (a twentieth of a catch-up).
        return self._conn.execute(query).all()

    def contracts(self, numbers: Iterable[str]) -> dict[str, dict[str, Any]]:
        found = {}
        for chunk in _chunks(numbers):
            rows = self._all(
                select(t.contracts.c.registration_no, t.contracts.c.facts).where(
                    one_of(t.contracts.c.registration_no, chunk, self._dialect)
                )
            )
            found.update({r.registration_no: orjson.loads(r.facts) for r in rows})
        return found

    def brokers(self, ids: Iterable[str]) -> dict[str, BrokerFacts]:
        found = {}
        for chunk in _chunks(ids):
            rows = self._all(
                select(t.brokers).where(one_of(t.brokers.c.broker_id, chunk, self._dialect))
            )
            found.update(
                {r.broker_id: BrokerFacts(r.name, _day(r.filed_on), r.region_code) for r in rows}
            )
        return found

    def funded(self, credit_codes: Iterable[str]) -> set[tuple[str, int]]:
        found = set()
        for chunk in _chunks(credit_codes):
            rows = self._all(
                select(t.funding).where(one_of(t.funding.c.credit_code, chunk, self._dialect))
            )
            found |= {(r.credit_code, int(r.year)) for r in rows}
        return found

    def roles(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        r = t.roles.c
        found: dict[tuple[str, str], set[str]] = {}
        by_role: dict[str, set[str]] = {}
        for party, role in wanted:
            by_role.setdefault(role, set()).add(party)
        for role, parties in by_role.items():
            for chunk in _chunks(parties):
                rows = self._all(
                    select(r.party, r.registration_no).where(
                        r.role == role, one_of(r.party, chunk, self._dialect)
                    )
                )
                for party, no in rows:
                    found.setdefault((party, role), set()).add(no)
        return found

    def claims(self, numbers: set[str]) -> dict[ClaimKey, tuple[ClaimValue, int]]:
        c = t.claims.c
        found = {}
        for chunk in _chunks(numbers):
            rows = self._all(
                select(t.claims).where(
                    one_of(c.registration_no, chunk, self._dialect), c.valid_to.is_(None)
                )
            )
            found.update(
                {
                    (r.year, r.category, r.beneficiary, r.registration_no): (
                        claim_value(r),
                        int(r.valid_from),
                    )
                    for r in rows
                }
            )
        return found

    def first_claims(self, key: EntitlementKey, limit: int) -> list[tuple[str, ClaimValue]]:
        c = t.claims.c
        rows = self._all(
            select(t.claims)
            .where(
                c.year == key[0],
                c.category == key[1],
                c.beneficiary == key[2],
                c.valid_to.is_(None),
            )
            .order_by(c.registration_no)
            .limit(limit)
        )
        return [(r.registration_no, claim_value(r)) for r in rows]

    def entitlements(
        self, beneficiaries: set[str]
    ) -> dict[EntitlementKey, tuple[EntitlementValue, int]]:
        c = t.entitlements.c
        found = {}
        for chunk in _chunks(beneficiaries):
            rows = self._all(
                select(t.entitlements).where(
                    one_of(c.beneficiary, chunk, self._dialect), c.valid_to.is_(None)
                )
            )
            found.update(
                {
                    (r.year, r.category, r.beneficiary): (entitlement_value(r), int(r.valid_from))
                    for r in rows
                }
            )
        return found

    def totals(self, counties: set[str]) -> dict[TotalKey, tuple[TotalValue, int]]:
        c = t.totals.c
        found = {}
        for chunk in _chunks(counties):
            rows = self._all(
                select(t.totals).where(one_of(c.county, chunk, self._dialect), c.valid_to.is_(None))
            )
            found.update(
                {(r.year, r.category, r.county): (total_value(r), int(r.valid_from)) for r in rows}
            )
        return found


def fen(text: str) -> Fen:
    """An exact amount as stored: whole fen as an int, a split share as a Fraction (parsing
    every amount as a Fraction was most of the time of a page of 1,000 entitlements)."""
    return Fraction(text) if "/" in text else int(text)


def claim_value(r: Any) -> ClaimValue:
    return ClaimValue(r.name, r.region_code, fen(r.share), r.reason)


def entitlement_value(r: Any) -> EntitlementValue:
    return EntitlementValue(
        r.name,
        r.region_code,
        r.first_registration_no,
        r.claims,
        fen(r.turnover),
        int(r.gross_fen),
        int(r.entitlement_fen),
    )


def total_value(r: Any) -> TotalValue:
    return TotalValue(r.beneficiaries, fen(r.turnover), int(r.gross_fen), int(r.entitlement_fen))


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    listed = list(values)
    for i in range(0, len(listed), _CHUNK):
        yield listed[i : i + _CHUNK]


def _day(text: str) -> date:
    return date.fromisoformat(text)
