"""Which entitlements changed after a position, for revisions: read along the versions' key
order (where changes are many) or from every change since (where few), the same keys in the
same order, page after page, on PostgreSQL (where the key-order read is used)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event
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


def test_the_key_order_read_walks_the_primary_key_and_leaves_the_planner_as_it_was() -> None:
    # With no statistics PostgreSQL guesses a year's versions few, and would read the changed
    # ones through two other indexes and sort them all, however many there are.
    with fresh_postgres_database() as url:
        store = EntryStore(url, PolicySchedule.single(PINGDINGSHAN_2020))
        try:
            with store.engine.begin() as conn:
                conn.exec_driver_sql(VERSIONS_OF_2020)
            plans, after = _key_order_plans(store)
        finally:
            store.close()

    assert len(plans) == 1
    assert "subsidy_entitlements_pkey" in plans[0] and "Sort" not in plans[0], plans[0]
    assert after == "on"


# 50,000 entitlements of 2020, one version each, begun at positions 1 to 50,000.
VERSIONS_OF_2020 = """
INSERT INTO subsidy_entitlements (year, category, beneficiary, valid_from, valid_to, name,
    region_code, first_registration_no, claims, turnover, gross_fen, entitlement_fen, capped)
SELECT 2020, 'absorption', 'B' || lpad(n::text, 6, '0'), n, NULL, 'name', '410402',
    'R' || n, 1, '100', 10, 10, false
FROM generate_series(1, 50000) AS n
"""


def _key_order_plans(store: EntryStore) -> tuple[list[str], str]:
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("SELECT DISTINCT subsidy_entitlements"):
            cursor.execute("EXPLAIN " + statement, params)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))

    with reads.snapshot(store.engine) as conn:
        event.listen(conn, "before_cursor_execute", explain)
        try:
            reads._changed_in_key_order(conn, 2020, 40_000, None, 1000)
        finally:
            event.remove(conn, "before_cursor_execute", explain)
        after = str(conn.exec_driver_sql("SELECT current_setting('enable_sort')").scalar())
    return plans, after
