"""Event payloads as the readers of the log (the subsidy projection, the audit) take them: each
version of a type upcast to the newest version they read, as the registry's aggregates upcast
their stored events (eventsourcing's ``upcast_v1_v2``). Stored entries are never rewritten.

A reader meeting a version of a type newer than it reads skips the entry and counts it under
:func:`skipped_as`, as it does an entry of a type it does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Payload = Mapping[str, Any]


def _certificate_no_none(payload: Payload) -> Payload:
    return {**payload, "certificate_no": None}  # version 1 knew no certificate numbers


def _currency_cny(payload: Payload) -> Payload:
    return {**payload, "currency": "CNY"}  # version 1 amounts were fen of CNY, unsaid


# (type, version) → the payload as version + 1 says it. A type absent here is read at version 1.
_UPCASTS: dict[tuple[str, int], Callable[[Payload], Payload]] = {
    ("ContractRegistered", 1): _certificate_no_none,
    ("TransferProofRecorded", 1): _currency_cny,
}

# The newest version of each type the readers read: one more than its last upcast.
READ_VERSIONS: dict[str, int] = {}
for _kind, _version in sorted(_UPCASTS):
    READ_VERSIONS[_kind] = max(READ_VERSIONS.get(_kind, 1), _version + 1)


def read_version(kind: str) -> int:
    """The newest version of an event type the readers read (1 for a type without upcasts)."""
    return READ_VERSIONS.get(kind, 1)


def current_payload(envelope: Mapping[str, Any]) -> Payload | None:
    """The envelope's payload as the newest version of its type the readers read; None when
    its ``schema_version`` is newer than that (or not a version at all)."""
    kind, version = envelope["type"], envelope["schema_version"]
    payload: Payload = envelope["payload"]
    newest = READ_VERSIONS.get(kind, 1)
    if version == newest:
        return payload  # the common case, first
    if type(version) is not int or not 1 <= version < newest:
        return None
    while version < newest:
        payload = _UPCASTS[(kind, version)](payload)
        version += 1
    return payload


def skipped_as(envelope: Mapping[str, Any]) -> str:
    """What a reader counts a skipped entry under: its type, and for a version above 1 the
    version too (``TransferProofRecorded v3``), so a newer version of a known type is told
    apart from the known versions."""
    kind, version = str(envelope["type"]), envelope.get("schema_version", 1)
    return kind if version == 1 else f"{kind} v{version}"


def now_read(skipped: str, types: frozenset[str] | set[str]) -> bool:
    """Whether entries counted under ``skipped`` are of one of ``types`` at a version the
    readers read now: then a store that skipped them must be rebuilt."""
    kind, _, version = skipped.partition(" v")
    number = int(version) if version.isdigit() else 1
    return kind in types and number <= read_version(kind)
