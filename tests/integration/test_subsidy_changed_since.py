"""Which entitlements changed after a position, for revisions: read along the versions' key
order (where changes are many) or from every change since (where few), the same keys in the
same order, page after page, on PostgreSQL (where the key-order read is used)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from services.common.policy.schedule import PolicySchedule
from services.subsidy import reads
from services.subsidy.store import EntryStore
from tests.integration.test_subsidy_projection import arrival
from tests.support.databases import fresh_postgres_database
from tests.support.policy_facts import PINGDINGSHAN_2020
from tests.unit.test_policy_properties import World, worlds

Find = Callable[[Connection, int, int, tuple[str, str] | None, int], list[tuple[str, str]]]


@pytest.fixture(scope="module")
def store() -> Iterator[EntryStore]:
    with fresh_postgres_database() as url:
        store = EntryStore(url, PolicySchedule.single(PINGDINGSHAN_2020))
        try:
            yield store
        finally:
            store.close()


def pages(find: Find, conn: Connection, year: int, position: int, limit: int) -> list[Any]:
    """Every changed key, read a page of ``limit`` at a time after the last one read."""
    found: list[tuple[str, str]] = []
    after = None
    while True:
        page = find(conn, year, position, after, limit)
        assert len(page) <= limit
        found += page
        if len(page) < limit:
            return found
        after = page[-1]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(worlds(min_contracts=1), st.data())
def test_key_order_and_position_order_page_through_the_same_changed_keys(
    store: EntryStore, world: World, data: st.DataObject
) -> None:
    log = arrival(world, data)
    store.reset()
    store.add(log)
    positions = {0, len(log) // 2, data.draw(st.integers(0, len(log)))}
    limit = data.draw(st.integers(1, 3))
    with reads.snapshot(store.engine) as conn:
        for year in store.schedule.years:
            for position in sorted(positions):
                # Every key at once: the definition, against which both pagings are held.
                every = reads._changed_by_position(conn, year, position, None, 10**6)
                by_position = pages(reads._changed_by_position, conn, year, position, limit)
                in_key_order = pages(reads._changed_in_key_order, conn, year, position, limit)
                assert by_position == every
                assert in_key_order == every
