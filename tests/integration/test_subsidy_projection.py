"""The materialised projection against the policy engine from scratch (hypothesis), over a
real SQLite file: after every prefix of the log, as of every position and every recorded
instant, whatever the order entries arrive in and wherever the consumer is stopped."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.envelope import GENESIS_HASH, entry_hash, format_instant
from services.common.policy.engine import all_entitlements
from services.common.policy.facts import FactsBuilder
from services.common.policy.model import Policy
from services.common.policy.present import entitlement_json
from services.common.policy.schedule import PolicySchedule
from services.subsidy.application import Subsidy
from services.subsidy.store import EntryStore
from tests.support.policy_facts import PINGDINGSHAN_2020, TECHNOLOGY_CEILING, numbered
from tests.unit.test_policy_properties import World, worlds

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PROJECTION = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def stamped(envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same entries recorded one second apart, hash-chained again."""
    prev = GENESIS_HASH
    for n, envelope in enumerate(envelopes):
        envelope.pop("hash")
        envelope["recorded_at"] = format_instant(START + timedelta(seconds=n + 1))
        envelope["prev_hash"] = prev
        envelope["hash"] = prev = entry_hash(prev, envelope)
    return envelopes


def arrival(world: World, data: st.DataObject) -> list[dict[str, Any]]:
    """The world's events in an order the registry could have logged them in."""
    streams = world.streams()
    turns = data.draw(st.permutations([i for i, s in enumerate(streams) for _ in s]))
    pending = [iter(s) for s in streams]
    return stamped(numbered([next(pending[i]) for i in turns]))


def from_scratch(envelopes: list[dict[str, Any]], policy: Policy) -> dict[int, list[Any]]:
    facts = FactsBuilder().apply_all(envelopes).facts()
    return {
        year: [_public(entitlement_json(e)) for e in all_entitlements(facts, year, policy)]
        for year in range(policy.first_year, policy.last_year + 1)
    }


def served(subsidy: Subsidy, policy: Policy, **at: Any) -> dict[int, list[Any]]:
    result = {}
    for year in range(policy.first_year, policy.last_year + 1):
        # Small pages: the cursor is used.
        answer = subsidy.entitlements(year, limit=2, claims=True, **at)
        rows, cursor = answer["entitlements"], answer["next_cursor"]
        while cursor is not None:
            answer = subsidy.entitlements(year, limit=2, cursor=cursor, claims=True, **at)
            rows, cursor = rows + answer["entitlements"], answer["next_cursor"]
        result[year] = [_public(e) for e in rows]
    return result


def _public(e: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in e.items() if k not in ("county", "county_name", "claims")}


ONE_POLICY = PolicySchedule.single(PINGDINGSHAN_2020)


@PROJECTION
@given(worlds(), st.sampled_from([PINGDINGSHAN_2020, TECHNOLOGY_CEILING]), st.data())
def test_materialised_entitlements_equal_the_engine_after_every_prefix_and_as_of_every_instant(
    world: World, policy: Policy, data: st.DataObject
) -> None:
    log = arrival(world, data)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(log) - 1, 1)), max_size=4)))
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'subsidy.db'}"
        applied = 0
        for end in [*cuts, len(log)]:
            # A new store object each time: the consumer stopped between two transactions.
            store = EntryStore(url, PolicySchedule.single(policy))
            try:
                store.add(log[applied:end])
                applied = end
                assert served(Subsidy(store, store.schedule), policy) == from_scratch(
                    log[:end], policy
                )
            finally:
                store.close()

        store = EntryStore(url, PolicySchedule.single(policy))
        try:
            subsidy = Subsidy(store, store.schedule)
            for end in range(len(log) + 1):
                expected = from_scratch(log[:end], policy)
                assert served(subsidy, policy, position=end) == expected
                instant = START + timedelta(seconds=end, milliseconds=500)
                assert served(subsidy, policy, as_of=instant) == expected
        finally:
            store.close()


@PROJECTION
@given(worlds(min_contracts=1), st.data())
def test_entries_delivered_out_of_order_and_again_project_as_the_log_in_order(
    world: World, data: st.DataObject
) -> None:
    log = arrival(world, data)
    deliveries = data.draw(st.permutations(log + data.draw(st.lists(st.sampled_from(log)))))
    with tempfile.TemporaryDirectory() as folder:
        store = EntryStore(f"sqlite:///{Path(folder) / 'subsidy.db'}", ONE_POLICY)
        try:
            for start in range(0, len(deliveries), 3):
                store.add(deliveries[start : start + 3])
            assert store.head().position == len(log)
            subsidy = Subsidy(store, ONE_POLICY)
            assert served(subsidy, PINGDINGSHAN_2020) == from_scratch(log, PINGDINGSHAN_2020)
        finally:
            store.close()


def test_a_second_funding_record_of_the_same_seller_and_year_changes_nothing(
    tmp_path: Path,
) -> None:
    from tests.support.policy_facts import (
        LOCAL_FIRM,
        LOCAL_UNIVERSITY,
        contract,
        contract_events,
        funding_recorded,
    )

    deal = contract(
        seller=LOCAL_UNIVERSITY,
        buyer=LOCAL_FIRM,
        settled=[(datetime(2024, 5, 1).date(), 100_000_00)],
    )
    twice = [
        *contract_events(deal),
        funding_recorded(LOCAL_UNIVERSITY.credit_code, 2024),
        funding_recorded(LOCAL_UNIVERSITY.credit_code, 2024, amount_fen=50_000_00),
    ]
    log = stamped(numbered(twice))
    store = EntryStore(f"sqlite:///{tmp_path / 'subsidy.db'}", ONE_POLICY)
    try:
        for envelope in log:  # each in a transaction of its own: the second finds the first
            store.add([envelope])
        served_now = served(Subsidy(store, ONE_POLICY), PINGDINGSHAN_2020)
    finally:
        store.close()
    assert served_now == from_scratch(log, PINGDINGSHAN_2020)
    (output,) = [e for e in served_now[2024] if e["category"] == "output"]
    assert [(x["registration_no"], x["reason"]) for x in output["excluded"]] == [
        (deal.registration_no, "provincial_funding")
    ]
