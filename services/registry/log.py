"""The registry log as clients see it: stored events turned into hashed envelopes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from services.common.envelope import (
    GENESIS_HASH,
    OPTIONAL_ENVELOPE_FIELDS,
    entry_hash,
    format_instant,
)
from services.registry.commands import COMMANDS
from services.registry.event_store import decode_state

_EVENT_NAMESPACE = UUID("6f1c8a52-3b0e-5c4e-9d1a-2f7e6b9c0d11")

# The optional envelope fields a submission may mark its events with (the writer's ``marks``).
ENVELOPE_MARKS = OPTIONAL_ENVELOPE_FIELDS
# Attributes of a stored event that belong to the envelope or the library, not the payload.
_NOT_PAYLOAD = frozenset(
    {"timestamp", "principal", "originator_topic", "class_version", *ENVELOPE_MARKS}
)

# Each event type's subject field, and what it must be stored as: the event class's topic, and
# for the event that creates an aggregate, the aggregate's topic. The topics steer replay yet lie
# outside the hashed envelope, so verification checks them separately.
SUBJECT_FIELD = {c.event: c.subject for c in COMMANDS.values()}
EVENT_TYPES = tuple(SUBJECT_FIELD)
_STORED_AS: dict[str, tuple[str, str | None]] = {
    c.event: (
        get_topic(getattr(c.aggregate, c.event)),
        get_topic(c.aggregate)
        if issubclass(getattr(c.aggregate, c.event), Aggregate.Created)
        else None,
    )
    for c in COMMANDS.values()
}


def event_type(topic: str) -> str:
    """The event type named by a stored event's topic (``module:Class.Event`` → ``Event``)."""
    return topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]


def unhashed_envelope(notification: Notification, transcoder: Transcoder) -> dict[str, Any]:
    """The envelope of a stored event, without ``prev_hash`` and ``hash``."""
    return placed(notification.id, draft_envelope(notification, transcoder))


def draft_envelope(stored: StoredEvent, transcoder: Transcoder) -> dict[str, Any]:
    """What an envelope says that does not depend on the event's place in the log: all but
    ``position``, ``prev_hash`` and ``hash``. The writer drafts envelopes before it takes the
    event store's lock, so that the lock is held only to stamp, place and hash them."""
    state = decode_state(stored.state, transcoder)
    kind = event_type(stored.topic)
    payload = {k: v for k, v in state.items() if k not in _NOT_PAYLOAD}
    envelope = {
        "event_id": str(
            uuid5(_EVENT_NAMESPACE, f"{stored.originator_id}/{stored.originator_version}")
        ),
        "type": kind,
        # The version of its type the event was stored as: the library stores an event class's
        # class_version above 1 with it. Never the version today's class would write, so an old
        # entry's envelope, and its hash, stay as they were.
        "schema_version": state.get("class_version", 1),
        "recorded_at": format_instant(state["timestamp"]),
        "principal": state["principal"],
        "subject": payload[SUBJECT_FIELD[kind]],
        "payload": payload,
    }
    for mark in ENVELOPE_MARKS:
        if mark in state:
            envelope[mark] = state[mark]
    return envelope


def recorded_instant(state: bytes, transcoder: Transcoder) -> datetime:
    """The instant a stored event's envelope says it was recorded at (its ``recorded_at``)."""
    stamp: datetime = decode_state(state, transcoder)["timestamp"]
    return stamp


def placed(position: int, draft: dict[str, Any]) -> dict[str, Any]:
    """A drafted envelope at its log position (the position first, as readers see it)."""
    return {"position": position, **draft}


def storage_problem(notification: Notification, transcoder: Transcoder) -> str | None:
    """Why a stored event's topic or creating aggregate is not what its type must be stored as."""
    kind = event_type(notification.topic)
    expected = _STORED_AS.get(kind)
    if expected is None or notification.topic != expected[0]:
        return f"the stored topic {notification.topic!r} is not that of a known event type"
    state = transcoder.decode(notification.state)
    if state.get("originator_topic") != expected[1]:
        return "the stored event names another aggregate class than its type creates"
    return None


def chain_envelopes(
    envelopes: Iterable[dict[str, Any]], prev_hash: str = GENESIS_HASH
) -> Iterator[dict[str, Any]]:
    """Unhashed envelopes in log order, each linked to its predecessor by ``prev_hash`` and
    ``hash`` (in place)."""
    for envelope in envelopes:
        envelope["prev_hash"] = prev_hash
        envelope["hash"] = prev_hash = entry_hash(prev_hash, envelope)
        yield envelope
