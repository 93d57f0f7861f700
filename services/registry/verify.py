"""Recomputing the registry's hash chain from its database: the store it serves, or a copy.

:func:`verify_read_only` opens the database so that it cannot write — a SQLite file by a
``mode=ro`` URI, PostgreSQL sessions read-only — and takes no lock and creates no table, so it
checks a read-only copy, a backup restored for a drill, or the live store through a role that
may only ``SELECT``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eventsourcing.persistence import Transcoder
from sqlalchemy import Engine, Table, func, select

from services.common.db import make_read_only_engine
from services.common.envelope import GENESIS_HASH, canonical_bytes, entry_hash
from services.common.merkle import leaf_hash
from services.registry.event_store import EVENTS_TABLE, notification, registry_transcoder
from services.registry.log import storage_problem, unhashed_envelope
from services.registry.store import chain


def verify_chain(
    engine: Engine, events: Table, transcoder: Transcoder, batch_size: int = 5000
) -> Iterator[dict[str, Any]]:
    """Recompute the hash chain from the stored events; yields progress, then the verdict.

    Each progress item is ``{"checked": n}``; the last item has ``"ok"`` and, when the chain
    is broken, ``"position"`` and ``"problem"`` naming the first entry that does not match.
    """
    e, c = events, chain
    query = (
        select(
            e.c.id,
            e.c.originator_id,
            e.c.originator_version,
            e.c.topic,
            e.c.state,
            c.c.position,
            c.c.prev_hash,
            c.c.hash,
            c.c.leaf_hash,
        )
        .join(c, c.c.position == e.c.id, full=True)
        .order_by(func.coalesce(e.c.id, c.c.position))
    )
    prev, checked = GENESIS_HASH, 0
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=batch_size).execute(query)
        with rows:  # closed on an early return, too (a server-side cursor on PostgreSQL)
            for row in rows:
                problem = _chain_problem(row, prev, transcoder)
                if problem is not None:
                    position = row.id if row.id is not None else row.position
                    yield {
                        "ok": False,
                        "checked": checked,
                        "position": position,
                        "problem": problem,
                    }
                    return
                prev = row.hash
                checked += 1
                if checked % batch_size == 0:
                    yield {"checked": checked}
    yield {"ok": True, "checked": checked, "head_hash": prev}


def verify_read_only(database_url: str, batch_size: int = 5000) -> Iterator[dict[str, Any]]:
    """:func:`verify_chain` over a database opened read-only: no lock, no table created.

    Raises ``FileNotFoundError`` for a SQLite file that is not there and SQLAlchemy's errors
    for a database that cannot be read (not a registry's, or a role without ``SELECT``).
    """
    engine = make_read_only_engine(database_url)
    try:
        yield from verify_chain(engine, EVENTS_TABLE, registry_transcoder(), batch_size)
    finally:
        engine.dispose()


def _chain_problem(row: Any, prev: str, transcoder: Transcoder) -> str | None:
    if row.id is None:
        return "the chain records an entry whose event is missing"
    if row.position is None:
        return "the event has no chain entry"
    if row.prev_hash != prev:
        return "prev_hash does not match the hash of the entry before it"
    stored = notification(row)
    try:
        envelope = unhashed_envelope(stored, transcoder)
        misfiled = storage_problem(stored, transcoder)
    except Exception as exc:  # a row altered so far that it no longer decodes
        return f"the stored event does not decode ({type(exc).__name__})"
    if misfiled is not None:
        return misfiled
    envelope["prev_hash"] = prev
    envelope["hash"] = entry_hash(prev, envelope)
    if envelope["hash"] != row.hash:
        return "the stored event does not match its hash"
    if leaf_hash(canonical_bytes(envelope)).hex() != row.leaf_hash:
        return "the Merkle leaf hash does not match the entry"
    return None
