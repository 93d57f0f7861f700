"""Catching up from the registry feed: pages are gathered into runs, each applied in one
transaction, and a page the feed cannot give ends the run before it without losing it."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from services.common.runtime import LoopHalted, Unavailable
from services.registry.log import chain_envelopes
from services.subsidy.projector import REGISTRY_FEED, Projector
from services.subsidy.store import EntryStore
from tests.integration.test_subsidy_unknown_events import LogFeed
from tests.support.policy_facts import contract, contract_events, numbered


def _log(contracts: int) -> list[dict[str, Any]]:
    events = []
    for i in range(contracts):
        settled = [(date(2024, 5, 1 + i), 100_000_00 + i)]
        events += contract_events(contract(f"20244104{i:08d}", settled=settled))
    return list(chain_envelopes(numbered(events)))


def _no_kafka() -> Any:
    raise AssertionError("catching up from the feed needs no Kafka")


class FailingFeed(LogFeed):
    """The feed of a log whose pages after ``fails_after`` cannot be read."""

    def __init__(self, envelopes: list[dict[str, Any]], fails_after: int) -> None:
        super().__init__(envelopes, size=3)
        self._fails_after = fails_after

    def page(self, after: int, limit: int = 5000) -> dict[str, Any]:
        if after >= self._fails_after:
            raise httpx.ConnectError("registry down")
        return super().page(after, limit)


class ServedAsIs(LogFeed):
    """The feed of a log whose entries are served in order whatever their positions say."""

    def page(self, after: int, limit: int = 5000) -> dict[str, Any]:
        page = super().page(after, limit)
        page["events"] = self._envelopes[after : after + min(limit, self._size)]
        return page


class LiveFeed(LogFeed):
    """The feed of a registry still logging: each page ends at the head it reports."""

    def page(self, after: int, limit: int = 5000) -> dict[str, Any]:
        page = super().page(after, limit)
        page["head"] = page["events"][-1]["position"] if page["events"] else after
        return page


def test_a_page_that_reaches_the_registry_head_is_applied_without_waiting_for_a_run(
    database_url: str,
) -> None:
    log = _log(3)
    store = EntryStore(database_url)
    moved: list[int] = []
    try:
        projector = Projector(store, LiveFeed(log, size=4), _no_kafka, catch_up_run=100)  # type: ignore[arg-type]
        assert projector.catch_up(moved.append) == len(log)
    finally:
        store.close()
    # Followed at its head, each page is applied as it comes, however short the run.
    assert moved == [4] * (len(log) // 4) + ([len(log) % 4] if len(log) % 4 else [])


def test_runs_grow_from_one_page_to_catch_up_run_entries_and_halve_toward_the_head(
    database_url: str,
) -> None:
    log = _log(10)
    assert len(log) == 30
    store = EntryStore(database_url)
    moved: list[int] = []
    try:
        projector = Projector(store, LogFeed(log, size=3), _no_kafka, catch_up_run=7)  # type: ignore[arg-type]
        assert projector.catch_up(moved.append) == len(log)
        assert store.head().position == len(log)
    finally:
        store.close()
    # Pages of 3. One page first; then twice that (6); then whole pages until 7 or more (9).
    # Then a run ends once it is as long as what is left after it: 6 with 6 left, 3 with 3
    # left, and the last page.
    assert moved == [3, 6, 9, 6, 3, 3]


def test_a_page_the_feed_cannot_give_ends_the_run_read_before_it_which_is_applied(
    database_url: str,
) -> None:
    log = _log(3)
    store = EntryStore(database_url)
    try:
        feed = FailingFeed(log, fails_after=6)
        projector = Projector(store, feed, _no_kafka, catch_up_run=100)  # type: ignore[arg-type]
        with pytest.raises(Unavailable) as raised:
            projector.catch_up()
        assert raised.value.side == REGISTRY_FEED
        assert store.head().position == 6  # the two pages read, in one run
        assert projector.head.position == 6
    finally:
        store.close()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"position": True}, "position of the wrong type"),
        ({"position": 0}, "position 0"),
        ({"payload": []}, "payload of the wrong type"),
        ({"schema_version": "1"}, "schema_version of the wrong type"),
        ({"hash": None}, "hash of the wrong type"),
    ],
    ids=["bool-position", "position-0", "payload-list", "version-text", "hash-null"],
)
def test_a_feed_entry_of_the_wrong_shape_stops_the_catch_up_naming_the_field(
    database_url: str, change: dict[str, Any], why: str
) -> None:
    log = _log(2)
    log[4] = {**log[4], **change}
    store = EntryStore(database_url)
    try:
        projector = Projector(store, ServedAsIs(log, size=3), _no_kafka)  # type: ignore[arg-type]
        with pytest.raises(LoopHalted, match=why):
            projector.catch_up()
        assert store.head().position == 3  # the page before it, and nothing of its own
    finally:
        store.close()
