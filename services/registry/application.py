"""The registry application: its use cases take and return primitives."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.application import AggregateNotFoundError, Application
from sqlalchemy import Engine, func, select

from services.common.db import (
    SingleHolderLock,
    StoreBreaker,
    make_engine,
    schema_lock,
    store_unavailable,
    store_unreachable,
)
from services.common.money import format_fen
from services.common.policy.loader import load_schedule
from services.common.policy.schedule import PolicySchedule
from services.registry.checkpoints import Checkpointer
from services.registry.commands import Command, Principal, no_contract
from services.registry.domain import Contract, contract_aggregate_id
from services.registry.dry_run import Checked, check_commands
from services.registry.errors import Forbidden
from services.registry.event_store import FACTORY_TOPIC, EventStore, notification
from services.registry.listing import ListingQuery, page
from services.registry.log import unhashed_envelope
from services.registry.migrations import claim_number_keys, idempotency_receipts, list_contracts
from services.registry.store import chain, create_tables
from services.registry.verify import verify_chain
from services.registry.visibility import may_read, reads_everything
from services.registry.writer import GroupCommitWriter, Receipt, Submission

MAX_PAGE = 5000
CHECKPOINT_POLL_SECONDS = 1.0
_CHECKPOINTER_LOCK_KEY = 0x7463_7201  # "tcr\1": held by the process that signs in the background

log = logging.getLogger("tcr.registry")


class Registry(Application[UUID]):
    """Contract registrations and their evidence, kept as an append-only hashed log."""

    name = "registry"

    def __init__(
        self,
        database_url: str,
        *,
        max_group_events: int = 2000,
        signing_key: Ed25519PrivateKey | None = None,
        checkpoint_every: int = 1000,
        schedule: PolicySchedule | None = None,
        stations: Callable[[], Collection[str]] | None = None,
    ) -> None:
        """Open the store; without ``signing_key`` checkpoints are signed by a key made now;
        ``schedule`` (the bundled policy files without it) says which years a payout may be
        of: those some policy version is in force for; ``stations`` the station ids a
        contract may be registered under (any without it)."""
        schedule = schedule or load_schedule()
        self.engine: Engine = make_engine(database_url)  # creates a SQLite file's folder
        with schema_lock(self.engine):  # processes opening a new store together take turns
            super().__init__(
                env={
                    "REGISTRY_PERSISTENCE_MODULE": FACTORY_TOPIC,
                    "REGISTRY_SQLALCHEMY_URL": database_url,
                }
            )
            create_tables(self.engine)
            self.event_store = EventStore(self)
            self.events_table = self.event_store.events
            claim_number_keys(self.engine, self.events_table, self.mapper)
            idempotency_receipts(self.engine)
            list_contracts(self.engine, self.event_store)
        # Open while the store is unreachable: writes and reads are then answered 503 at once.
        self.breaker = StoreBreaker(self.engine)
        self.writer = GroupCommitWriter(
            self.event_store,
            self.engine,
            max_group_events=max_group_events,
            breaker=self.breaker,
            years=schedule.years,
            stations=stations,
        )
        self._years = schedule.years
        self._stations = stations
        self.checkpoints = Checkpointer(
            self.engine, signing_key or Ed25519PrivateKey.generate(), checkpoint_every
        )
        self._stopping = threading.Event()
        self._checkpointer_lock = SingleHolderLock(
            self.engine, _CHECKPOINTER_LOCK_KEY, "checkpointer-lock"
        )
        self._checkpointer = threading.Thread(
            target=self._follow_for_checkpoints, name="registry-checkpointer", daemon=True
        )

    def start(self) -> None:
        """Start the writer and the checkpointer; writes are refused before."""
        self.writer.start()
        self._checkpointer.start()

    @property
    def following(self) -> bool:
        """Whether this process signs checkpoints as the log grows (one process does)."""
        return self._checkpointer_lock.holding

    def _follow_for_checkpoints(self) -> None:
        # A pass a second, whoever committed: following every commit cost a query per group.
        # Only the process holding the lock follows; the others advance when asked for a
        # checkpoint. Every process following every leaf cost each a tenth of a core at
        # 10,000 events/s. When the holder stops, another takes over within a pass.
        while not self._stopping.wait(CHECKPOINT_POLL_SECONDS):
            if self.breaker.open:
                continue
            try:
                if self._checkpointer_lock.try_hold():
                    self.checkpoints.advance()
            except Exception as exc:  # a failed pass is retried on the next one
                if self.breaker.failed(exc):
                    log.warning("checkpointer pass skipped: the store is unreachable")
                else:
                    log.exception("checkpointer pass failed")

    def close(self) -> None:
        self._stopping.set()
        if self._checkpointer.is_alive():
            self._checkpointer.join()
        self._checkpointer_lock.release()
        self.writer.stop()
        self.breaker.stop()
        self.engine.dispose()
        super().close()
        self.event_store.close()

    # -- writes -----------------------------------------------------------------------------

    def submit(
        self,
        principal: Principal,
        commands: list[Command],
        *,
        batch: bool = False,
        idempotency_key: str | None = None,
        request_sha256: str | None = None,
        marks: dict[str, str] | None = None,
    ) -> Future[Receipt]:
        """Queue commands to be stored together; the future holds their receipt, or the
        domain error that refused them. ``marks`` go into each of their envelopes
        (``import_sha256``, ``intake``)."""
        return self.writer.submit(
            Submission(principal, commands, batch, idempotency_key, request_sha256, marks)
        )

    def check(self, principal: Principal, commands: Sequence[Command | None]) -> Checked:
        """Dry-run commands in order, as if the earlier ones were stored: every error and
        warning, nothing stored (None: a command its schema refused, skipped)."""
        with self._reading():
            return check_commands(
                self.engine,
                self.event_store,
                principal,
                commands,
                years=self._years,
                stations=self._stations,
            )

    # -- reads ------------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A read of the store: refused at once while the breaker is open, and a store that
        cannot be reached is a 503 (:func:`store_unavailable`), not a library error."""
        self.breaker.check()
        try:
            yield
        except Exception as exc:
            if self.breaker.failed(exc) or store_unreachable(exc):
                raise store_unavailable() from None
            raise

    def contract(self, registration_no: str, reader: Principal) -> dict[str, Any]:
        """The current state of a contract, with its evidence and totals; one the reader may
        not read is answered exactly as one not registered."""
        try:
            with self._reading():
                c: Contract = self.repository.get(contract_aggregate_id(registration_no))
        except AggregateNotFoundError:
            raise no_contract(registration_no) from None
        if not may_read(reader, c.station_id):
            raise no_contract(registration_no)
        return {
            "registration_no": c.registration_no,
            "status": "cancelled" if c.cancelled else "registered",
            "cancellation": c.cancelled,
            "station_id": c.station_id,
            "registered_on": c.registered_on,
            "signed_on": c.signed_on,
            "title": c.title,
            "contract_type": c.contract_type,
            "domain": c.domain,
            "seller": c.seller,
            "buyer": c.buyer,
            "brokers": c.brokers,
            "related_party": c.related_party,
            "contract_amount": format_fen(c.contract_amount_fen),
            "technology_amount": format_fen(c.technology_amount_fen),
            "invoices": [_money(i) for i in c.invoices.values()],
            "transfer_proofs": [_money(p) for p in c.transfer_proofs.values()],
            "invoiced_total": format_fen(c.invoiced_fen),
            "paid_total": format_fen(c.paid_fen),
            "version": c.version,
        }

    def inclusion(self, reader: Principal, position: int, tree_size: int) -> dict[str, Any]:
        """The inclusion proof of the entry at ``position`` in the tree of ``tree_size``; a
        station has it only for an entry about a contract of its own."""
        if not self.may_prove(reader, position):
            raise Forbidden(
                "position",
                f"the entry at position {position} is not about a contract of station "
                f"{reader.station_id}: a station has proofs of its own entries only",
                f"位置 {position} 的条目不属于登记机构 {reader.station_id} 的合同："
                "登记机构只能获取本机构条目的证明",
            )
        return self.checkpoints.inclusion(position, tree_size)

    def may_prove(self, reader: Principal, position: int) -> bool:
        """Whether ``reader`` may have the inclusion proof of the entry at ``position``: one
        who reads everything may; a station only for an entry about a contract of its own. A
        position holding no entry hides nothing (its proof is refused as not found)."""
        if reads_everything(reader):
            return True
        page = self.read_log(position - 1, 1)
        entry = next((e for e in page["events"] if e["position"] == position), None)
        if entry is None:
            return True
        number = entry["payload"].get("registration_no")
        if not isinstance(number, str):
            return False  # a broker, funding or payout: the bureau's and finance's entries
        try:
            with self._reading():
                c: Contract = self.repository.get(contract_aggregate_id(number))
        except AggregateNotFoundError:
            return False
        return may_read(reader, c.station_id)

    def contracts(self, query: ListingQuery | None) -> dict[str, Any]:
        """A page of contract summaries, newest registration first (None: an empty page)."""
        with self._reading(), self.engine.connect() as conn:
            return page(conn, query)

    def history(self, registration_no: str) -> list[dict[str, Any]]:
        """A contract's events in log order, as envelopes without their hashes."""
        e = self.events_table
        with self._reading(), self.engine.connect() as conn:
            rows = conn.execute(
                select(e.c.id, e.c.originator_id, e.c.originator_version, e.c.topic, e.c.state)
                .where(e.c.originator_id == contract_aggregate_id(registration_no))
                .order_by(e.c.originator_version)
            ).all()
        return [unhashed_envelope(notification(row), self.mapper.transcoder) for row in rows]

    def head(self) -> int:
        """The position of the last entry in the log (0 when empty)."""
        with self._reading(), self.engine.connect() as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(chain.c.position), 0))).scalar_one()
            )

    def read_log(self, after: int, limit: int) -> dict[str, Any]:
        """A page of the log after ``after``: envelopes in order, ``next_after`` and the head."""
        limit = max(1, min(limit, MAX_PAGE))
        e, c = self.events_table, chain
        # Two range scans, not a join: with stale statistics the planner joined the whole
        # chain table and sorted it on disk for every page. Positions commit in order (the
        # event store's lock), so the events up to the page's last position are all there.
        with self._reading(), self.engine.connect() as conn:
            links = conn.execute(
                select(c.c.position, c.c.prev_hash, c.c.hash)
                .where(c.c.position > after)
                .order_by(c.c.position)
                .limit(limit)
            ).all()
            stored = {}
            if links:
                rows = conn.execute(
                    select(
                        e.c.id, e.c.originator_id, e.c.originator_version, e.c.topic, e.c.state
                    ).where(e.c.id > after, e.c.id <= links[-1].position)
                ).all()  # at once: iterating the result fetched row by row
                stored = {row.id: row for row in rows}
            head = int(
                conn.execute(select(func.coalesce(func.max(chain.c.position), 0))).scalar_one()
            )
        envelopes = []
        for link in links:
            row = stored.get(link.position)
            if row is None:  # a chain entry without its event: verify names it
                continue
            envelope = unhashed_envelope(notification(row), self.mapper.transcoder)
            envelope["prev_hash"] = link.prev_hash
            envelope["hash"] = link.hash
            envelopes.append(envelope)
        if not envelopes:
            # Nothing after ``after``: the client keeps its place, and learns the real head even
            # when it asked beyond it (a position from another store, or a restore).
            return {"events": [], "next_after": after, "head": head}
        next_after = envelopes[-1]["position"]
        return {"events": envelopes, "next_after": next_after, "head": max(head, next_after)}

    def verify(self, batch_size: int = 5000) -> Iterator[dict[str, Any]]:
        """Recompute the hash chain from the stored events, as :func:`verify_chain` says."""
        return verify_chain(self.engine, self.events_table, self.mapper.transcoder, batch_size)


def _money(item: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in item.items() if k != "amount_fen"}
    shown["amount"] = format_fen(item["amount_fen"])
    return shown
