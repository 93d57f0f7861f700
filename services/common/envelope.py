"""The log envelope, its canonical bytes and the hash chain (see schemas/README.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS_HASH = "0" * 64

ENVELOPE_FIELDS = (
    "position",
    "event_id",
    "type",
    "schema_version",
    "recorded_at",
    "principal",
    "subject",
    "payload",
    "prev_hash",
    "hash",
)
# Present only on the entries that carry them (hashed like the rest when present): the SHA-256
# of the spreadsheet an entry was imported from, and ``intake: "backlog"`` for a history loaded
# after the fact. Entries without them hash and verify exactly as before.
OPTIONAL_ENVELOPE_FIELDS = ("import_sha256", "intake")


def canonical_bytes(value: Any) -> bytes:
    """Compact JSON, keys sorted, UTF-8 unescaped: RFC 8785 for our value types (no floats)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def entry_hash(prev_hash: str, envelope: Mapping[str, Any]) -> str:
    """SHA-256 hex of the previous hash's 32 raw bytes followed by the envelope's canonical bytes.

    The envelope is hashed without its own ``hash`` field.
    """
    body = {k: v for k, v in envelope.items() if k != "hash"}
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_bytes(body)).hexdigest()


def format_instant(instant: datetime) -> str:
    """An instant as UTC ISO 8601 with microseconds and a ``Z``: ``recorded_at``'s form,
    which orders correctly as text."""
    utc = instant if instant.tzinfo is UTC else instant.astimezone(UTC)
    return f"{utc.isoformat(timespec='microseconds')[:-6]}Z"  # twice as fast as strftime
