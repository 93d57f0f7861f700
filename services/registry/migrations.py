"""One-time changes to what an existing store holds, made at start-up under the schema lock."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper
from eventsourcing.utils import get_topic
from sqlalchemy import Engine, Table, func, insert, inspect, select, text
from sqlalchemy.orm import Session

from services.registry.domain import Contract, contract_aggregate_id, number_key
from services.registry.event_store import EventStore, stored_event
from services.registry.listing import write_rows
from services.registry.store import claims, contracts, idempotency, migrations

log = logging.getLogger("tcr.registry")

NUMBER_KEYS = "claims-by-number-key"
CONTRACT_ROWS = "contract-listing-rows"
_BACKFILL_CHUNK = 500
_REGISTERED = get_topic(Contract.ContractRegistered)


def claim_number_keys(engine: Engine, events: Table, mapper: Mapper[UUID]) -> None:
    """Registration, invoice and serial numbers became unique under ``number_key``: claim the
    keys of the numbers stored before, once per store, so a new number differing from an old
    one only in case or width is refused too. Nothing already stored changes."""
    with engine.begin() as conn:
        done = select(migrations.c.name).where(migrations.c.name == NUMBER_KEYS)
        if conn.execute(done).first() is not None:
            return
        # Invoice and serial claims were kept as written. Keys are ASCII (the API's pattern),
        # where number_key is lower(), so only the claims lower() changes need a second row.
        wanted: dict[tuple[str, str], str] = {}
        written = conn.execute(
            select(claims.c.kind, claims.c.key, claims.c.registration_no).where(
                claims.c.key != func.lower(claims.c.key)
            )
        )
        for row in written:
            _want(wanted, row.kind, row.key, row.registration_no)
        registered = conn.execute(
            select(
                events.c.originator_id, events.c.originator_version, events.c.topic, events.c.state
            )
            .where(events.c.topic == _REGISTERED)
            .order_by(events.c.id)
            .execution_options(yield_per=5000)
        )
        for row in registered:
            registered_event: Any = mapper.to_domain_event(stored_event(row))
            number = registered_event.registration_no
            _want(wanted, "registration", number, number)
        held = set()
        for kind in {kind for kind, _ in wanted}:
            keys = [key for k, key in wanted if k == kind]
            for start in range(0, len(keys), 1000):
                rows = conn.execute(
                    select(claims.c.key).where(
                        claims.c.kind == kind, claims.c.key.in_(keys[start : start + 1000])
                    )
                )
                held |= {(kind, r.key) for r in rows}
        new = [
            {"kind": kind, "key": key, "registration_no": owner}
            for (kind, key), owner in wanted.items()
            if (kind, key) not in held
        ]
        if new:
            conn.execute(insert(claims), new)
        conn.execute(insert(migrations).values(name=NUMBER_KEYS))
    log.info("claimed the number keys of %d numbers stored before", len(new))


def list_contracts(engine: Engine, store: EventStore) -> None:
    """The listing's table came after the log: give every contract stored before it its row,
    once per store (the writer keeps them from then on)."""
    with engine.begin() as conn:
        done = select(migrations.c.name).where(migrations.c.name == CONTRACT_ROWS)
        if conn.execute(done).first() is not None:
            return
        # Every registration holds a claim (claim_number_keys gave the oldest theirs).
        numbers = conn.execute(
            select(claims.c.registration_no).where(claims.c.kind == "registration")
        ).scalars()
        listed = set(conn.execute(select(contracts.c.registration_no)).scalars())
        ids = [contract_aggregate_id(n) for n in dict.fromkeys(numbers) if n not in listed]
        session = Session(bind=conn)
        written = 0
        for start in range(0, len(ids), _BACKFILL_CHUNK):
            loaded = store.load(session, ids[start : start + _BACKFILL_CHUNK])
            found = [c for c in loaded.values() if isinstance(c, Contract)]
            write_rows(conn, found)
            written += len(found)
        conn.execute(insert(migrations).values(name=CONTRACT_ROWS))
    log.info("listed the %d contracts stored before the listing", written)


def idempotency_receipts(engine: Engine) -> None:
    """Idempotency rows kept an HTTP answer (``status``, ``body``); they keep the receipt now
    (``result``). Every stored answer was a 201 whose body is the receipt, so the body becomes
    the result as it is and the status goes: a key stored before is answered as it was."""
    columns = {c["name"] for c in inspect(engine).get_columns(idempotency.name)}
    if "status" not in columns:
        return
    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {idempotency.name} DROP COLUMN status"))
        conn.execute(text(f"ALTER TABLE {idempotency.name} RENAME COLUMN body TO result"))
    log.info("idempotency keys now keep receipts, not HTTP answers")


def _want(wanted: dict[tuple[str, str], str], kind: str, number: str, owner: str) -> None:
    key = number_key(number)
    first = wanted.setdefault((kind, key), owner)
    if first != owner:  # stored before the rule: both stand, the first keeps the key
        log.warning(
            "%s %s of %s is %s of %s but for case or width", kind, number, owner, key, first
        )
