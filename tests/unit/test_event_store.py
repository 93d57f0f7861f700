"""Re-stamping an encoded event gives the bytes the library's mapper would have written."""

from __future__ import annotations

import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper

from services.registry.domain import Contract
from services.registry.event_store import registry_transcoder, restamped
from tests.unit.test_contract_aggregate import invoice, registration


def registry_mapper() -> Mapper[UUID]:
    """The mapper as the registry's application builds it: the orjson transcoder and the
    library's transcodings."""
    return Mapper(transcoder=registry_transcoder())


def events() -> list[Aggregate.Event]:
    contract = Contract(**registration())
    contract.record_invoice(**invoice("INV-1", 60_000_000))
    return list(contract.pending_events)


INSTANTS = [
    datetime(2026, 12, 2, 0, 25, 4, 123456, tzinfo=UTC),
    datetime(2030, 6, 1, 12, 0, tzinfo=UTC),  # no microseconds: isoformat leaves them out
    datetime(2026, 12, 2, 8, 25, 4, 5, tzinfo=timezone(timedelta(hours=8))),
]


@pytest.mark.parametrize("instant", INSTANTS, ids=str)
def test_a_restamped_state_is_what_the_mapper_writes_for_the_event_stamped_so(
    instant: datetime,
) -> None:
    mapper = registry_mapper()
    for event in events():
        state = mapper.to_stored_event(event).state
        expected = mapper.to_stored_event(replace(event, timestamp=instant)).state

        assert restamped(state, instant) == expected
        decoded: dict[str, Any] = mapper.transcoder.decode(restamped(state, instant))
        assert decoded["timestamp"] == instant


def test_a_state_that_is_not_the_transcoders_plain_json_is_refused() -> None:
    state = registry_mapper().to_stored_event(events()[0]).state

    with pytest.raises(ValueError, match="transcoder"):
        restamped(zlib.compress(state), INSTANTS[0])
