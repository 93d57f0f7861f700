"""Group commit: one writer thread turns concurrent submissions into few transactions.

One event per transaction is bounded by the database's commit rate (and, on PostgreSQL, by
the event store's table lock). The writer takes every submission waiting in its queue, runs
them one after another against one unit of work, and commits them together: the events, the
claims, the hash chain, the listing's rows and the idempotency records of the whole group in
one transaction.

Each submission's future holds its receipt (what its recorded envelopes say about it) or the
domain error that refused it: the writer speaks no HTTP. A submission that breaks a rule is
undone in memory (a savepoint of the unit of work) and refused once the group has committed;
the rest of the group goes on as it was, so a refusal costs its neighbours nothing. A
transaction that loses a race with another process (a version or claim conflict) is retried
submission by submission.

A COMMIT that fails has an unknown outcome: the server may have committed before the
connection dropped. The writer then finds out on a fresh connection, once the failed
transaction has ended, whether its first event is stored at the position the store gave it
(positions come from a sequence: no other transaction is given the same one). Committed, each
submission gets the receipt it was going to get; not committed, the group is run again. Only if
the store cannot be asked is the answer :class:`Unavailable`, saying so. Nothing is ever stored
twice.

While the store is unreachable (the breaker is open) submissions are refused as unavailable at
once, queued or not, instead of each being retried against a store that is not there.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy.exc
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session

from services.common.bulk import insert_columns
from services.common.db import StoreBreaker, store_unavailable
from services.common.envelope import GENESIS_HASH, canonical_bytes, format_instant
from services.common.errors import Unavailable
from services.common.merkle import leaf_hash
from services.registry import metrics
from services.registry.commands import HANDLERS, Command, Principal, needs
from services.registry.domain import Contract
from services.registry.errors import Conflict, InvalidCommand, RegistryError
from services.registry.event_store import (
    INTEGRITY_ERRORS,
    EventStore,
    library_now,
    marked,
    restamped,
)
from services.registry.listing import write_rows
from services.registry.log import chain_envelopes, draft_envelope, placed, recorded_instant
from services.registry.store import chain, idempotency
from services.registry.unit_of_work import AggregateCache, StaleAggregate, UnitOfWork

log = logging.getLogger("tcr.registry.writer")

RACE_RETRIES = 8
# Events stored, chained and answered for at a time within a group's transaction (see _store).
STORE_CHUNK = 2000
# How long the writer keeps asking whether a transaction whose COMMIT failed was committed.
OUTCOME_LOOKUP_SECONDS = 2.0


class _NotCommitted(Exception):
    """A COMMIT failed and the transaction is known not to have committed."""


class _OutcomeUnknown(Exception):
    """A COMMIT failed and the store could not be asked whether it committed."""


_RACES = (
    *INTEGRITY_ERRORS,
    sqlalchemy.exc.OperationalError,
    StaleAggregate,
    _NotCommitted,
)


def outcome_unknown() -> Unavailable:
    """The refusal of a submission whose COMMIT failed and whose outcome could not be learnt."""
    return Unavailable(
        None,
        "the store lost the connection while committing and could not be asked whether the "
        "write was stored: outcome unknown, retry with the same Idempotency-Key",
        "提交时与存储的连接中断，无法确认是否已保存：结果未知，请使用同一 Idempotency-Key 重试",
    )


def clock() -> datetime:
    """Now, by the event library's clock, the one its events are stamped by."""
    return library_now()


# What a stored submission's events say about it: for one command, its event's position,
# event_id, type, subject, recorded_at and hash; for a batch, the first and last positions and
# the count. The result an idempotency key keeps, and what its retry is given again.
Receipt = dict[str, Any]
_RECEIPT_FIELDS = ("position", "event_id", "type", "subject", "recorded_at", "hash")


@dataclass
class Submission:
    """One request's commands, stored all together or not at all."""

    principal: Principal
    commands: list[Command]
    batch: bool = False
    idempotency_key: str | None = None
    request_sha256: str | None = None
    # Written beside each of its events, outside the payload, and shown in their envelopes:
    # e.g. the imported file's hash and whether it is a backlog (see log.ENVELOPE_MARKS).
    marks: dict[str, str] | None = None
    future: Future[Receipt] = field(default_factory=Future)

    @property
    def event_count(self) -> int:
        return len(self.commands)


def request_digest(path: str, body: Any) -> str:
    """The fingerprint of a request for idempotency: its path and its canonical JSON body."""
    return hashlib.sha256(path.encode() + b"\n" + canonical_bytes(body)).hexdigest()


@dataclass
class _Ran:
    """What a submission's commands did: their events' keys, and the warnings they gave."""

    events: list[tuple[Any, int]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)


def run_command(uow: UnitOfWork, who: Principal, command: Command) -> Any:
    """Run one command's handler in ``uow``: the aggregate it changed, or its domain error."""
    uow.take_warnings()  # a refused command's warnings are not this one's
    handler = HANDLERS.get(command.op)
    if handler is None:  # only a caller other than the API can name one
        raise InvalidCommand("op", f"no such operation: {command.op}", f"没有此操作：{command.op}")
    return handler(uow, who, command.args)


class _Rejected(Exception):
    def __init__(self, submission: Submission, error: RegistryError) -> None:
        self.submission = submission
        self.error = error


class GroupCommitWriter:
    """The registry's single writer thread (one per process)."""

    def __init__(
        self,
        store: EventStore,
        engine: Engine,
        *,
        max_group_events: int = 2000,
        breaker: StoreBreaker | None = None,
        years: range = range(0),
        stations: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self._event_store = store
        self._years = years
        self._stations = stations
        self._engine = engine
        self._cache = AggregateCache()
        self._max_group_events = max_group_events
        self._breaker = breaker or StoreBreaker(engine)
        self._queue: queue.SimpleQueue[Submission | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="registry-writer", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join()
            self._started = False

    def submit(self, submission: Submission) -> Future[Receipt]:
        """Queue a submission; once its group has committed, its future holds its receipt or
        the domain error that refused it."""
        if not self._started:
            raise RuntimeError("writer not started")
        metrics.watch(submission.future, submission.principal.name)
        if self._breaker.open:
            _answer_unreachable([submission])
        else:
            self._queue.put(submission)
        return submission.future

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            events = first.event_count
            stop = False
            while events < self._max_group_events:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                events += nxt.event_count
            started = time.perf_counter()
            try:
                self._process(group)
            except Exception as exc:  # the writer must survive anything one group does
                log.exception("group of %d submissions failed", len(group))
                for sub in group:
                    if not sub.future.done():
                        sub.future.set_exception(exc)
            metrics.group_done(
                len(group), sum(s.event_count for s in group), time.perf_counter() - started
            )
            if stop:
                return

    def _process(self, group: list[Submission]) -> None:
        if self._breaker.open:  # queued before the store went away: no need to try
            _answer_unreachable(group)
            return
        try:
            self._run_group(group)
        except _OutcomeUnknown as exc:
            self._breaker.failed(exc)
            _answer_unknown(group)
        except _RACES as exc:
            if self._breaker.failed(exc):
                _answer_unreachable(group)  # nothing was committed: the COMMIT was not sent
                return
            # Nothing of the group was answered (refusals wait for the commit): retry each.
            pending = [sub for sub in group if not sub.future.done()]
            log.info(
                "group of %d lost a race (%s); retrying %d one by one",
                len(group),
                type(exc).__name__,
                len(pending),
            )
            for sub in pending:
                self._process_alone(sub, first_error=exc)

    def _process_alone(self, sub: Submission, first_error: Exception | None = None) -> None:
        last: Exception | None = first_error
        for attempt in range(RACE_RETRIES):
            if attempt:
                time.sleep(0.002 * attempt)
            try:
                self._run_group([sub])
                return
            except _OutcomeUnknown as exc:
                self._breaker.failed(exc)
                _answer_unknown([sub])
                return
            except _RACES as exc:
                if self._breaker.failed(exc):
                    _answer_unreachable([sub])
                    return
                last = exc
        log.warning(
            "submission by %s failed after %d attempts: %s", sub.principal.name, RACE_RETRIES, last
        )
        # Races are resolved by re-running; one that persists is a fault, not the client's.
        sub.future.set_exception(
            Unavailable(
                None,
                "the store kept refusing the write; nothing was stored, retry",
                "存储一再拒绝写入；未保存任何内容，请重试",
            )
        )

    def _run_group(self, group: list[Submission]) -> None:
        """Run and commit a group; rule-breaking submissions are refused and dropped."""
        for sub, outcome in self._transaction(group):
            _resolve(sub, outcome)

    def _transaction(
        self, group: list[Submission]
    ) -> list[tuple[Submission, Receipt | RegistryError]]:
        session = Session(self._engine)
        try:
            session.begin()
            uow = UnitOfWork(session, self._event_store, self._cache, self._years, self._stations)
            wanted_ids, wanted_claims = [], []
            for sub in group:
                for command in sub.commands:
                    ids, keys = needs(command)
                    wanted_ids += ids
                    wanted_claims += keys
            uow.prefetch(wanted_ids, wanted_claims)
            outcomes: list[tuple[Submission, Receipt | Submission | _Ran]] = []
            keyed: dict[tuple[str, str], Submission] = {}
            # Answered with the group, once it has committed: a refusal may rest on what an
            # earlier submission of the group did, and a flood of refusals then gets no more
            # than one answer per connection and group, like everyone else.
            refusals: list[tuple[Submission, Receipt | RegistryError]] = []
            for sub in group:
                try:
                    earlier = self._earlier(session, sub, keyed)
                    if earlier is not None:
                        outcomes.append((sub, earlier))
                        continue
                    outcomes.append((sub, self._run_submission(uow, sub)))
                except _Rejected as rejected:
                    if keyed.get(_key(sub)) is sub:
                        del keyed[_key(sub)]  # a same-key neighbour runs on its own
                    refusals.append((sub, rejected.error))

            marks = {
                key: sub.marks
                for sub, outcome in outcomes
                if sub.marks and isinstance(outcome, _Ran)
                for key in outcome.events
            }
            # A batch's receipt says only where its events are: the rest of their envelopes
            # need not be kept (60,000 imported events kept ~40 MB of it).
            whole = {
                key
                for sub, outcome in outcomes
                if not sub.batch and isinstance(outcome, _Ran)
                for key in outcome.events
            }
            envelopes, first = self._store(session, uow, marks, whole)
            receipts: dict[int, Receipt] = {}
            for sub, outcome in outcomes:
                if isinstance(outcome, dict):
                    kept = outcome
                elif isinstance(outcome, Submission):
                    kept = receipts[id(outcome)]  # a retry racing its original, same group
                else:
                    kept = receipt(sub, [envelopes[key] for key in outcome.events])
                    if outcome.warnings:
                        kept["warnings"] = outcome.warnings
                    if sub.idempotency_key is not None:
                        session.execute(
                            insert(idempotency).values(
                                principal=sub.principal.name,
                                key=sub.idempotency_key,
                                request_sha256=sub.request_sha256,
                                result=orjson.dumps(kept),
                            )
                        )
                receipts[id(sub)] = kept
            session.flush()  # from here on, a failure is the COMMIT's own
            try:
                session.commit()
            except Exception as exc:
                if first is None:  # nothing written: nothing to find out
                    raise
                log.warning("COMMIT of a group of %d failed (%s); finding out", len(group), exc)
                try:
                    committed = self._was_committed(*first)
                except _OutcomeUnknown:
                    for sub, error in refusals:  # refused either way
                        _resolve(sub, error)
                    raise
                if not committed:
                    raise _NotCommitted(str(exc)) from exc
                log.warning("the group had been committed; answering as committed")
        finally:
            session.close()
        uow.committed()
        return [(sub, receipts[id(sub)]) for sub, _ in outcomes] + refusals

    def _run_submission(self, uow: UnitOfWork, sub: Submission) -> _Ran:
        """Run a submission's commands; a refusal undoes it alone (:class:`_Rejected`)."""
        savepoint = uow.savepoint()
        ran = _Ran()
        for index, command in enumerate(sub.commands):
            try:
                aggregate = run_command(uow, sub.principal, command)
            except RegistryError as error:
                if sub.batch:
                    error.index = index
                uow.roll_back(savepoint)
                raise _Rejected(sub, error) from None
            ran.events.append(uow.took_event(aggregate))
            for warning in uow.take_warnings():
                ran.warnings.append({"index": index, **warning} if sub.batch else warning)
        uow.release(savepoint)
        return ran

    def _was_committed(self, position: int, stored: Any) -> bool:
        """Whether the transaction that gave its first event ``position`` committed.

        Asked on a fresh connection (the pool drops the broken one), under the event store's
        lock: the failed transaction held it, so once granted that transaction has ended one
        way or the other. Positions come from a sequence, never given twice; the stored bytes
        are compared too, for a store (SQLite) that may reuse the position of a rollback.
        Raises :class:`_OutcomeUnknown` when the store cannot be asked."""
        events = self._event_store.events
        deadline = time.monotonic() + OUTCOME_LOOKUP_SECONDS
        while True:
            try:
                with Session(self._engine) as session, session.begin():
                    if session.get_bind().dialect.name == "postgresql":
                        session.execute(text("SET LOCAL lock_timeout = '2s'"))
                    self._event_store.lock(session)
                    row = session.execute(
                        select(
                            events.c.originator_id, events.c.originator_version, events.c.state
                        ).where(events.c.id == position)
                    ).first()
                return (
                    row is not None
                    and row.originator_id == stored.originator_id
                    and row.originator_version == stored.originator_version
                    and bytes(row.state) == stored.state
                )
            except sqlalchemy.exc.DBAPIError as exc:
                if time.monotonic() >= deadline:
                    log.error(
                        "could not find out whether position %d was committed: %s", position, exc
                    )
                    raise _OutcomeUnknown(position) from exc
                time.sleep(0.1)

    def _earlier(
        self, session: Session, sub: Submission, keyed: dict[tuple[str, str], Submission]
    ) -> Receipt | Submission | None:
        """The receipt an idempotency key already has: stored, or that of an earlier submission
        in this group with the same key; None for a key not seen (or no key)."""
        if sub.idempotency_key is None:
            return None
        key = (sub.principal.name, sub.idempotency_key)
        reused = _Rejected(
            sub,
            Conflict(
                "Idempotency-Key",
                "this key was already used with a different request",
                "此 Idempotency-Key 已用于另一个不同的请求",
            ),
        )
        first = keyed.setdefault(key, sub)
        if first is not sub:
            if first.request_sha256 != sub.request_sha256:
                raise reused
            return first
        row = session.execute(
            select(idempotency.c.request_sha256, idempotency.c.result).where(
                idempotency.c.principal == sub.principal.name,
                idempotency.c.key == sub.idempotency_key,
            )
        ).first()
        if row is None:
            return None
        if row.request_sha256 != sub.request_sha256:
            raise reused
        kept: Receipt = orjson.loads(row.result)
        return kept

    def _store(
        self,
        session: Session,
        uow: UnitOfWork,
        marks: dict[tuple[Any, int], dict[str, str]] | None = None,
        whole: set[tuple[Any, int]] | frozenset[tuple[Any, int]] = frozenset(),
    ) -> tuple[dict[tuple[Any, int], dict[str, Any]], tuple[int, Any] | None]:
        """Save the unit of work's events and chain them; by (aggregate id, version) what each
        one's receipt needs of its envelope (its position; the receipt's fields for the events
        keyed in ``whole``), and the first event's position and stored form (None when there
        are no events). ``marks`` are written beside the events they are keyed by.

        The events go to the store :data:`STORE_CHUNK` at a time, in the one transaction: a
        group larger than that (a spreadsheet import, one submission of 60,000 events) then
        holds the stored forms, drafts and envelopes of one chunk at a time, not of them all
        (~250 MB at 60,000). The chunks after the first are drafted under the lock."""
        if not uow.events:
            return {}, None
        uow.flush_claims()
        events = uow.events
        # As events, not aggregates, so the log keeps the order the commands ran in.
        drafted = self._drafted(events[:STORE_CHUNK], marks)
        # Held until the commit: other writers wait, so only stamping, placing and hashing
        # happen from here on, and the log's last entry now is the predecessor of our first.
        self._event_store.lock(session)
        # The last link, then its event: with the limit inside, no plan joins the whole tables.
        link = (
            select(chain.c.position, chain.c.hash, chain.c.leaf_index)
            .order_by(chain.c.position.desc())
            .limit(1)
            .subquery()
        )
        mapper = self._event_store.mapper
        last = session.execute(
            select(link.c.hash, link.c.leaf_index, self._event_store.events.c.state).outerjoin(
                self._event_store.events, self._event_store.events.c.id == link.c.position
            )
        ).first()
        prev, next_leaf = (last.hash, last.leaf_index + 1) if last else (GENESIS_HASH, 0)
        # Stamped under the lock, never before the last entry (a clock stepping back, another
        # host's clock behind): recorded_at never decreases along the log, so a cut of the log
        # by time is a prefix of it. Commands stamp their events earlier, before the lock.
        recorded_at = clock()
        if last is not None and last.state is not None:
            recorded_at = max(recorded_at, recorded_instant(bytes(last.state), mapper.transcoder))
        uow.recorded(recorded_at)
        recorded_text = format_instant(recorded_at)
        by_key: dict[tuple[Any, int], dict[str, Any]] = {}
        first: tuple[int, Any] | None = None
        for start in range(0, len(events), STORE_CHUNK):
            if start:
                drafted = self._drafted(events[start : start + STORE_CHUNK], marks)
            stored = [replace(e, state=restamped(e.state, recorded_at)) for e, _ in drafted]
            for _, draft in drafted:
                draft["recorded_at"] = recorded_text
            positions = self._event_store.insert(session, stored)
            placed_drafts = (placed(p, d) for p, (_, d) in zip(positions, drafted, strict=True))
            envelopes = list(chain_envelopes(placed_drafts, prev))
            prev = envelopes[-1]["hash"]
            insert_columns(
                session,
                chain,
                {
                    "position": positions,
                    "prev_hash": [e["prev_hash"] for e in envelopes],
                    "hash": [e["hash"] for e in envelopes],
                    "leaf_index": range(next_leaf, next_leaf + len(envelopes)),
                    "leaf_hash": [leaf_hash(canonical_bytes(e)).hex() for e in envelopes],
                },
            )
            next_leaf += len(envelopes)
            if first is None:
                first = (positions[0], stored[0])
            for e, envelope in zip(stored, envelopes, strict=True):
                key = (e.originator_id, e.originator_version)
                fields = _RECEIPT_FIELDS if key in whole else ("position",)
                by_key[key] = {k: envelope[k] for k in fields}
            del drafted, stored, envelopes
        # Under the lock, so writers never wait on each other's rows here.
        changed = uow.changed(Contract)
        for start in range(0, len(changed), STORE_CHUNK):
            write_rows(session.connection(), changed[start : start + STORE_CHUNK])
        return by_key, first

    def _drafted(
        self, events: list[Any], marks: dict[tuple[Any, int], dict[str, str]] | None
    ) -> list[tuple[Any, dict[str, Any]]]:
        """Each event's stored form (marked) and its envelope's draft."""
        mapper = self._event_store.mapper
        stored = [mapper.to_stored_event(e) for e in events]
        if marks:
            stored = [marked(e, marks.get((e.originator_id, e.originator_version))) for e in stored]
        return [(e, draft_envelope(e, mapper.transcoder)) for e in stored]


def _key(sub: Submission) -> tuple[str, str]:
    return (sub.principal.name, sub.idempotency_key or "")


def _resolve(sub: Submission, outcome: Receipt | RegistryError) -> None:
    if isinstance(outcome, RegistryError):
        sub.future.set_exception(outcome)
    else:
        sub.future.set_result(outcome)


def _answer_unreachable(group: list[Submission]) -> None:
    for sub in group:
        if not sub.future.done():
            sub.future.set_exception(store_unavailable())


def _answer_unknown(group: list[Submission]) -> None:
    for sub in group:
        if not sub.future.done():
            sub.future.set_exception(outcome_unknown())


def receipt(sub: Submission, envelopes: list[dict[str, Any]]) -> Receipt:
    """What a submission's recorded envelopes say about it (see :data:`Receipt`)."""
    if sub.batch:
        positions = [e["position"] for e in envelopes]
        return {"positions": [positions[0], positions[-1]], "count": len(positions)}
    (envelope,) = envelopes
    return {k: envelope[k] for k in _RECEIPT_FIELDS}
